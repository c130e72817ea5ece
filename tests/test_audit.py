"""The timing audit (harness.runner.audit), driven with the observations of made-up workers."""

from __future__ import annotations

import numpy as np

from harness.runner.audit import REPEATED_CALLS, TimingAudit, timed_score_check

IMAGES, ROUNDS = 4, 5
HR = [np.full((8, 8, 3), 10 * (image + 1), np.uint8) for image in range(IMAGES)]


def psnr_db(image: int, output: np.ndarray) -> float:
    """PSNR of ``output`` against this test's HR, written out (peak 255)."""
    error = float(np.mean((output.astype(np.float64) - HR[image].astype(np.float64)) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def drive(
    audit: TimingAudit,
    name: str,
    *,
    forward_ms: float,
    report_factor: float = 1.0,
    overhead_ms: float = 4.0,
    timed_error: int = 1,
    rerun_error: int = 1,
    repeat_factor: float = 1.0,
    threads_left: int = 0,
    clock_lag_s: float = 0.0,
    idle_cpu_ms: float = 0.05,
    cpu_factor: float = 1.0,
    kernel_counts: bool = True,
) -> None:
    """A worker whose forward pass takes ``forward_ms``; it reports ``report_factor`` of it; its timed
    outputs are HR + ``timed_error`` levels, its re-runs HR + ``rerun_error``; repeated identical
    inputs take ``repeat_factor`` of the time; its clock reads ``clock_lag_s`` behind the host's;
    its processes use ``idle_cpu_ms`` of CPU between two requests, and ``cpu_factor`` of the forward
    pass's wall time in a request, as the kernel counts it (not read at all without
    ``kernel_counts``). The requests follow one another
    on the host's clock, one second apart."""
    cpu_s = 0.0
    for round_index in range(ROUNDS):
        for image in range(IMAGES):
            output = HR[image] + np.uint8(timed_error)
            sent = float(round_index * IMAGES + image)
            started = sent + overhead_ms / 2000 - clock_lag_s  # half the overhead before, half after
            audit.observe(
                name,
                round_index=round_index,
                image=image,
                dither_seed=1000 * round_index + image,
                reported_ms=forward_ms * report_factor + 0.01 * round_index,
                observed_ms=forward_ms + overhead_ms + 0.01 * round_index,
                threads_left=threads_left if round_index == ROUNDS - 1 else 0,
                window=(sent, sent + (forward_ms + overhead_ms) / 1000),
                span=(started, started + forward_ms / 1000),
                cpu=(cpu_s, cpu_s + forward_ms * cpu_factor / 1000) if kernel_counts else (None, None),
            )
            if audit.keeps(round_index, image):
                audit.keep_output(name, round_index, image, 1000 * round_index + image, output)
            cpu_s += (forward_ms * cpu_factor + idle_cpu_ms) / 1000
    for image, _seed in audit.reruns(name):
        audit.rerun_output(name, image, HR[image] + np.uint8(rerun_error))
    for number in range(REPEATED_CALLS):
        fresh_ms = forward_ms * report_factor + 0.01 * number
        audit.repeated(name, fresh_ms * repeat_factor, fresh_ms + 0.02)


def verdicts(audit: TimingAudit, name: str) -> dict[str, str]:
    accuracy = {image: psnr_db(image, HR[image] + np.uint8(1)) for image in range(IMAGES)}
    return {check.name: check.verdict for check in audit.checks(name, accuracy)}


def audited(same_clock: bool = True, reports_wall_time: bool = True, **cheat: float) -> dict[str, str]:
    audit = TimingAudit(
        seed=3,
        images=IMAGES,
        min_rounds=ROUNDS,
        baseline="base",
        score_db=psnr_db,
        same_clock=same_clock,
        reports_wall_time=reports_wall_time,
    )
    drive(audit, "base", forward_ms=20.0)
    drive(audit, "sub", forward_ms=40.0, **cheat)
    return verdicts(audit, "sub")


ALL_PASS = {
    "timed_outputs": "pass",
    "timed_scores": "pass",
    "clocks": "pass",
    "repeated_inputs": "pass",
    "threads": "pass",
    "idle_work": "pass",
}


def test_an_honest_worker_passes_every_check() -> None:
    assert audited() == ALL_PASS


def test_each_image_has_one_kept_output_and_one_rerun() -> None:
    audit = TimingAudit(seed=3, images=IMAGES, min_rounds=ROUNDS, baseline="base")
    kept = [(r, i) for r in range(ROUNDS) for i in range(IMAGES) if audit.keeps(r, i)]
    assert sorted(image for _, image in kept) == list(range(IMAGES))


def test_a_report_of_half_the_time_fails_the_clock_check() -> None:
    assert audited(report_factor=0.5) == {**ALL_PASS, "clocks": "fail"}


def test_a_clock_behind_the_hosts_fails_even_when_its_durations_agree() -> None:
    assert audited(clock_lag_s=0.5) == {**ALL_PASS, "clocks": "fail"}
    # On another host (a Ray node) the worker's clock is its own: only the durations are compared.
    assert audited(same_clock=False, clock_lag_s=0.5) == ALL_PASS


def test_work_left_running_between_timed_calls_fails() -> None:
    # Forward 40 ms: allowed the baseline's 0.05 ms plus 4 ms per window between two calls.
    assert audited(idle_cpu_ms=4.0) == ALL_PASS
    assert audited(idle_cpu_ms=4.1) == {**ALL_PASS, "idle_work": "fail"}


def test_cpu_time_is_compared_only_between_calls_of_one_round() -> None:
    audit = TimingAudit(seed=3, images=IMAGES, min_rounds=ROUNDS, baseline="base")
    drive(audit, "sub", forward_ms=40.0, idle_cpu_ms=1.0)
    # Each round's first call has no window before it: (IMAGES - 1) windows per round.
    windows = [check for check in audit.checks("sub") if check.name == "idle_work"][0]
    assert f"({(IMAGES - 1) * ROUNDS} windows;" in windows.detail


def test_cpu_time_reports_are_compared_with_the_kernels_count_not_the_wall_clock() -> None:
    # Under --clock cpu an honest worker on a loaded machine reports less CPU time than the wall
    # time the coordinator sees (here half), or more with several threads (here twice): what the
    # kernel counted for its processes over the request, which the report must match.
    assert audited(reports_wall_time=False, report_factor=0.5, cpu_factor=0.5) == ALL_PASS
    assert audited(reports_wall_time=False, report_factor=2.0, cpu_factor=2.0) == ALL_PASS
    # Half of what the kernel counted: a forged report, as under the wall clock.
    forged = audited(reports_wall_time=False, report_factor=0.5)
    assert forged == {**ALL_PASS, "clocks": "fail"}
    audit = TimingAudit(seed=3, images=IMAGES, min_rounds=ROUNDS, baseline="base", reports_wall_time=False)
    drive(audit, "base", forward_ms=20.0)
    drive(audit, "sub", forward_ms=40.0, report_factor=0.5)
    clocks = next(check for check in audit.checks("sub") if check.name == "clocks")
    assert clocks.detail.startswith(
        "clocks disagree: the worker reported 20 ms per forward pass, the kernel's count"
    )
    # A span outside the coordinator's window is still a clock that is not the host's.
    assert audited(reports_wall_time=False, cpu_factor=1.0, clock_lag_s=0.5) == {**ALL_PASS, "clocks": "fail"}


def test_without_the_kernels_count_cpu_time_reports_get_the_window_test_only() -> None:
    audit = TimingAudit(seed=3, images=IMAGES, min_rounds=ROUNDS, baseline="base", reports_wall_time=False)
    drive(audit, "base", forward_ms=20.0, kernel_counts=False)
    drive(audit, "sub", forward_ms=40.0, report_factor=0.5, kernel_counts=False)
    clocks = next(check for check in audit.checks("sub") if check.name == "clocks")
    assert clocks.verdict == "pass" and clocks.detail.startswith(
        f"{ROUNDS * IMAGES} spans inside their windows"
    )
    assert "sizes not compared: --clock cpu reports CPU time" in clocks.detail
    # On another host there are no windows to check, and no clocks check is recorded.
    assert "clocks" not in audited(
        same_clock=False, reports_wall_time=False, report_factor=0.5, kernel_counts=False
    )


def test_timed_outputs_that_differ_from_their_reruns_fail() -> None:
    assert audited(rerun_error=5)["timed_outputs"] == "fail"


def test_a_cheaper_model_in_timed_calls_fails_even_when_its_reruns_agree() -> None:
    # Timed calls (and their re-runs) are 8 levels off instead of 1: 18.1 dB lower.
    assert audited(timed_error=8, rerun_error=8) == {**ALL_PASS, "timed_scores": "fail"}


def test_a_cache_answering_repeated_inputs_fails_the_repeat_check() -> None:
    assert audited(repeat_factor=0.3) == {**ALL_PASS, "repeated_inputs": "fail"}


def test_the_baseline_is_the_clock_reference_and_is_not_clock_checked() -> None:
    audit = TimingAudit(seed=3, images=IMAGES, min_rounds=ROUNDS, baseline="base")
    drive(audit, "base", forward_ms=20.0)
    assert "clocks" not in {check.name for check in audit.checks("base")}


def test_the_score_check_allows_the_dithers_room_in_squared_error_and_no_more() -> None:
    # 30 dB is an MSE of 65.025 levels^2; room: 10% of it plus 8, up to 79.528 (29.125 dB).
    assert timed_score_check({0: ("r", 29.13)}, {0: 30.0}).verdict == "pass"
    check = timed_score_check({0: ("round 2, image 1", 29.12)}, {0: 30.0})
    assert check.verdict == "fail" and check.detail.startswith(
        "round 2, image 1: the timed output scores 0.88 dB under"
    )
    # The worst image decides; an identical pair (inf dB) leaves only the absolute room (8: 39.1 dB).
    assert timed_score_check({0: ("a", 29.9), 1: ("b", 39.2)}, {0: 30.0, 1: float("inf")}).verdict == "pass"
    assert timed_score_check({0: ("a", 29.9), 1: ("b", 39.0)}, {0: 30.0, 1: float("inf")}).verdict == "fail"


def test_the_clock_room_grows_with_the_delays_the_machine_gave_the_baselines_requests() -> None:
    def calls(audit: TimingAudit, name: str, reported_ms: float, gaps_ms: list[float]) -> None:
        for number, gap in enumerate(gaps_ms):
            audit.observe(
                name,
                round_index=number // IMAGES,
                image=number % IMAGES,
                dither_seed=number,
                reported_ms=reported_ms,
                observed_ms=reported_ms + gap,
            )

    def clocks(base_gaps: list[float]) -> str:
        audit = TimingAudit(seed=3, images=IMAGES, min_rounds=ROUNDS, baseline="base")
        calls(audit, "base", 20.0, base_gaps)
        calls(audit, "sub", 1.0, [11.0] * 20)  # 1 ms reported, 12 ms seen: 8 ms beyond the 3 ms overhead
        return next(check for check in audit.checks("sub") if check.name == "clocks").verdict

    # Twenty baseline requests, 3 ms over their forward pass each: room max(25% of 9, 5) = 5 ms.
    assert clocks([3.0] * 20) == "fail"
    # Two of them delayed by 12 ms: the 90th percentile (18th of 20) is still 3 ms; no more room.
    assert clocks([3.0] * 18 + [15.0] * 2) == "fail"
    # Three: the 18th gap is 15 ms, 12 over the median: room 12 ms, and 8 ms under passes.
    assert clocks([3.0] * 17 + [15.0] * 3) == "pass"
