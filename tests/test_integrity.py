"""The integrity checks (harness.integrity): each decision with its arithmetic written out here."""

from __future__ import annotations

import numpy as np
import pytest

from harness.integrity import (
    CallWindow,
    Check,
    clock_check,
    draw_audited_rounds,
    idle_work_check,
    integrity_failure,
    integrity_record,
    output_audit,
    outputs_agree,
    repeated_input_check,
)

SANDBOX = {"enabled": True, "bwrap": "/usr/bin/bwrap"}


def test_one_failed_check_fails_the_record_and_names_its_reason() -> None:
    checks = [Check("clocks", "pass", "fine"), Check("timed_outputs", "fail", "1 of 6 differ")]
    record = {"integrity": integrity_record(SANDBOX, checks)}
    assert record["integrity"] == {
        "sandbox": SANDBOX,
        "checks": [
            {"name": "clocks", "verdict": "pass", "detail": "fine"},
            {"name": "timed_outputs", "verdict": "fail", "detail": "1 of 6 differ"},
        ],
        "verdict": "fail",
    }
    assert integrity_failure(record) == "integrity: timed_outputs: 1 of 6 differ"


def test_passing_checks_and_records_without_checks_give_no_reason() -> None:
    assert integrity_record(SANDBOX, [Check("clocks", "pass", "fine")])["verdict"] == "pass"
    assert integrity_failure({"integrity": integrity_record(SANDBOX, [])}) is None
    assert integrity_failure({"status": "ok"}) is None


def test_outputs_agree_within_one_level_on_all_but_one_in_a_thousand_values() -> None:
    untimed = np.full(2000, 100, np.uint8)
    timed = untimed.copy()
    timed[:2000] += 1  # every value one level off: still equal within the tolerance
    assert outputs_agree(timed, untimed)[0]
    timed = untimed.copy()
    timed[:2] = 103  # 2 of 2000 values 3 levels off: 99.9% within, exactly the bound
    agreed, detail = outputs_agree(timed, untimed)
    assert agreed and "largest difference 3" in detail
    timed[:3] = 103  # 3 of 2000: 99.85% within
    assert not outputs_agree(timed, untimed)[0]


