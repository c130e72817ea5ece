"""One timing-settings type: a protocol states it, a run overrides a few fields, it is checked once."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness import protocols
from harness.errors import HarnessError
from harness.protocols import TimingSettings, TimingValueError, load_protocol, parse_protocol
from harness.protocols.timing import OVERRIDABLE, PROTOCOL_FIELDS
from harness.runner.cache_lookup import timing_identity
from harness.yaml_schema import read_yaml


def _ntire2022() -> dict[str, Any]:
    return read_yaml(Path(protocols.__file__).parent / "ntire2022.yaml")


def test_a_run_takes_the_protocols_timing_and_changes_only_what_it_is_given() -> None:
    timing = load_protocol("ntire2022").timing
    changed = timing.overridden(rounds=9, repeats=None, warmup_seconds=0.0, timeout_seconds=None)
    expected = {**dataclasses.asdict(timing), "rounds": 9, "warmup_seconds": 0.0}
    assert dataclasses.asdict(changed) == expected
    assert timing.overridden() == timing


def test_only_the_overridable_fields_can_be_changed() -> None:
    run_only = {
        "min_rounds",
        "max_rounds",
        "max_timing_seconds",
        "ratio_limit",
        "resolution",
        "clock",
        "fresh_workers",
    }
    assert set(OVERRIDABLE) == {"warmup_seconds", "repeats", "rounds", "timeout_seconds"} | run_only
    assert not run_only & set(PROTOCOL_FIELDS)  # a protocol file never states a run's settings
    with pytest.raises(ValueError, match="statistic"):
        TimingSettings().overridden(statistic="median")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rounds": 0}, "timing.rounds: must be at least 1, got 0"),
        ({"repeats": 0}, "timing.repeats: must be at least 1, got 0"),
        ({"warmup_seconds": -1.0}, "timing.warmup_seconds: must be zero or more, got -1.0"),
        ({"timeout_seconds": 0.0}, "timing.timeout_seconds: must be positive, got 0.0"),
        ({"clock": "tsc"}, "timing.clock: must be wall or cpu, got tsc"),
        ({"fresh_workers": "yes"}, "timing.fresh_workers: must be true or false, got yes"),
    ],
)
def test_an_out_of_range_value_names_its_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(TimingValueError) as error:
        TimingSettings().overridden(**change)
    assert str(error.value) == message and error.value.field == next(iter(change))


def test_warmup_passes_must_be_ordered() -> None:
    with pytest.raises(TimingValueError, match="warmup_min_passes: must be at most warmup_max_passes"):
        TimingSettings(warmup_min_passes=5, warmup_max_passes=2)


def test_a_protocol_file_states_every_timing_field_and_a_bad_one_names_the_file() -> None:
    data = _ntire2022()
    assert parse_protocol(data, source="p.yaml").timing == load_protocol("ntire2022").timing
    without = {**data, "timing": {k: v for k, v in data["timing"].items() if k != "rounds"}}
    with pytest.raises(HarnessError, match=r"^p\.yaml: timing\.rounds: missing$"):
        parse_protocol(without, source="p.yaml")
    bad = {**data, "timing": {**data["timing"], "rounds": 0}}
    with pytest.raises(HarnessError, match=r"^p\.yaml: timing\.rounds: must be at least 1, got 0$"):
        parse_protocol(bad, source="p.yaml")


def test_a_cache_key_holds_the_timing_but_not_the_defaults_that_came_later() -> None:
    # Written out: every field but the worker's time limit, without clock and fresh_workers at
    # their defaults, so results cached before those settings existed are still found.
    protocol_default = {
        "warmup_seconds": 1.0,
        "warmup_min_passes": 1,
        "warmup_max_passes": 50,
        "repeats": 1,
        "cudnn_benchmark": False,
        "rounds": 5,
        "statistic": "mean",
        "min_rounds": 5,
        "max_rounds": 30,
        "max_timing_seconds": None,
        "ratio_limit": None,
        "resolution": 0.01,
    }
    assert timing_identity(TimingSettings()) == protocol_default
    changed = TimingSettings(clock="cpu", fresh_workers=True, timeout_seconds=10.0)
    assert timing_identity(changed) == {**protocol_default, "clock": "cpu", "fresh_workers": True}
