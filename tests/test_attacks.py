"""Cheats on the timing, each a submission under tests/attacks/, in one run beside honest models.

Every attack is caught (an integrity check fails, or the submission fails with the reason) while
clb_imdn and the imdn_baseline are scored and ranked as usual with every check passed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.commands import run as esr
from harness.integrity import integrity_failure
from tests.test_faults import _options, _tiny_data

ATTACKS = Path(__file__).parent / "attacks"

#: attack folder: (submission name, the check that catches it, or "failed" and the reason's words)
CAUGHT = {
    "cache_by_input": ("attack_cache_by_input", "repeated_inputs"),
    "stack_detector": ("attack_stack_detector", "timed_scores"),
    "slow_clock": ("attack_slow_clock", "clocks"),
    "forged_report": ("attack_forged_report", "clocks"),
    "late_output": ("attack_late_output", "timed_scores"),
    "late_thread": ("attack_late_thread", "threads"),
    "late_process": ("attack_late_process", "idle_work"),
    "lazy_tensor": ("attack_lazy_tensor", "failed: a subclass of torch.Tensor"),
    "pickle_reply": (
        "attack_pickle_reply",
        "failed: the reply names builtins.exec, which is not part of the protocol",
    ),
}
HONEST = ("clb_imdn", "imdn_baseline")
#: attack folder: submission name, of cheats that wait for a hint the harness must never give
UNHINTED = {"audited_once": "attack_audited_once"}


@pytest.fixture(scope="module")
def attacked_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, dict], Path]:
    zoo = os.environ.get("ESR_MODEL_ZOO")
    if not zoo or not Path(zoo).is_dir():
        pytest.skip("ESR_MODEL_ZOO is not set to a folder (export ESR_MODEL_ZOO=../shared/model_zoo)")
    root = tmp_path_factory.mktemp("attacks")
    data = _tiny_data(root / "data")
    attacks = [str(ATTACKS / folder) for folder in [*CAUGHT, *UNHINTED]]
    argv = ["evaluate", *attacks, "clb_imdn", "--data", str(data)]
    # Three fixed rounds: the audit draws its calls within them; the sandbox is not what this tests.
    options = _options(root, Path(zoo), "--timeout", "300", "--sandbox", "off")
    options[options.index("--rounds") + 1] = "3"
    status = esr([*argv, *options])
    document = json.loads((root / "out" / "results.json").read_text())
    return status, {record["submission"]: record for record in document["results"]}, root


@pytest.mark.parametrize("folder", list(CAUGHT))
def test_each_attack_is_caught(attacked_run, folder: str) -> None:
    status, records, _ = attacked_run
    assert status == 1  # submission faults: the run completed, the exit code says so
    name, caught_by = CAUGHT[folder]
    record = records[name]
    if caught_by.startswith("failed: "):
        assert record["status"] == "failed" and caught_by.removeprefix("failed: ") in record["error"]
        return
    assert record["status"] == "ok" and record["valid"] is False, record.get("integrity")
    failed = [check["name"] for check in record["integrity"]["checks"] if check["verdict"] == "fail"]
    assert caught_by in failed, record["integrity"]
    # Work left running also slows the reply under load, so a second check may fail first.
    assert integrity_failure(record).startswith(f"integrity: {failed[0]}: ")


@pytest.mark.parametrize("folder", list(UNHINTED))
def test_no_request_tells_a_worker_which_calls_are_audited(attacked_run, folder: str) -> None:
    """The attack would cheat on an image once told it was audited; it never is, so it gains nothing."""
    _, records, root = attacked_run
    name = UNHINTED[folder]
    record = records[name]
    assert record["status"] == "ok" and record["integrity"]["verdict"] == "pass", integrity_failure(record)
    logs = sorted((root / "out" / "logs").glob(f"{name}*.log"))
    assert logs and not any("hint:" in log.read_text() for log in logs)


def test_a_reply_that_runs_code_when_read_is_refused_unread(attacked_run) -> None:
    from harness.runner import messages

    assert not hasattr(messages, "PWNED")  # the coordinator (this process) never ran the payload


@pytest.mark.parametrize("name", HONEST)
def test_honest_models_pass_every_check_and_keep_their_scores(attacked_run, name: str) -> None:
    _, records, _ = attacked_run
    record = records[name]
    assert record["status"] == "ok" and record["integrity"]["verdict"] == "pass", integrity_failure(record)
    names = {check["name"] for check in record["integrity"]["checks"]}
    expected = {"timed_outputs", "timed_scores", "repeated_inputs", "threads", "idle_work"}
    # The baseline is the clock reference: only the others are clock-checked.
    assert names == (expected if name == "imdn_baseline" else expected | {"clocks"})
    assert record["psnr_rgb"] is not None and record["params"] is not None


def test_the_leaderboard_lists_the_cheats_without_ranking_them(attacked_run) -> None:
    from harness.leaderboard import build_leaderboard, load_run

    _, _, root = attacked_run
    rows = build_leaderboard([load_run(root / "out")], style="ntire2022").rows.set_index("team")
    _, records, _ = attacked_run
    for name, caught_by in CAUGHT.values():
        assert not rows.loc[name, "ranked"]
        if caught_by.startswith("failed"):
            expected = "failed: "
        else:
            failed = [
                check["name"] for check in records[name]["integrity"]["checks"] if check["verdict"] == "fail"
            ]
            expected = f"not ranked: integrity: {failed[0]}: "
        assert rows.loc[name, "note"].startswith(expected), rows.loc[name, "note"]
    assert rows.loc["clb_imdn", "ranked"]
