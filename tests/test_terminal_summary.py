"""Terminal tables of `esr evaluate` and `esr check`: width, footnotes, three-valued verdicts, intervals."""

from __future__ import annotations

from typing import Any

from harness.footnotes import Footnotes
from harness.terminal_summary import constraint_table, results_table
from harness.verdicts import format_interval, interval, overall, record_validity, verdict

LONG_ERROR = "RuntimeError: " + "the submission's forward pass raised deep inside its attention block; " * 5


def constraint(name: str, value: float | None, passed: bool, **extra: Any) -> dict[str, Any]:
    """A constraint record as the run document stores it (no interval unless ``extra`` gives one)."""
    return {
        "name": name,
        "value": value,
        "limit": 1.0,
        "operator": "<=",
        "passed": passed,
        "kind": "relative",
        "unit": "x baseline",
        "note": "",
        "verdict": "pass" if passed else "fail",
        "interval": None,
        **extra,
    }


def record(name: str, *, status: str = "ok", valid: bool | None = True, **extra: Any) -> dict[str, Any]:
    ok = status == "ok"
    return {
        "submission": name,
        "status": status,
        "error": None if ok else LONG_ERROR,
        "cached": False,
        "psnr_rgb": 30.2926 if ok else None,
        "psnr_y": 32.1857 if ok else None,
        "ssim_y": 0.89418 if ok else None,
        "runtime_ms": {"mean": 24.5} if ok else None,
        "max_memory_mb": 120.5 if ok else None,
        "params": 790496 if ok else None,
        "flops": 51757711360 if ok else None,
        "valid": valid,
        "constraints": [constraint("runtime", 0.83 if ok else None, ok)],
        **extra,
    }


def run_document(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "dataset": {"name": "DIV2K", "split": "val", "num_images": 100, "scale": 4},
        "device": {"gpu_name": "NVIDIA H200", "device_type": "cuda"},
        "timing": {"device": "cuda"},
        "protocol": "ntire2022",
        "protocol_version": 1,
        "baseline": "imdn_baseline",
        "results": results,
    }


INCONCLUSIVE_RUNTIME = constraint(
    "runtime",
    0.97,
    False,
    verdict="inconclusive",
    interval=[0.91, 1.04],
    note="mean 24.50 ms / imdn_baseline 25.26 ms over 5 interleaved rounds; the 95% interval straddles 1.0",
)


def test_results_table_fits_120_columns_and_prints_a_failure_once_under_the_table() -> None:
    new_style = record(
        "ntire2022:ByteESR",
        valid=None,
        constraints=[constraint("params", 433448, True), INCONCLUSIVE_RUNTIME],
    )
    text = results_table(
        run_document([record("clb_imdn"), new_style, record("broken", status="failed", valid=False)])
    )
    lines = text.splitlines()
    table_end = next(i for i, line in enumerate(lines) if line.startswith("x baseline:"))
    assert max(len(line) for line in lines[:table_end]) <= 120, text
    assert text.count(LONG_ERROR) == 1
    assert lines.index(f"FAILED broken: {LONG_ERROR}") > table_end
    row = next(line for line in lines if line.startswith("ntire2022:ByteESR"))
    assert row.endswith("inconclusive") and "0.970 [0.910, 1.040]" in row
    assert next(line for line in lines if line.startswith("broken")).endswith("failed")
    assert "x baseline [95% CI]" in lines[1]
    clb = next(line for line in lines if line.startswith("clb_imdn"))
    assert clb.endswith("yes") and "0.830" in clb and "[" not in clb  # no interval recorded


def test_results_table_of_an_old_cpu_run_drops_the_columns_it_has_no_values_for() -> None:
    old = record("clb_imdn", max_memory_mb=None, cached=True)
    document = run_document([old]) | {"timing": {"device": "cpu"}}
    text = results_table(document)
    header = text.splitlines()[1]
    assert "mem MB" not in header and "CI" not in header and header.split()[-1] == "valid"
    assert "Reused from the cache (timed together by an earlier command): clb_imdn." in text


