"""Constraint verdicts and the protocol file they come from."""

from __future__ import annotations

from typing import Any

import pytest

from harness.constraints import apply_constraints, check_constraints, find_baseline, is_valid
from harness.errors import HarnessError
from harness.protocols import load_protocol, parse_protocol

PROTOCOL = load_protocol("ntire2022")
DIV2K_VAL = {"name": "DIV2K", "split": "val", "num_images": 100, "scale": 4}
SET5 = {"name": "Set5", "split": None, "num_images": 5, "scale": 4}


def record(
    name: str = "sub",
    *,
    psnr: float = 29.05,
    ms: float = 40.0,
    params: int = 500_000,
    images: int = 100,
    status: str = "ok",
) -> dict[str, Any]:
    return {
        "submission": name,
        "status": status,
        "error": None if status == "ok" else "RuntimeError: boom",
        "psnr_rgb": psnr,
        "psnr_y": psnr + 1.8,
        "runtime_ms": {"mean": ms, "median": ms, "p90": ms, "std": 0.0},
        "params": params,
        "num_images": images,
    }


BASELINE = record("imdn_baseline", psnr=29.13, ms=50.0, params=893_936)


def verdicts(result: dict[str, Any], *, baseline: dict[str, Any] | None = BASELINE, dataset=DIV2K_VAL):
    return {
        item.name: item
        for item in check_constraints(result, baseline=baseline, protocol=PROTOCOL, dataset=dataset)
    }


def test_protocol_file_states_the_challenge_rules() -> None:
    assert (PROTOCOL.name, PROTOCOL.version, PROTOCOL.scale, PROTOCOL.border) == ("ntire2022", 1, 4, 4)
    assert PROTOCOL.fidelity_channel == "rgb" and PROTOCOL.reported_channels == ("rgb", "y")
    assert PROTOCOL.baseline == "imdn_baseline"
    assert PROTOCOL.timing.cudnn_benchmark is False
    assert PROTOCOL.constraints.params_max == 894_000
    assert PROTOCOL.constraints.psnr_min_db == 29.00
    # The proxy margin is IMDN's published margin over the limit on DIV2K val.
    baseline = PROTOCOL.published_baseline
    assert PROTOCOL.constraints.psnr_proxy_margin_db == pytest.approx(baseline.val_psnr_db - 29.00)
    assert (baseline.val_time_ms + baseline.test_time_ms) / 2 == pytest.approx(baseline.ave_time_ms)


def _protocol_data() -> dict[str, Any]:
    import yaml

    from harness import protocols

    return yaml.safe_load((protocols._PROTOCOL_DIR / "ntire2022.yaml").read_text())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(borders=4), "borders: unknown key \\(did you mean 'border'\\?\\)"),
        (lambda d: d["constraints"].update(psnr_min=29), "constraints.psnr_min: unknown key"),
        (lambda d: d.pop("scale"), "ntire2022.yaml: scale: missing"),
        (lambda d: d.update(border="4"), "border: must be an integer, got '4'"),
        (lambda d: d["timing"].update(cudnn_benchmark=1), "timing.cudnn_benchmark: must be true or false"),
        (lambda d: d.update(reported_channels=[]), "reported_channels: must list at least one channel"),
        (
            lambda d: d.update(fidelity_channel="ycbcr"),
            "fidelity_channel: must be one of rgb, y, got 'ycbcr'",
        ),
        (
            lambda d: d.update(reported_channels=["rgb", "cb"]),
            r"reported_channels\[1\]: must be one of rgb, y",
        ),
        (
            lambda d: d["timing"].update(statistic="p90"),
            "timing.statistic: must be one of mean, median, got 'p90'",
        ),
        (lambda d: d.update(scale=5), "ntire2022.yaml: scale: must be 2, 3 or 4, got 5"),
    ],
)
def test_protocol_rejects_bad_files(edit, message: str) -> None:
    data = _protocol_data()
    edit(data)
    with pytest.raises(HarnessError, match=message):
        parse_protocol(data, source="ntire2022.yaml")


def test_unknown_protocol_suggests_the_close_name() -> None:
    with pytest.raises(HarnessError, match="did you mean 'ntire2022'"):
        load_protocol("ntire22")


def test_passing_entry_on_div2k_val_uses_the_absolute_limit() -> None:
    found = verdicts(record(psnr=29.00, ms=49.0, params=893_936))
    assert all(item.passed for item in found.values())
    assert found["psnr"].kind == "absolute" and found["psnr"].limit == 29.00
    assert found["runtime"].value == pytest.approx(49.0 / 50.0)
    assert found["params"].limit == 894_000


