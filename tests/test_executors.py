"""The executor table: what `--executor` offers, and the in-process executor's agreement with processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.commands import build_parser
from harness.runner import evaluate_run
from harness.runner.executors import EXECUTORS, ExecutorSettings, make_executor
from harness.runner.in_process import InProcessExecutor
from tests.test_workers import _by_name, _config, _pairs, _write_submission


@pytest.fixture
def torch_threads():
    """In-process workers set this process's torch threads (as each worker does its own): restored."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_command_line_offers_every_executor_of_the_table() -> None:
    parser = build_parser()
    for name in EXECUTORS:
        args = parser.parse_args(["evaluate", "clb_imdn", "--executor", name])
        assert args.executor == name
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "clb_imdn", "--executor", "carrier-pigeon"])


@pytest.mark.parametrize("name", ["local", "inprocess"])
def test_an_executor_of_this_machine_has_one_lane_per_device(name: str) -> None:
    executor = make_executor(name, ExecutorSettings([torch.device("cpu"), torch.device("cpu")]))
    try:
        assert [(lane.index, lane.device, lane.exclusive) for lane in executor.lanes] == [
            (0, "cpu", "cpu"),
            (1, "cpu", "cpu"),
        ]
    finally:
        executor.close()


def test_local_processes_and_ray_actors_are_sandboxed() -> None:
    assert {name for name, kind in EXECUTORS.items() if kind.sandboxes} == {"local", "ray"}


def test_workers_in_this_process_score_every_image_as_worker_processes_do(
    tmp_path: Path, torch_threads
) -> None:
    subs = [_write_submission(tmp_path / name, name) for name in ("a", "b")]
    baseline = _write_submission(tmp_path / "base", "base")
    processes = evaluate_run(subs, _pairs(3), _config(tmp_path / "processes"), baseline=baseline)
    here = evaluate_run(
        subs,
        _pairs(3),
        _config(tmp_path / "here"),
        baseline=baseline,
        executor=InProcessExecutor([torch.device("cpu")]),
    )
    keys = ("name", "psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")
    for name in ("a", "b", "base"):
        record = _by_name(here)[name]
        assert record["status"] == "ok" and record["rounds_used"] == 2
        scores = [[image[key] for key in keys] for image in record["per_image"]]
        assert scores == [[image[key] for key in keys] for image in _by_name(processes)[name]["per_image"]]
        assert record["params"] == _by_name(processes)[name]["params"]
