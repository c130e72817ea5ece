"""``--fresh-workers``: every round after the first is timed by a worker process started for it.

A tiny submission writes a token of its own to its worker's log each time its model is built, i.e.
once per worker process; the run's logs must hold one token per round for it (the accuracy pass's
worker times the first round), and one only without the flag.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands import run as esr
from tests.test_faults import _options, _tiny_data

MODEL = """
import secrets

import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        print("built by process", secrets.token_hex(8), flush=True)
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") * self.gain
"""


def _builder(root: Path) -> Path:
    folder = root / "builder"
    folder.mkdir(parents=True)
    (folder / "tiny.py").write_text(MODEL)
    (folder / "submission.yaml").write_text(
        "name: builder\nteam: test\ndescription: says when it is built\n"
        "model:\n  file: tiny.py\n  class: Tiny\ninput_range: 1.0\nscale: 4\n"
    )
    return folder


def _builds(out: Path) -> list[str]:
    """The tokens the builder's workers wrote, over every log of the run."""
    lines = [
        line for log in sorted((out / "logs").glob("builder*.log")) for line in log.read_text().splitlines()
    ]
    return [line.split()[-1] for line in lines if line.startswith("built by process")]


@pytest.mark.parametrize(("flag", "workers"), [([], 1), (["--fresh-workers"], 3)])
def test_each_round_gets_a_worker_process_of_its_own(
    tmp_path: Path, model_zoo_dir: Path, flag: list[str], workers: int
) -> None:
    data = _tiny_data(tmp_path / "data")
    builder = _builder(tmp_path / "subs")
    options = _options(tmp_path, model_zoo_dir, "--rounds", "3", "--sandbox", "off", *flag)
    assert esr(["evaluate", str(builder), "--data", str(data), *options]) == 0
    builds = _builds(tmp_path / "out")
    assert len(builds) == workers and len(set(builds)) == workers
