"""The run document's schema: migration of an older run, a round trip, refusals, and the builders' keys.

``tests/data/run_schema_v1.json`` is a run document in the shape version 1 of the harness wrote (before
``schema_version``, paired timing and lanes; values trimmed from a real CPU run of clb_imdn and
imdn_baseline on two sample images, plus one failed submission): constraint records with ``passed``
only, no ``pairing`` or ``timed_on``, a failed record without ``num_images``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from harness.complexity import RECORD_FIELDS
from harness.constraints import ConstraintResult
from harness.errors import HarnessError
from harness.integrity import Check, integrity_record
from harness.leaderboard import load_run
from harness.metrics import METRIC_KEYS
from harness.runner import TimingSettings, schema
from harness.timing import RuntimeStats

V1_RUN = Path(__file__).parent / "data" / "run_schema_v1.json"


def _raw() -> dict[str, Any]:
    return json.loads(V1_RUN.read_text(encoding="utf-8"))


def _document(run: Any) -> dict[str, Any]:
    return {**run.metadata, "results": list(run.results)}


def test_a_version_1_run_is_migrated_when_read() -> None:
    raw = _raw()
    assert "schema_version" not in raw
    document = _document(load_run(V1_RUN))
    assert document["schema_version"] == schema.SCHEMA_VERSION == 2
    clb, broken, baseline = document["results"]
    # Verdicts are derived from `passed`, written by hand here from the file's own values.
    runtime = raw["results"][0]["constraints"][1]
    assert runtime["passed"] is (runtime["value"] <= 1.0)
    assert [item["verdict"] for item in clb["constraints"]] == [
        "pass",
        "pass" if runtime["passed"] else "fail",
    ]
    assert [item["verdict"] for item in broken["constraints"]] == ["fail"]
    assert all(item["interval"] is None for r in document["results"] for item in r["constraints"])
    assert broken["num_images"] == 0 and "pairing" not in broken and "timed_on" not in broken
    assert clb["pairing"] is None and clb["timed_on"] is None and baseline["pairing"] is None
    # Nothing else changes: removing what the migration added gives the file back.
    for record in document["results"]:
        for item in record["constraints"]:
            del item["verdict"], item["interval"]
        for key in ("pairing", "timed_on"):
            record.pop(key, None)
    del broken["num_images"], document["schema_version"]
    assert document == raw


def test_a_run_document_round_trips(tmp_path: Path) -> None:
    migrated = _document(load_run(V1_RUN))
    path = tmp_path / "results.json"
    path.write_text(json.dumps(migrated), encoding="utf-8")
    again = load_run(tmp_path)
    assert _document(again) == migrated
    assert again.protocol == "ntire2022" and again.protocol_version == 1 and again.baseline == "imdn_baseline"
    assert schema.upgrade(migrated, "x") == migrated


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(schema_version=3),
            "field 'schema_version' is 3; this harness reads versions 1 to 2",
        ),
        (lambda d: d.update(gpu="x"), "unknown field 'gpu'"),
        (lambda d: d["results"][0].update(speed=1), "results[0]: unknown field 'speed'"),
        (
            lambda d: d["results"][1].update(status="crashed"),
            "results[1]: field 'status' is missing or not ok/failed",
        ),
        (lambda d: d.pop("protocol_version"), "field 'protocol_version' is missing or not int"),
        (lambda d: d["device"].pop("fingerprint_id"), "device: field 'fingerprint_id' is missing or not str"),
        (
            lambda d: d["results"][0]["constraints"][0].update(verdict="maybe"),
            "constraints[0]: field 'verdict'",
        ),
    ],
)
def test_a_document_that_does_not_fit_is_refused_naming_the_file_and_field(
    tmp_path: Path, change: Any, message: str
) -> None:
    document = _document(load_run(V1_RUN))
    change(document)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(HarnessError, match=f"^{path}") as error:
        load_run(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_upgrade_leaves_its_argument_alone() -> None:
    raw = _raw()
    before = copy.deepcopy(raw)
    schema.upgrade(raw, "x")
    assert raw == before


def _keys(kind: type) -> set[str]:
    return set(get_type_hints(kind))


def test_the_builders_write_only_keys_the_schema_names() -> None:
    who = schema.identity(
        submission="a", team=None, role="submission", weights_sha256=None, official_model_id=None
    )
    failed = schema.failed_record(who, error="boom", retries=[])
    assert set(failed) <= _keys(schema.ResultRecord)
    assert set(METRIC_KEYS) <= _keys(schema.ResultRecord) and set(METRIC_KEYS) <= _keys(schema.PerImageRow)
    assert set(RECORD_FIELDS) <= _keys(schema.ResultRecord)
    assert {field.name for field in dataclasses.fields(ConstraintResult)} == _keys(schema.ConstraintRecord)
    stats = RuntimeStats.from_latencies([1.0, 2.0]).as_dict()
    runtime = schema.runtime_record(stats, rounds=[1.5], cv=0.0, first_call_ms=None, mean_without_warmup=None)
    assert set(runtime) == _keys(schema.RuntimeRecord)
    lane = schema.timed_on(lane=0, label="cpu", node="n", device="cpu", fingerprint_id="f")
    assert set(lane) == _keys(schema.TimedOnRecord)
    pairing = schema.pairing(baseline="b", lane=0, baseline_mean_ms=1.0, round_ratios=[1.0])
    assert set(pairing) == _keys(schema.PairingRecord)
    row = schema.per_image_row({"name": "x", **dict.fromkeys(METRIC_KEYS, 1.0)}, [1.0], 1.0)
    assert set(row) == _keys(schema.PerImageRow)
    ok = schema.ok_record(
        who,
        metrics=dict.fromkeys(METRIC_KEYS, 1.0),
        runtime=runtime,
        max_memory_mb=None,
        complexity=dict.fromkeys(RECORD_FIELDS),
        warmup_passes=[1],
        torch_settings_changed={},
        timing_session="s",
        timed_on=lane,
        pairing=pairing,
        runtime_clock="perf_counter",
        rounds_used=2,
        stop_reason="decided",
        rounds_until_decided=[],
        retries=[],
        resumed=False,
        per_image=[row],
        integrity=integrity_record(
            {"enabled": False, "reason": "--sandbox off"}, [Check("clocks", "pass", "ok")]
        ),
    )
    assert set(ok["integrity"]) == _keys(schema.IntegrityRecord)
    assert set(ok["integrity"]["checks"][0]) == _keys(schema.IntegrityCheck)
    judged = schema.with_cells(schema.judged_record(schema.with_cached(ok, cached=False), [], False), {})
    optional = {"sandbox"}  # added by other parts when they run
    assert set(judged) == _keys(schema.ResultRecord) - optional
    timing = schema.timing_record(
        TimingSettings().as_dict(), threads=1, device="cpu", seed=0, round_log=[], torch_settings=None
    )
    assert set(timing) == _keys(schema.TimingRecord)
    lanes = [
        schema.lane_record(
            lane=0, label="cpu", node="n", device="cpu", fingerprint_id="f", fingerprint={}, device_state={}
        )
    ]
    document = schema.run_document(
        harness={},
        protocol="ntire2022",
        protocol_version=1,
        device={"fingerprint_id": "f"},
        device_state={},
        lanes=lanes,
        dataset={},
        timing=timing,
        baseline=None,
        timing_session="s",
        retimed=[],
        cells=["fp32"],
        sandbox={"enabled": False, "reason": "--sandbox off"},
        results=[judged],
    )
    assert set(document) == _keys(schema.RunDocument) and set(lanes[0]) == _keys(schema.LaneRecord)
    assert schema.upgrade(document, "built") == document


DOC = Path(__file__).resolve().parents[1] / "docs" / "results-schema.md"


def _documented() -> dict[str, list[str]]:
    """Per ``## `TypedDictName` `` section of the page, the keys of its table rows, in order."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## `"):
            current = line.split("`")[1]
            sections[current] = []
        elif current is not None and line.startswith("| `"):
            sections[current].append(line.split("`")[1])
    return sections


def test_the_schema_page_lists_every_key_of_every_typed_dict_and_no_other() -> None:
    typed = {
        name: list(get_type_hints(kind))
        for name, kind in vars(schema).items()
        if isinstance(kind, type) and issubclass(kind, dict) and kind.__module__ == schema.__name__
    }
    assert typed, "schema.py defines no TypedDict"
    documented = _documented()
    assert sorted(documented) == sorted(typed), "one section per TypedDict of harness/runner/schema.py"
    for name, keys in typed.items():
        assert documented[name] == keys, f"docs/results-schema.md section {name}: keys differ from schema.py"