def test_limits_are_inclusive_and_exact() -> None:
    assert not verdicts(record(psnr=28.999))["psnr"].passed
    assert not verdicts(record(params=894_001))["params"].passed
    assert verdicts(record(params=894_000))["params"].passed
    # The baseline itself meets the runtime constraint: ratio exactly 1.
    assert verdicts(BASELINE)["runtime"].value == 1.0 and verdicts(BASELINE)["runtime"].passed


def test_other_data_uses_the_baseline_proxy() -> None:
    baseline = record("imdn_baseline", psnr=30.3373, ms=50.0, images=5)
    passing = verdicts(record(psnr=30.2926, images=5), baseline=baseline, dataset=SET5)["psnr"]
    assert passing.kind == "proxy" and passing.passed
    assert passing.limit == pytest.approx(30.3373 - 0.13)
    assert "proxy" in passing.note and "Set5" in passing.note
    failing = verdicts(record(psnr=30.20, images=5), baseline=baseline, dataset=SET5)["psnr"]
    assert not failing.passed and failing.kind == "proxy"


def test_partial_div2k_val_is_judged_by_the_proxy_not_the_absolute_limit() -> None:
    partial_val = {**DIV2K_VAL, "num_images": 10}
    found = verdicts(record(images=10), dataset=partial_val)
    assert found["psnr"].kind == "proxy"


def test_a_split_opened_with_allow_partial_is_never_complete() -> None:
    # --allow-partial: the folder held 10 of the split's 100 images, and all 10 were evaluated.
    partial_split = {**DIV2K_VAL, "num_images": 10, "expected_images": 100}
    found = verdicts(record(images=10), dataset=partial_split)
    assert not found["complete"].passed and "10 of 100" in found["complete"].note


def test_every_check_runs_after_one_fails() -> None:
    found = verdicts(record(params=2_000_000, ms=80.0, psnr=28.5))
    assert set(found) == {"complete", "params", "runtime", "psnr"}
    assert found["complete"].passed
    assert not found["params"].passed and found["params"].value == 2_000_000
    assert not found["runtime"].passed and found["runtime"].value == pytest.approx(1.6)
    assert not found["psnr"].passed and found["psnr"].value == 28.5


class _ExplodingRecord(dict):
    """A record whose params lookup raises, as a corrupt record could."""

    def get(self, key, default=None):
        if key == "params":
            raise RuntimeError("corrupt params")
        return super().get(key, default)


def test_an_exception_inside_a_check_is_a_failure_not_a_skip() -> None:
    found = verdicts(_ExplodingRecord(record()))
    assert not found["params"].passed
    assert "RuntimeError" in found["params"].note and "corrupt params" in found["params"].note
    assert found["runtime"].passed and found["psnr"].passed  # the others still ran
    assert not is_valid(list(found.values()))


def test_missing_baseline_fails_the_checks_that_need_it() -> None:
    found = verdicts(record(), baseline=None)
    assert not found["runtime"].passed and "no baseline" in found["runtime"].note
    assert found["psnr"].passed  # DIV2K val: absolute, no baseline needed
    on_set5 = verdicts(record(images=5), baseline=None, dataset=SET5)
    assert not on_set5["psnr"].passed and "no baseline" in on_set5["psnr"].note


def test_failed_baseline_fails_relative_checks() -> None:
    found = verdicts(record(), baseline=record("imdn_baseline", status="failed"))
    assert not found["runtime"].passed and "failed" in found["runtime"].note


def test_failed_and_partial_results_are_never_valid() -> None:
    failed = verdicts(record(status="failed", images=0))
    assert not failed["complete"].passed and "boom" in failed["complete"].note
    partial = verdicts(record(images=99))
    assert not partial["complete"].passed and "99 of 100" in partial["complete"].note
    assert all(item.passed for name, item in partial.items() if name != "complete")
    assert not is_valid(list(partial.values()))


def test_results_are_dict_able() -> None:
    item = verdicts(record())["params"].as_dict()
    assert {"name", "value", "limit", "passed", "kind", "unit", "note", "operator"} <= set(item)


