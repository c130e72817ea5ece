"""Evaluation protocols: the fixed rules of a challenge, read from ``<name>.yaml`` in this package.

A protocol file becomes a frozen :class:`Protocol` at once; a missing, unknown or wrongly typed key
is an error naming the file and the key, so a typo can never silently fall back to a default.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError
from harness.yaml_schema import from_mapping, read_yaml

__all__ = [
    "Constraints",
    "Protocol",
    "PublishedBaseline",
    "ReferenceData",
    "TimingProtocol",
    "list_protocols",
    "load_protocol",
    "parse_protocol",
]

_PROTOCOL_DIR = Path(__file__).resolve().parent

Channel = Literal["rgb", "y"]


@dataclass(frozen=True)
class TimingProtocol:
    """How latencies are taken; field names match ``harness.runner.TimingSettings``."""

    cudnn_benchmark: bool
    warmup_seconds: float
    warmup_min_passes: int
    warmup_max_passes: int
    repeats: int
    statistic: Literal["mean", "median"]
    # Interleaved performance rounds per run (every submission and the baseline time one pass over
    # the images in each round) and the per-submission time limit of a worker.
    rounds: int
    timeout_seconds: float


@dataclass(frozen=True)
class ReferenceData:
    """The data on which the absolute PSNR limit is stated (DIV2K val for ntire2022)."""

    dataset: str
    split: str
    num_images: int

    def matches(self, dataset: dict[str, Any]) -> bool:
        """True when a run's dataset description is this data, complete (name case-insensitive)."""
        name = str(dataset.get("name") or "").lower()
        return (
            name == self.dataset.lower()
            and dataset.get("split") == self.split
            and dataset.get("num_images") == self.num_images
        )


@dataclass(frozen=True)
class Constraints:
    """The challenge constraints, in the units the result records use (counts, ratios, dB)."""

    params_max: int
    runtime_ratio_max: float
    psnr_min_db: float
    psnr_reference_data: ReferenceData
    psnr_proxy_margin_db: float


@dataclass(frozen=True)
class PublishedBaseline:
    """The organisers' published baseline figures: the scale for published runtimes."""

    team: str
    ave_time_ms: float
    val_time_ms: float
    test_time_ms: float
    val_psnr_db: float
    test_psnr_db: float
    params: int


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol, validated; see ``ntire2022.yaml`` for the meaning of each field."""

    name: str
    version: int
    description: str
    scale: int
    border: int
    fidelity_channel: Channel
    reported_channels: tuple[Channel, ...]
    baseline: str
    timing: TimingProtocol
    constraints: Constraints
    published_baseline: PublishedBaseline


def _validate(protocol: Protocol, where: str) -> None:
    """Checks the types cannot express: positive sizes, a channel to report, limits that can be met."""
    if protocol.version < 1:
        raise HarnessError(f"{where}: version: must be >= 1, got {protocol.version}")
    if protocol.scale not in (2, 3, 4):
        raise HarnessError(f"{where}: scale: must be 2, 3 or 4, got {protocol.scale}")
    if protocol.border < 0:
        raise HarnessError(f"{where}: border: must be >= 0, got {protocol.border}")
    if not protocol.reported_channels:
        raise HarnessError(f"{where}: reported_channels: must list at least one channel")
    timing = protocol.timing
    if timing.warmup_seconds < 0 or timing.repeats < 1:
        raise HarnessError(f"{where}: timing: warmup_seconds must be >= 0 and repeats >= 1")
    if timing.rounds < 1 or timing.timeout_seconds <= 0:
        raise HarnessError(f"{where}: timing: rounds must be >= 1 and timeout_seconds > 0")
    if not 1 <= timing.warmup_min_passes <= timing.warmup_max_passes:
        raise HarnessError(f"{where}: timing: need 1 <= warmup_min_passes <= warmup_max_passes")
    limits = protocol.constraints
    if limits.params_max <= 0 or limits.runtime_ratio_max <= 0 or limits.psnr_proxy_margin_db < 0:
        raise HarnessError(f"{where}: constraints: params_max and runtime_ratio_max must be > 0, margin >= 0")
    if protocol.published_baseline.ave_time_ms <= 0:
        raise HarnessError(f"{where}: published_baseline.ave_time_ms: must be > 0")


def parse_protocol(data: Any, *, source: str) -> Protocol:
    """Validate the mapping loaded from a protocol file; ``source`` names it in error messages."""
    protocol = from_mapping(Protocol, data, source=source)
    _validate(protocol, source)
    return protocol


def list_protocols() -> list[str]:
    """Names of the protocols shipped with the harness."""
    return sorted(path.stem for path in _PROTOCOL_DIR.glob("*.yaml"))


def load_protocol(name: str) -> Protocol:
    """The shipped protocol ``name``; an unknown name is an error that lists close matches."""
    available = list_protocols()
    if name not in available:
        close = difflib.get_close_matches(name, available, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise HarnessError(f"unknown protocol {name!r}: {hint}available: {', '.join(available)}")
    path = _PROTOCOL_DIR / f"{name}.yaml"
    protocol = parse_protocol(read_yaml(path), source=str(path))
    if protocol.name != name:
        raise HarnessError(f"{path}: name is {protocol.name!r}, expected {name!r} (the file's stem)")
    return protocol
