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
from harness.protocols.timing import PROTOCOL_FIELDS, TimingSettings, TimingValueError
from harness.yaml_schema import from_mapping, read_yaml

__all__ = [
    "Constraints",
    "DataMode",
    "Protocol",
    "PsnrLimit",
    "PublishedBaseline",
    "ReferenceData",
    "ScoreFormula",
    "ScoreWeights",
    "TimingSettings",
    "TimingValueError",
    "list_protocols",
    "load_protocol",
    "parse_protocol",
]

_PROTOCOL_DIR = Path(__file__).resolve().parent

Channel = Literal["rgb", "y"]
# The NTIRE 2022 organisers' hooks, or fvcore's FlopCountAnalysis (NTIRE 2024 on): the names
# harness.complexity.complexity_record takes.
FlopCounter = Literal["ntire2022", "fvcore"]


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
class PsnrLimit:
    """One PSNR threshold: the limit, the data it is stated on, and the margin used as a proxy elsewhere."""

    min_db: float
    reference_data: ReferenceData
    proxy_margin_db: float


@dataclass(frozen=True)
class Constraints:
    """The challenge constraints, in the units the result records use (counts, ratios, dB).

    A constraint the protocol does not state is absent (None) and is not checked: the 2024+ editions
    have no params or runtime limit, and the 2023 repository publishes no PSNR threshold. The first
    PSNR threshold is given by the ``psnr_*`` fields; ``more_psnr_limits`` holds those stated on other
    reference data (the test split).
    """

    params_max: int | None = None
    runtime_ratio_max: float | None = None
    psnr_min_db: float | None = None
    psnr_reference_data: ReferenceData | None = None
    psnr_proxy_margin_db: float | None = None
    more_psnr_limits: tuple[PsnrLimit, ...] = ()

    def psnr_limits(self) -> tuple[PsnrLimit, ...]:
        """Every PSNR threshold, the first one first; empty when the protocol states none."""
        if self.psnr_min_db is None or self.psnr_reference_data is None or self.psnr_proxy_margin_db is None:
            return self.more_psnr_limits
        first = PsnrLimit(self.psnr_min_db, self.psnr_reference_data, self.psnr_proxy_margin_db)
        return (first, *self.more_psnr_limits)

    def psnr_limit_for(self, dataset: dict[str, Any]) -> PsnrLimit | None:
        """The threshold that judges a run on ``dataset``: the one stated on that very data, else
        the one stated for the same split (its margin makes the proxy), else the first; None if none."""
        limits = self.psnr_limits()
        for limit in limits:
            if limit.reference_data.matches(dataset):
                return limit
        same_split = [limit for limit in limits if limit.reference_data.split == dataset.get("split")]
        return (same_split or list(limits) or [None])[0]


@dataclass(frozen=True)
class DataMode:
    """One data mode of the edition's test script: a split, the dataset and folder layout it reads.

    ``num_images`` is None where the repository does not say how many images the split has.
    """

    split: str
    dataset: str
    layout: str
    num_images: int | None = None


@dataclass(frozen=True)
class ScoreWeights:
    """The weights of the three sub-scores in the final score."""

    runtime: float
    flops: float
    params: float