def test_apply_constraints_fills_every_record() -> None:
    run = {
        "baseline": "imdn_baseline",
        "dataset": DIV2K_VAL,
        "results": [record(), record("slow", ms=60.0), BASELINE],
    }
    assert find_baseline(run, PROTOCOL) is BASELINE
    judged = apply_constraints(run, PROTOCOL)
    assert [r["valid"] for r in judged["results"]] == [True, False, True]
    assert all(len(r["constraints"]) == 4 for r in judged["results"])
    assert "valid" not in run["results"][0]  # the input is not modified


BASE_MEAN = 50.4


def _timed(name: str, ratios: list[float], session: str = "s1", mean_ratio: float | None = None) -> dict:
    """A record timed side by side with the baseline: its paired per-round ratios and its session."""
    mean_ratio = sum(ratios) / len(ratios) if mean_ratio is None else mean_ratio
    base = record(name, ms=mean_ratio * BASE_MEAN)
    base["timing_session"] = session
    base["pairing"] = {"baseline": "imdn_baseline", "baseline_mean_ms": BASE_MEAN, "round_ratios": ratios}
    return base


ONES = [1.0] * 5


def test_runtime_verdict_is_three_valued_from_the_paired_rounds() -> None:
    baseline = _timed("imdn_baseline", ONES)
    # 0.9 of the baseline in every round: the interval is [0.9, 0.9], clear under 1.
    clear = verdicts(_timed("fast", [0.9] * 5), baseline=baseline)["runtime"]
    assert clear.verdict == "pass" and clear.passed and clear.value == pytest.approx(0.9)
    assert clear.interval == pytest.approx((0.9, 0.9))
    assert "paired ratio over 5 round(s) of side-by-side timings, 95% interval 0.900-0.900" in clear.note
    # Ratios 0.95 and 1.04 alternate: the interval straddles 1.
    straddling = verdicts(_timed("close", [0.95, 1.04, 0.95, 1.04, 0.95]), baseline=baseline)["runtime"]
    assert straddling.verdict == "inconclusive" and not straddling.passed
    low, high = straddling.interval
    assert low < 1.0 < high and "inconclusive" in straddling.note and "rounds would decide" in straddling.note
    over = verdicts(_timed("slow", [1.2] * 5), baseline=baseline)["runtime"]
    assert over.verdict == "fail" and over.interval == pytest.approx((1.2, 1.2))
    # The value is the paired ratio; the protocol's ratio of mean runtimes is in the note.
    means = verdicts(_timed("means", [0.9] * 5, mean_ratio=0.93), baseline=baseline)["runtime"]
    assert means.value == pytest.approx(0.9) and "= 0.930" in means.note


def test_rounds_chosen_by_the_data_are_judged_by_the_last_sequential_interval() -> None:
    baseline = _timed("imdn_baseline", ONES)
    # A plain t-interval of these rounds is clear under 1; the wider sequential one reaches over it.
    result = _timed("close", [0.95, 0.97, 0.96, 0.95, 0.96])
    result["rounds_until_decided"] = [{"rounds": 5, "ratio": 0.958, "interval": [0.90, 1.02], "stop": "cap"}]
    runtime = verdicts(result, baseline=baseline)["runtime"]
    assert runtime.verdict == "inconclusive" and runtime.interval == (0.90, 1.02)
    result["rounds_until_decided"][-1]["interval"] = [0.93, 0.99]
    assert verdicts(result, baseline=baseline)["runtime"].verdict == "pass"


def test_runtime_verdict_needs_both_records_from_one_timing_session() -> None:
    baseline = _timed("imdn_baseline", ONES, session="s1")
    other_session = verdicts(_timed("fast", [0.9] * 5, session="s2"), baseline=baseline)
    assert other_session["runtime"].interval is None and other_session["runtime"].verdict == "pass"


def test_an_inconclusive_result_is_neither_valid_nor_invalid() -> None:
    baseline = _timed("imdn_baseline", ONES)
    close = _timed("close", [0.95, 1.04, 0.95, 1.04, 0.95])
    run = {"baseline": "imdn_baseline", "dataset": DIV2K_VAL, "results": [close, baseline]}
    close, base = apply_constraints(run, PROTOCOL)["results"]
    assert close["valid"] is None and base["valid"] is True
    (runtime,) = [c for c in close["constraints"] if c["name"] == "runtime"]
    assert runtime["verdict"] == "inconclusive" and len(runtime["interval"]) == 2
    slow = {**run, "results": [_timed("slow", [1.2] * 5), baseline]}
    assert apply_constraints(slow, PROTOCOL)["results"][0]["valid"] is False
