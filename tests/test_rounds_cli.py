"""`--rounds auto|N`, `--min-rounds`, `--max-rounds`, `--max-timing-seconds`, `--clock`: parsed into
timing settings."""

from __future__ import annotations

import argparse

import pytest
import torch

from harness.commands._common import _check_clock, _timing_settings, add_run_options
from harness.errors import HarnessError
from harness.protocols import load_protocol


def _settings(*argv: str, limit: float | None = 1.0):
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    return _timing_settings(parser.parse_args(list(argv)), load_protocol("ntire2022"), limit)


def test_auto_is_the_default_from_the_protocols_minimum_to_30_rounds() -> None:
    timing = _settings()
    assert timing.rounds is None and (timing.min_rounds, timing.max_rounds) == (5, 30)
    assert timing.ratio_limit == 1.0 and timing.resolution == 0.01 and timing.max_timing_seconds is None
    assert _settings("--rounds", "auto").rounds is None


def test_a_number_keeps_a_fixed_count() -> None:
    assert _settings("--rounds", "8").rounds == 8


def test_the_bounds_of_auto_are_taken() -> None:
    timing = _settings("--min-rounds", "3", "--max-rounds", "12", "--max-timing-seconds", "60")
    assert (timing.min_rounds, timing.max_rounds, timing.max_timing_seconds) == (3, 12, 60.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--max-rounds", "4"), "--max-rounds: must be at least --min-rounds (5), got 4"),
        (("--min-rounds", "1"), "--min-rounds: must be at least 2, got 1"),
        (("--rounds", "0"), "--rounds: must be at least 1, got 0"),
        (("--max-timing-seconds", "0"), "--max-timing-seconds: must be positive, got 0.0"),
    ],
)
def test_impossible_values_name_their_flag(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(HarnessError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        _settings(*argv)


def test_rounds_is_auto_or_a_number() -> None:
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--rounds", "many"])
    assert exit_info.value.code == 2


def test_the_clock_is_wall_unless_cpu_is_asked_for() -> None:
    assert _settings().clock == "wall"
    assert _settings("--clock", "cpu").clock == "cpu"
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--clock", "tsc"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("argv", "device"),
    [
        (("--clock", "cpu"), torch.device("cuda", 0)),
        (("--clock", "cpu", "--devices", "cpu,cuda:1"), torch.device("cpu")),
    ],
)
def test_cpu_time_is_refused_on_a_gpu_lane(argv: tuple[str, ...], device: torch.device) -> None:
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    args = parser.parse_args(list(argv))
    with pytest.raises(HarnessError, match="^--clock cpu: times CPU runs only, the device is cuda"):
        _check_clock(args, device)
    _check_clock(parser.parse_args(["--clock", "cpu"]), torch.device("cpu"))  # a CPU run is fine