@dataclass(frozen=True)
class ScoreFormula:
    """The 2024+ ranking score: ``Score_X = exp(factor * X / X_baseline)`` for runtime, FLOPs and
    params, and ``Score_Final`` = the weighted sum of the three (lower is better)."""

    form: Literal["exp_ratio"]
    factor: float
    weights: ScoreWeights


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
    flops_g: float | None = None


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol, validated; see ``ntire2022.yaml`` for the meaning of each field.

    The editions differ only in these fields (data, thresholds, baseline, FLOP counter, number of
    averaged runs, score formula), never in code paths of their own.
    """

    name: str
    version: int
    description: str
    scale: int
    border: int
    fidelity_channel: Channel
    reported_channels: tuple[Channel, ...]
    baseline: str
    data: tuple[DataMode, ...]
    flop_counter: FlopCounter
    averaged_runs: int
    timing: TimingSettings
    constraints: Constraints
    published_baseline: PublishedBaseline | None = None
    score: ScoreFormula | None = None
    unpublished: tuple[str, ...] = ()


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
    if protocol.averaged_runs < 1:
        raise HarnessError(f"{where}: averaged_runs: must be >= 1, got {protocol.averaged_runs}")
    if not protocol.data:
        raise HarnessError(f"{where}: data: must list at least one data mode")
    limits = protocol.constraints
    if (limits.params_max is not None and limits.params_max <= 0) or (
        limits.runtime_ratio_max is not None and limits.runtime_ratio_max <= 0
    ):
        raise HarnessError(f"{where}: constraints: params_max and runtime_ratio_max must be > 0")
    first = (limits.psnr_min_db, limits.psnr_reference_data, limits.psnr_proxy_margin_db)
    if any(value is None for value in first) != all(value is None for value in first):
        raise HarnessError(
            f"{where}: constraints: psnr_min_db, psnr_reference_data and psnr_proxy_margin_db go together"
        )
    if any(limit.proxy_margin_db < 0 for limit in limits.psnr_limits()):
        raise HarnessError(f"{where}: constraints: a PSNR proxy margin must be >= 0")
    if limits.more_psnr_limits and limits.psnr_min_db is None:
        raise HarnessError(f"{where}: constraints: more_psnr_limits needs the first limit (psnr_min_db)")
    published = protocol.published_baseline
    if published is not None and published.ave_time_ms <= 0:
        raise HarnessError(f"{where}: published_baseline.ave_time_ms: must be > 0")
    score = protocol.score
    if score is not None:
        weights = (score.weights.runtime, score.weights.flops, score.weights.params)
        if score.factor <= 0 or min(weights) < 0 or abs(sum(weights) - 1.0) > 1e-9:
            raise HarnessError(f"{where}: score: factor must be > 0 and the weights >= 0, summing to 1")
        if published is None or published.flops_g is None:
            raise HarnessError(f"{where}: published_baseline.flops_g: the score needs the baseline's FLOPs")


def parse_protocol(data: Any, *, source: str) -> Protocol:
    """Validate the mapping loaded from a protocol file; ``source`` names it in error messages."""
    timing = data.get("timing") if isinstance(data, dict) else None
    if isinstance(timing, dict):  # TimingSettings has defaults for tools; a protocol states every field
        missing = [name for name in PROTOCOL_FIELDS if name not in timing]
        extra = sorted(set(timing) - set(PROTOCOL_FIELDS))
        if extra:  # a run's settings (rounds until decided) are never a protocol's
            raise HarnessError(f"{source}: timing.{extra[0]}: not a protocol setting")
        if missing:
            raise HarnessError(f"{source}: timing.{missing[0]}: missing")
    try:
        protocol = from_mapping(Protocol, data, source=source)
    except TimingValueError as error:
        raise HarnessError(f"{source}: {error}") from None
    _validate(protocol, source)
    return protocol


def list_protocols() -> list[str]:
    """Names of the protocols shipped with the harness."""
    return sorted(path.stem for path in _PROTOCOL_DIR.glob("*.yaml"))


def load_protocol(name: str) -> Protocol:
    """The shipped protocol ``name``; an unknown name is an error that lists close matches."""
    available = list_protocols()
    if name not in available:
        close = sorted(difflib.get_close_matches(name, available, n=len(available)))
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise HarnessError(f"unknown protocol {name!r}: {hint}available: {', '.join(available)}")
    path = _PROTOCOL_DIR / f"{name}.yaml"
    protocol = parse_protocol(read_yaml(path), source=str(path))
    if protocol.name != name:
        raise HarnessError(f"{path}: name is {protocol.name!r}, expected {name!r} (the file's stem)")
    return protocol
