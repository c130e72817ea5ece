"""The NTIRE Efficient-SR editions as protocol files: each edition's rules are fields, read as stated."""

from __future__ import annotations

import math
from typing import Any

import pytest

from harness.constraints import check_constraints
from harness.errors import HarnessError
from harness.protocols import list_protocols, load_protocol, parse_protocol

EDITIONS = ("ntire2022", "ntire2023", "ntire2024", "ntire2025", "ntire2026")


def test_every_edition_is_shipped() -> None:
    assert set(EDITIONS) <= set(list_protocols())


@pytest.mark.parametrize(
    ("name", "baseline", "counter", "runs", "weights"),
    [
        ("ntire2022", "imdn_baseline", "ntire2022", 1, None),
        ("ntire2023", "rfdn_baseline", "ntire2022", 1, None),
        ("ntire2024", "rlfn", "fvcore", 5, (0.7, 0.15, 0.15)),
        ("ntire2025", "efdn", "fvcore", 5, (0.7, 0.15, 0.15)),
        ("ntire2026", "span", "fvcore", 5, (0.8, 0.1, 0.1)),
    ],
)
def test_edition_rules_as_the_repositories_state_them(
    name: str, baseline: str, counter: str, runs: int, weights: tuple[float, ...] | None
) -> None:
    protocol = load_protocol(name)
    assert (protocol.baseline, protocol.flop_counter, protocol.averaged_runs) == (baseline, counter, runs)
    if weights is None:
        assert protocol.score is None
    else:
        assert protocol.score is not None and protocol.score.factor == 2.0
        found = protocol.score.weights
        assert (found.runtime, found.flops, found.params) == weights


@pytest.mark.parametrize("name", ["ntire2024", "ntire2025", "ntire2026"])
def test_2024_on_judge_psnr_on_div2k_lsdir_val_and_test_and_nothing_else(name: str) -> None:
    limits = load_protocol(name).constraints
    assert limits.params_max is None and limits.runtime_ratio_max is None
    stated = [
        (lim.min_db, lim.reference_data.dataset, lim.reference_data.split) for lim in limits.psnr_limits()
    ]
    assert stated == [(26.90, "div2k_lsdir", "val"), (26.99, "div2k_lsdir", "test")]
    # Each proxy margin is the published baseline's margin over the threshold on that split.
    published = load_protocol(name).published_baseline
    assert published is not None
    val, test = limits.psnr_limits()
    assert val.proxy_margin_db == pytest.approx(published.val_psnr_db - 26.90)
    assert test.proxy_margin_db == pytest.approx(published.test_psnr_db - 26.99)


def test_2023_says_what_it_does_not_publish_and_checks_only_completeness() -> None:
    protocol = load_protocol("ntire2023")
    assert protocol.constraints.psnr_limits() == () and protocol.published_baseline is None
    assert any("threshold" in line for line in protocol.unpublished)
    assert [mode.split for mode in protocol.data] == ["val", "test", "hybrid_test"]
    record = {"submission": "x", "status": "ok", "psnr_rgb": 1.0, "params": 10**9, "num_images": 5}
    dataset = {"name": "Set5", "split": None, "num_images": 5}
    found = check_constraints(record, baseline=None, protocol=protocol, dataset=dataset)
    assert [item.name for item in found] == ["complete"] and found[0].passed


def _record(psnr: float, images: int = 200) -> dict[str, Any]:
    return {
        "submission": "sub",
        "status": "ok",
        "psnr_rgb": psnr,
        "params": 10**9,  # no params limit in 2024+: a huge model is not judged on size
        "runtime_ms": {"mean": 1000.0},
        "num_images": images,
    }


@pytest.mark.parametrize(
    ("split", "psnr", "limit", "passed"),
    [("val", 26.90, 26.90, True), ("val", 26.896, 26.90, False), ("test", 26.98, 26.99, False)],
)
def test_2026_uses_the_threshold_of_the_split(split: str, psnr: float, limit: float, passed: bool) -> None:
    dataset = {"name": "DIV2K_LSDIR", "split": split, "num_images": 200, "expected_images": 200}
    found = check_constraints(
        _record(psnr), baseline=None, protocol=load_protocol("ntire2026"), dataset=dataset
    )
    assert [item.name for item in found] == ["complete", "psnr"]
    assert (found[1].kind, found[1].limit, found[1].passed) == ("absolute", limit, passed)


def test_2026_on_other_data_is_a_proxy_against_span_in_the_same_run() -> None:
    dataset = {"name": "Set5", "split": None, "num_images": 5, "expected_images": 5}
    baseline = {**_record(30.00, 5), "submission": "span"}
    found = check_constraints(
        _record(29.97, 5), baseline=baseline, protocol=load_protocol("ntire2026"), dataset=dataset
    )
    psnr = found[-1]
    assert psnr.kind == "proxy" and math.isclose(psnr.limit, 30.00 - 0.04) and psnr.passed
    assert "26.90 dB on div2k_lsdir val" in psnr.note


def test_a_score_must_have_weights_summing_to_one() -> None:
    import yaml

    from harness import protocols

    data = yaml.safe_load((protocols._PROTOCOL_DIR / "ntire2026.yaml").read_text())
    data["score"]["weights"]["runtime"] = 0.9
    with pytest.raises(HarnessError, match="score: factor must be > 0 and the weights >= 0, summing to 1"):
        parse_protocol(data, source="ntire2026.yaml")
    data["score"]["form"] = "linear"
    with pytest.raises(HarnessError, match="score.form: must be one of exp_ratio"):
        parse_protocol(data, source="ntire2026.yaml")
