"""CUDA placements of team code land on the CPU inside :class:`CudaOnCpu`, and only there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.runner import RunConfig, TimingSettings, evaluate_run
from harness.submissions import resolve_submission
from harness.submissions.placement import MAPPED_TO_CPU, CudaOnCpu, placement_for
from tests.test_workers import Pairs


class CudaMinded(nn.Module):
    """Written for a GPU: moves itself, makes a buffer and an input on CUDA, synchronises."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False).cuda()
        nn.init.ones_(self.conv.weight)
        self.offset = torch.ones(1, 3, 1, 1, device="cuda")
        self.cuda()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to("cuda")
        scale = torch.full((1,), 2.0, device=torch.device("cuda", 0)).to(device="cuda")
        torch.cuda.synchronize()
        return self.conv(x) * scale + self.offset.cuda()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a GPU does")
def test_cuda_minded_module_builds_and_runs_on_the_cpu_and_patches_are_restored(tmp_path: Path) -> None:
    originals = (nn.Module.cuda, nn.Module.to, torch.Tensor.cuda, torch.Tensor.to, torch.zeros, torch.load)
    with pytest.raises((RuntimeError, AssertionError)):
        CudaMinded()
    with CudaOnCpu() as mapping:
        model = CudaMinded()
        out = model(torch.arange(3.0).reshape(1, 3, 1, 1))
        zeros = torch.zeros(2, device="cuda")
    # every output channel sums the three inputs (0 + 1 + 2), doubled, plus one
    assert out.device.type == "cpu" and out.flatten().tolist() == [7.0, 7.0, 7.0]
    assert zeros.device.type == "cpu" and zeros.tolist() == [0.0, 0.0]
    assert mapping.placement == MAPPED_TO_CPU
    assert mapping.redirected["Module.cuda"] == 2 and mapping.redirected["Tensor.to"] == 2
    assert mapping.redirected["torch.ones"] == 1 and mapping.redirected["torch.cuda.synchronize"] == 1
    assert (
        nn.Module.cuda,
        nn.Module.to,
        torch.Tensor.cuda,
        torch.Tensor.to,
        torch.zeros,
        torch.load,
    ) == originals
    with pytest.raises((RuntimeError, AssertionError)):
        torch.zeros(1, device="cuda")


def test_a_cpu_only_module_is_not_marked_and_a_gpu_device_is_left_alone(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pth")
    with placement_for("cpu") as mapping:
        assert mapping is not None
        nn.Conv2d(3, 3, 1).to("cpu")(torch.zeros(1, 3, 2, 2, device="cpu"))
        assert torch.load(tmp_path / "w.pth", map_location="cpu")["w"].tolist() == [1.0, 1.0]
    assert mapping.placement is None and not mapping.redirected
    with placement_for("cuda") as none:
        assert none is None and torch.zeros is not None


def test_entering_twice_is_refused() -> None:
    mapping = CudaOnCpu()
    with mapping, pytest.raises(RuntimeError, match="already entered"):
        mapping.__enter__()
    assert nn.Module.cuda.__qualname__ == "Module.cuda"


# A submission written the way team code often is: `.cuda()` in the constructor, device="cuda" in forward.
CUDA_MINDED_SUBMISSION = """
import torch
from torch import nn


class SaysCuda(nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1)).cuda()
        self.cuda()

    def forward(self, x):
        offset = torch.zeros(1, 1, 1, 1, device="cuda")
        assert offset.device == x.device, f"made on {offset.device}, input on {x.device}"
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") * self.gain + offset
"""


def _grey_pairs() -> Pairs:
    """Three flat grey LR/HR pairs: nearest-neighbour x4 reproduces each HR exactly."""
    return Pairs(
        [
            (f"img{i}", np.full((10 + i, 12, 3), 90, np.uint8), np.full((40 + 4 * i, 48, 3), 90, np.uint8))
            for i in range(3)
        ]
    )


def test_a_cpu_run_of_a_submission_written_for_cuda_is_scored_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "says_cuda"
    folder.mkdir()
    (folder / "model.py").write_text(CUDA_MINDED_SUBMISSION)
    (folder / "submission.yaml").write_text(
        "name: says_cuda\nteam: test\ndescription: says cuda, runs on the cpu\n"
        "model:\n  file: model.py\n  class: SaysCuda\n  kwargs: {}\ninput_range: 1.0\nscale: 4\n"
    )
    config = RunConfig(
        protocol_name="ntire2022",
        protocol_version=1,
        border=4,
        device=torch.device("cpu"),
        timing=TimingSettings(warmup_seconds=0.0, warmup_max_passes=1, rounds=1),
        cache_dir=tmp_path / "cache",
        quiet=True,
    )
    run = evaluate_run([resolve_submission(str(folder))], _grey_pairs(), config)
    (record,) = run["results"]
    assert record["status"] == "ok", record["error"]
    assert record["psnr_rgb"] == float("inf") and record["placement"] == MAPPED_TO_CPU
