"""Training configuration: a YAML file becomes one frozen, validated object before anything runs.

Every key is checked against the dataclasses below, so a misspelled option is an error naming the
file and the key (with the closest known key), never a silently ignored setting. Paths stay strings
here; the training command resolves them.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from harness.errors import HarnessError

CacheKind = Literal["memory", "npy"]
CollapseMode = Literal["explicit", "online"]
Schedule = Literal["cosine", "multistep"]


@dataclass(frozen=True)
class DataConfig:
    """Where training patches come from and how they are batched."""

    # DIV2K root (its train split, 0001-0800), any folder of HR images or a layout the harness
    # reads, or "samples"; `esr train --data` overrides it.
    train: str = "samples"
    patch_size: int = 64  # side of the LR patch; the HR patch is scale times larger
    batch_size: int = 16  # per process (per GPU under DDP)
    workers: int = 4  # DataLoader worker processes
    cache: CacheKind = "npy"  # decoded images kept in memory, or as .npy files memory-mapped by workers
    cache_dir: str = "results/cache/train"  # LR images made from HR and decoded .npy files
    augment: bool = True  # random flips and 90-degree rotations


@dataclass(frozen=True)
class ModelConfig:
    """The collapsible-linear-block IMDN in its training form and where its weights start."""

    blocks: int = 7
    expansion: int = 4  # hidden width of each expanded block, as a multiple of its output channels
    # Expanded convolutions: "all" 3x3s, "body" (inside the blocks), "none", or fnmatch patterns
    # over state-dict module names such as "model.1.sub.*.conv1.0".
    expanded: Literal["all", "body", "none"] | tuple[str, ...] = "all"
    collapse_mode: CollapseMode = "online"
    init_weights: str | None = None  # pruned IMDN state dict (`esr prune` output)
    init_checkpoint: str | None = None  # a previous stage's checkpoint (e.g. stage 1 best.pth)


@dataclass(frozen=True)
class OptimConfig:
    """Adam on the L1 loss with a learning-rate schedule given as a pure function of the iteration."""

    iterations: int = 1000
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: Schedule = "cosine"
    min_lr: float = 1e-7  # cosine floor
    milestones: tuple[int, ...] = ()  # multistep: iterations where the rate is multiplied by gamma
    gamma: float = 0.5
    grad_clip: float | None = None  # max global gradient norm; None disables clipping
    bf16: bool = False  # bf16 autocast, used only on CUDA


@dataclass(frozen=True)
class ValConfig:
    """Validation of the collapsed model with the harness's own metrics."""

    dataset: str = "samples"
    split: str | None = None
    every: int = 1000  # iterations; the last iteration is always validated
    max_images: int | None = None  # validate on the first N images only (None: all)


@dataclass(frozen=True)
class TrainConfig:
    """One training stage."""

    name: str
    output_dir: str  # best.pth, last.pth and log.csv are written here
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (under DDP each process uses its local rank)
    log_every: int = 100
    # Deterministic cuDNN/cuBLAS kernels on CUDA, so --resume is bit-for-bit on a GPU too (CPU
    # training is deterministic anyway); false trades that for cuDNN autotuning speed.
    deterministic: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    val: ValConfig = field(default_factory=ValConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (tuples as lists) so the config can be stored in a checkpoint or YAML."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def load_config(path: str | Path, *, data_override: str | None = None) -> TrainConfig:
    """Read and validate a training YAML file; ``data_override`` replaces ``data.train``."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: training config not found") from None
    except yaml.YAMLError as error:
        raise HarnessError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise HarnessError(f"{path}: expected a mapping of training options at the top level")
    if data_override is not None:
        data = raw.setdefault("data", {})
        if not isinstance(data, dict):
            raise HarnessError(f"{path}: data: expected a mapping")
        data["train"] = data_override
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], *, source: str = "config") -> TrainConfig:
    """Build a TrainConfig from plain data, rejecting unknown keys and wrongly typed values."""
    config = _build(TrainConfig, raw, source, "")
    _check_values(config, source)
    return config


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise HarnessError(f"{source}: {where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
            raise HarnessError(f"{source}: unknown key {prefix}{key}{hint}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            values[f.name] = _convert(hints[f.name], raw[f.name], source, f"{prefix}{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise HarnessError(f"{source}: missing required key {prefix}{f.name}")
    return cls(**values)


def _convert(hint: Any, value: Any, source: str, key: str) -> Any:
    """Check ``value`` against the annotation ``hint`` and return it in the annotated type."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, f"{key}.")
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _convert(option, value, source, key)
            except HarnessError as error:
                errors.append(str(error))
        prefix = f"{source}: {key}: "
        reasons = " or ".join(error.removeprefix(prefix) for error in errors)
        raise HarnessError(f"{prefix}{reasons}" if errors else f"{prefix}must not be null")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise HarnessError(f"{source}: {key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise HarnessError(f"{source}: {key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], item, source, f"{key}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise HarnessError(f"{source}: {key}: expected {len(args)} values, got {len(value)}")
        return tuple(
            _convert(a, item, source, f"{key}[{i}]")
            for i, (a, item) in enumerate(zip(args, value, strict=True))
        )
    if hint is bool:
        if not isinstance(value, bool):
            raise HarnessError(f"{source}: {key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise HarnessError(f"{source}: {key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        # YAML reads 5e-4 as a string (YAML 1.1 needs a dot), so numeric strings are accepted here.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HarnessError(f"{source}: {key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise HarnessError(f"{source}: {key}: expected a non-empty string, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {hint!r} for {key}")  # a bug in this module


def _check_values(config: TrainConfig, source: str) -> None:
    """Range checks that the types alone cannot express."""
    positive = {
        "log_every": config.log_every,
        "data.patch_size": config.data.patch_size,
        "data.batch_size": config.data.batch_size,
        "model.blocks": config.model.blocks,
        "model.expansion": config.model.expansion,
        "optim.iterations": config.optim.iterations,
        "val.every": config.val.every,
    }
    for key, value in positive.items():
        if value < 1:
            raise HarnessError(f"{source}: {key}: must be at least 1, got {value}")
    if config.data.workers < 0:
        raise HarnessError(f"{source}: data.workers: must be 0 or more, got {config.data.workers}")
    if config.optim.lr <= 0:
        raise HarnessError(f"{source}: optim.lr: must be positive, got {config.optim.lr}")
    if config.optim.grad_clip is not None and config.optim.grad_clip <= 0:
        raise HarnessError(f"{source}: optim.grad_clip: must be positive or null")
    if config.val.max_images is not None and config.val.max_images < 1:
        raise HarnessError(f"{source}: val.max_images: must be at least 1 or null")
    if list(config.optim.milestones) != sorted(set(config.optim.milestones)):
        raise HarnessError(f"{source}: optim.milestones: must be strictly increasing")
    if config.optim.schedule == "multistep" and not config.optim.milestones:
        raise HarnessError(f"{source}: optim.milestones: the multistep schedule needs at least one")
    if (config.model.init_weights is None) == (config.model.init_checkpoint is None):
        raise HarnessError(
            f"{source}: model: set exactly one of init_weights (pruned IMDN) or init_checkpoint"
        )