def test_constraint_table_shows_three_verdicts_the_interval_and_footnotes() -> None:
    item = record(
        "clb_imdn",
        valid=None,
        constraints=[constraint("params", 790496, True), INCONCLUSIVE_RUNTIME],
    )
    text = constraint_table(item)
    lines = text.splitlines()
    assert lines[0].startswith("clb_imdn: INCONCLUSIVE")
    runtime = next(line for line in lines if line.startswith("runtime"))
    assert "INCONCLUSIVE" in runtime and "[0.910, 1.040]" in runtime and runtime.endswith("[1]")
    assert lines[-1] == f"[1] {INCONCLUSIVE_RUNTIME['note']}"
    assert text.count(INCONCLUSIVE_RUNTIME["note"]) == 1
    assert max(len(line) for line in lines[:-1]) <= 120


def test_constraint_table_of_an_old_record_derives_the_verdict_from_passed() -> None:
    failed = record("broken", status="failed", valid=False)
    failed["constraints"] = [
        constraint("complete", 0, False, note=f"status failed: {LONG_ERROR}"),
        constraint("params", 1, True),
    ]
    text = constraint_table(failed)
    assert text.splitlines()[0] == "broken: NOT VALID"
    assert "FAIL" in text and "PASS" in text and "CI" not in text
    assert text.count(LONG_ERROR) == 1


def test_verdicts_read_records() -> None:
    # Records of schema version 1 (only `passed`) get their verdict when read: tests/test_schema.py.
    assert verdict({"passed": True, "verdict": "pass"}) == "pass"
    assert verdict({"passed": False, "verdict": "inconclusive"}) == "inconclusive"
    assert overall([{"verdict": "pass"}, {"verdict": "inconclusive"}]) == "inconclusive"
    assert overall([{"verdict": "fail"}, {"verdict": "inconclusive"}]) == "fail"
    assert overall([]) is None
    # A null `valid` beside verdicts is inconclusive, never valid; without verdicts there is no validity.
    assert record_validity({"valid": None, "constraints": [{"verdict": "pass"}]}) == "inconclusive"
    assert record_validity({"valid": None}) is None and record_validity({"valid": True}) == "pass"
    assert interval({"interval": [0.5, 0.75]}) == (0.5, 0.75)
    assert interval({"interval": [0.9, 0.8]}) is None and interval({"interval": "x"}) is None
    assert interval({}) is None and format_interval(None) == ""
    assert format_interval((0.5, 0.75), 2) == "[0.50, 0.75]"


def test_footnotes_number_long_texts_once() -> None:
    notes = Footnotes(inline_up_to=5)
    assert notes.mark("short") == "short"
    assert notes.mark("a longer text") == "[1]" and notes.mark("another long one") == "[2]"
    assert notes.mark("a longer text") == "[1]"
    assert notes.lines() == ["[1] a longer text", "[2] another long one"]


def test_the_footer_names_the_ratio_the_column_holds() -> None:
    paired = record("clb_imdn", pairing={"baseline": "imdn_baseline", "lane": 0, "round_ratios": [0.9, 0.8]})
    new = results_table(run_document([paired]))
    assert "x baseline: paired runtime ratio to imdn_baseline, timed side by side in this run" in new
    old = results_table(run_document([record("clb_imdn")]))  # written before paired timing
    assert "x baseline: runtime / imdn_baseline's, measured in this run on this device." in old


def test_the_summary_says_how_many_rounds_each_submission_took_and_why_it_stopped() -> None:
    from harness.terminal_summary import rounds_line

    run = {
        "results": [
            {"submission": "a", "status": "ok", "rounds_used": 5, "stop_reason": "decided"},
            {"submission": "b", "status": "ok", "rounds_used": 30, "stop_reason": "cap"},
            {"submission": "c", "status": "ok", "rounds_used": 9, "stop_reason": "resolution"},
            {"submission": "base", "status": "ok", "rounds_used": 30, "stop_reason": None},
            {"submission": "broken", "status": "failed"},
        ]
    }
    assert rounds_line(run) == (
        "Rounds until decided: a decided after 5 rounds; b not decided within the cap (30 rounds); "
        "c within the resolution after 9 rounds."
    )
    assert rounds_line({"results": [{"submission": "a", "status": "ok", "stop_reason": None}]}) is None


def test_cpu_time_runtimes_are_said_not_to_be_the_protocols() -> None:
    wall = run_document([record("clb_imdn")])
    cpu = {**wall, "timing": {"device": "cpu", "clock": "cpu"}}
    assert "CPU time" not in results_table(wall)
    assert "Runtimes are CPU time (--clock cpu)" in results_table(cpu)
    assert "not the protocol's wall clock, so not official" in results_table(cpu)
