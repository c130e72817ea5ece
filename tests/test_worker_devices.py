"""What a worker does per device: its lane's GPU made current, every input size primed before round 1.

The CPU tests drive :class:`SubmissionWorker` in this process, with fakes where a GPU would be
needed; the ``cuda`` tests run a real worker on a non-zero GPU where a second one exists.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from harness.runner import RunConfig, TimingSettings, evaluate_run
from harness.runner import messages as msg
from harness.runner import worker as worker_module
from harness.runner.worker import SubmissionWorker
from harness.submissions import resolve_submission
from harness.timing import PerfCounterTimer
from tests.test_workers import Pairs


class ShapeRecorder(nn.Module):
    """Nearest-neighbour x4 that notes the size of every input it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")


class _Split:
    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def lr(self, index: int) -> np.ndarray:
        return self.images[index]


def _worker_with(model: nn.Module, lr_images: list[np.ndarray]) -> SubmissionWorker:
    """A worker whose model and inputs are set directly: the parts of a Load that warm-up reads."""
    worker = SubmissionWorker()
    worker.loaded = SimpleNamespace(model=model)  # type: ignore[assignment]
    worker.cell_forward = model  # the protocol's fp32 cell: the model itself
    submission = SimpleNamespace(scale=4, tile=None, tile_overlap=32, input_range=1.0)
    worker.request = SimpleNamespace(submission=submission, split=_Split(lr_images))  # type: ignore[assignment]
    worker.timer = PerfCounterTimer()
    return worker


def test_the_first_warm_up_primes_every_input_size_once() -> None:
    sizes = [(8, 10), (12, 10), (8, 10), (6, 14)]
    images = [np.full((h, w, 3), 100, dtype=np.uint8) for h, w in sizes]
    model = ShapeRecorder()
    worker = _worker_with(model, images)

    worker.warm_up(msg.WarmUp(seconds=0.0, min_passes=2, max_passes=2, dither_seed=1))
    primed = model.seen[:-2]  # the last two calls are the warm-up passes on image 0
    assert sorted(primed) == [(1, 3, 6, 14), (1, 3, 12, 10)]
    assert model.seen[-2:] == [(1, 3, 8, 10)] * 2

    model.seen.clear()
    worker.warm_up(msg.WarmUp(seconds=0.0, min_passes=1, max_passes=1, dither_seed=2))
    assert model.seen == [(1, 3, 8, 10)]  # later rounds' warm-ups do not prime again


def test_no_priming_when_the_protocol_turns_warm_up_off() -> None:
    images = [np.zeros((8, 10, 3), np.uint8), np.zeros((6, 6, 3), np.uint8)]
    model = ShapeRecorder()
    worker = _worker_with(model, images)
    assert worker.warm_up(msg.WarmUp(seconds=0.0, min_passes=0, max_passes=0, dither_seed=3)).passes == 0
    assert model.seen == []


def test_a_worker_on_a_cuda_lane_makes_its_gpu_current_before_building_the_model(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(f"set_device {device}"))

    def fake_load(submission, weights, *, trust_weights, device):
        calls.append(f"build on {device}")
        return SimpleNamespace(model=nn.Identity())

    monkeypatch.setattr(worker_module, "load_resolved", fake_load)
    monkeypatch.setattr(worker_module, "make_timer", lambda device, clock: PerfCounterTimer())
    monkeypatch.setattr(worker_module, "apply_torch_settings", lambda settings: None)
    request = SimpleNamespace(
        submission=None,
        weights=None,
        trust_weights=False,
        device="cuda:1",
        settings=None,
        cell="fp32",
        clock="wall",
    )
    SubmissionWorker().load(request)  # type: ignore[arg-type]
    assert calls == ["set_device cuda:1", "build on cuda:1"]


def test_a_cpu_worker_never_touches_the_cuda_device(monkeypatch) -> None:
    def refuse(device):
        raise AssertionError("set_device called on a CPU lane")

    monkeypatch.setattr(torch.cuda, "set_device", refuse)
    worker_module.make_current(torch.device("cpu"))


# A model written the way team code often is: `.cuda()` in the constructor, device="cuda" in forward.
CURRENT_DEVICE_MODEL = """
import torch
from torch import nn


class OnCurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1)).cuda()
        self.device_seen = torch.zeros(1, device="cuda").device

    def forward(self, x):
        offset = torch.zeros(1, 1, 1, 1, device="cuda")
        assert offset.device == x.device, f"made on {offset.device}, input on {x.device}"
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") + offset
"""


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (a lane on cuda:1)")
def test_team_code_that_says_cuda_runs_on_its_lanes_gpu(tmp_path: Path) -> None:
    folder = tmp_path / "on_current"
    folder.mkdir()
    (folder / "model.py").write_text(CURRENT_DEVICE_MODEL)
    (folder / "submission.yaml").write_text(
        "name: on_current\nteam: test\ndescription: says cuda, means the current device\n"
        "model:\n  file: model.py\n  class: OnCurrent\n  kwargs: {}\ninput_range: 1.0\nscale: 4\n"
    )
    submission = resolve_submission(str(folder))

    pairs = Pairs(
        [
            (f"img{i}", np.full((10 + i, 12, 3), 90, np.uint8), np.full((40 + 4 * i, 48, 3), 90, np.uint8))
            for i in range(3)
        ]
    )
    config = RunConfig(
        protocol_name="ntire2022",
        protocol_version=1,
        border=4,
        device=torch.device("cuda:1"),
        timing=TimingSettings(warmup_seconds=0.0, warmup_max_passes=1, rounds=2),
        cache_dir=tmp_path / "cache",
        quiet=True,
    )
    run = evaluate_run([submission], pairs, config)
    (record,) = run["results"]
    assert record["status"] == "ok", record["error"]