def test_outputs_of_other_shapes_never_agree() -> None:
    agreed, detail = outputs_agree(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    assert not agreed and "shape (4, 4, 3)" in detail


def test_a_level_difference_is_not_wrapped_around_in_uint8() -> None:
    # 0 - 255 in uint8 would wrap to 1 and pass; the difference is 255.
    assert not outputs_agree(np.zeros(10, np.uint8), np.full(10, 255, np.uint8))[0]


def test_the_output_audit_fails_on_one_disagreement_and_names_the_first() -> None:
    comparisons = [
        ("round 1, a", True, "ok"),
        ("round 4, b", False, "90% within"),
        ("round 2, c", False, "x"),
    ]
    check = output_audit(comparisons)
    assert check.verdict == "fail"
    assert (
        check.detail.startswith("2 of 3 audited timed outputs differ")
        and "round 4, b, 90% within" in check.detail
    )
    assert output_audit([("round 1, a", True, "ok")]).verdict == "pass"
    assert output_audit([]).verdict == "fail"  # an audit that saw nothing proves nothing


def test_every_image_gets_one_audited_round_within_the_minimum_drawn_from_the_seed() -> None:
    drawn = draw_audited_rounds(seed=7, images=50, rounds=5)
    assert sorted(drawn) == list(range(50)) and set(drawn.values()) <= set(range(5))
    assert len(set(drawn.values())) > 1  # not all the same round
    assert draw_audited_rounds(seed=7, images=50, rounds=5) == drawn  # recorded seed, same draw
    assert draw_audited_rounds(seed=8, images=50, rounds=5) != drawn
    with pytest.raises(ValueError):
        draw_audited_rounds(seed=7, images=3, rounds=0)


def test_clocks_agree_when_the_report_is_what_the_coordinator_saw_less_the_overhead() -> None:
    # Coordinator: 110 ms per request, 10 ms of it overhead: the forward pass took about 100 ms.
    assert clock_check([100.0, 99.0, 101.0], [110.0, 111.0, 109.0], overhead_ms=10.0).verdict == "pass"
    # 76 ms reported against 100 seen: 24% under, within the 25% margin.
    assert clock_check([76.0], [110.0], overhead_ms=10.0).verdict == "pass"
    # 74 ms: 26% under what the coordinator saw.
    check = clock_check([74.0], [110.0], overhead_ms=10.0)
    assert check.verdict == "fail" and check.detail.startswith("clocks disagree")
    # Short passes: 5 ms under is within the floor even at 56%; 6 ms is not.
    assert clock_check([4.0], [10.0], overhead_ms=1.0).verdict == "pass"
    assert clock_check([3.0], [10.0], overhead_ms=1.0).verdict == "fail"
    # Under load: when one in ten of the baseline's requests was delayed by 8 ms, 6 ms under is room.
    assert clock_check([3.0], [10.0], overhead_ms=1.0, delay_ms=8.0).verdict == "pass"
    assert clock_check([0.5], [10.0], overhead_ms=1.0, delay_ms=8.0).verdict == "fail"  # 8.5 ms under


def test_a_clock_slowed_to_half_speed_is_caught_through_the_medians() -> None:
    reported = [50.0] * 9 + [500.0]  # one honest-looking outlier does not rescue it
    observed = [105.0] * 9 + [510.0]
    assert clock_check(reported, observed, overhead_ms=5.0).verdict == "fail"


def window(sent: float, started: float, ended: float, answered: float) -> CallWindow:
    return CallWindow("round 1, image 2", sent, answered, started, ended)


def test_the_workers_span_must_lie_inside_the_coordinators_window_exactly() -> None:
    sizes = ([100.0], [110.0], 10.0)  # sizes that agree: only the windows can fail
    inside = [window(5.0, 5.002, 5.102, 5.110), window(6.0, 6.0, 6.1, 6.1)]  # edges included
    check = clock_check(*sizes, windows=inside)
    assert check.verdict == "pass" and check.detail.endswith("2 spans inside their windows")
    # A clock slowed since the model was built reads behind the host's: before the request was sent.
    behind = clock_check(*sizes, windows=[*inside, window(7.0, 6.5, 6.6, 7.11)])
    assert behind.verdict == "fail"
    assert behind.detail.startswith("clocks disagree: 1 of 3 timed calls ran, by the worker's clock, outside")
    assert "round 1, image 2: worker 6.500000-6.600000 s, request 7.000000-7.110000 s" in behind.detail
    # Ending after the answer left is as impossible for an honest worker (by a microsecond here).
    assert clock_check(*sizes, windows=[window(8.0, 8.001, 8.110001, 8.11)]).verdict == "fail"


def test_without_a_measured_overhead_only_the_windows_are_checked() -> None:
    assert clock_check([1.0], [500.0], None, windows=[window(1.0, 1.1, 1.2, 1.5)]).verdict == "pass"
    assert clock_check([1.0], [500.0], None, windows=[window(1.0, 0.9, 1.2, 1.5)]).verdict == "fail"


def test_work_between_timed_calls_is_allowed_the_baselines_plus_a_tenth_of_the_forward_pass() -> None:
    # Baseline: 1 ms per window; forward pass 50 ms: 1 + max(5, 2) = 6 ms allowed per window.
    assert idle_work_check([6.0, 6.0], [1.0, 1.0], forward_ms=50.0).verdict == "pass"
    check = idle_work_check([6.0, 6.1], [1.0, 1.0], forward_ms=50.0)  # mean 6.05
    assert check.verdict == "fail" and check.detail.startswith("computes between its timed calls: 6.05 ms")
    # A short forward pass gets the 2 ms floor; without a baseline the reference is 0.
    alone = idle_work_check([2.0], None, forward_ms=1.0)
    assert alone.detail == "2 ms of CPU between timed calls (1 windows; its forward pass 1 ms)"
    assert idle_work_check([2.1], None, forward_ms=1.0).verdict == "fail"
    # The mean counts work deferred in a few calls only: 0, 0, 0, 9 ms is 2.25 ms per window.
    assert idle_work_check([0.0, 0.0, 0.0, 9.0], None, forward_ms=1.0).verdict == "fail"
    with pytest.raises(ValueError):
        idle_work_check([], None, forward_ms=1.0)


def test_repeated_inputs_fail_only_when_the_medians_interval_is_under_ninety_percent() -> None:
    fresh = [100.0] * 9
    # Nine pair ratios; for n = 9 the median's 95% interval is [x(2), x(8)] (coverage 96.1%).
    check = repeated_input_check([50.0] * 8 + [300.0], fresh)  # a cache, one pair upset by the load
    assert check.verdict == "fail" and check.detail.endswith("0.500 [0.500, 0.500]")
    # Two slow pairs reach x(8): the interval [0.5, 3.0] is not wholly under 0.9.
    assert repeated_input_check([50.0] * 7 + [300.0, 300.0], fresh).verdict == "pass"
    honest = repeated_input_check([99.0, 101.0, 100.0, 98.0, 102.0, 97.0, 103.0, 100.0, 100.0], fresh)
    assert honest.verdict == "pass" and honest.detail.endswith("1.000 [0.980, 1.020]")
    # x(8) = 0.89: the whole interval is under 0.90.
    assert repeated_input_check([80.0] * 7 + [89.0, 95.0], fresh).verdict == "fail"
    with pytest.raises(ValueError):
        repeated_input_check([80.0] * 6, [100.0] * 5)


# -- what a failed check does downstream: invalid, listed not ranked, its reason printed ----------


def test_a_failed_integrity_check_is_invalid_in_every_reader_whatever_the_constraints_say() -> None:
    from harness.terminal_summary import results_table
    from harness.verdicts import record_validity
    from tests.test_terminal_summary import record, run_document

    cheat = record(
        "cheat",
        valid=True,  # its constraints all pass
        integrity=integrity_record(SANDBOX, [Check("clocks", "fail", "clocks disagree: 50 ms vs 100 ms")]),
    )
    honest = record("honest", integrity=integrity_record(SANDBOX, [Check("clocks", "pass", "fine")]))
    assert record_validity(cheat) == "fail" and record_validity(honest) == "pass"
    text = results_table(run_document([honest, cheat]))
    assert "INVALID cheat: integrity: clocks: clocks disagree: 50 ms vs 100 ms" in text
    assert "INVALID honest" not in text


def test_judging_a_run_makes_a_record_that_failed_integrity_invalid() -> None:
    from harness.constraints import apply_constraints
    from harness.protocols import load_protocol

    protocol = load_protocol("ntire2022")
    dataset = {"name": "DIV2K", "split": "val", "num_images": 1}
    base = {
        "submission": "imdn_baseline",
        "status": "ok",
        "psnr_y": 29.13,
        "psnr_rgb": 29.13,
        "params": 893936,
        "num_images": 1,
        "runtime_ms": {"mean": 20.0},
    }
    honest = {**base, "submission": "honest", "params": 700000, "runtime_ms": {"mean": 15.0}}
    cheat = {**honest, "submission": "cheat"}
    cheat["integrity"] = integrity_record(SANDBOX, [Check("timed_outputs", "fail", "1 of 6 differ")])
    run = {"baseline": "imdn_baseline", "dataset": dataset, "results": [base, honest, cheat]}
    judged = {record["submission"]: record for record in apply_constraints(run, protocol)["results"]}
    assert judged["honest"]["valid"] is not False, judged["honest"]["constraints"]
    assert judged["cheat"]["valid"] is False
    assert judged["cheat"]["constraints"] == judged["honest"]["constraints"]
