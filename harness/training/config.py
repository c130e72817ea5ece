"""Training configuration: a YAML file becomes one frozen, validated object before anything runs.

Every key is checked against the dataclasses below, so a misspelled option is an error naming the
file and the key (with the closest known key), never a silently ignored setting. Paths stay strings
here; the training command resolves them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from harness.errors import HarnessError
from harness.yaml_schema import from_mapping, read_yaml

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


def load_config(
    path: str | Path, *, data_override: str | None = None, overrides: Sequence[str] = ()
) -> TrainConfig:
    """Read and validate a training YAML file.

    ``overrides`` are ``dotted.key=value`` strings (``esr train --set``), the value read as YAML
    (``optim.iterations=20``, ``optim.bf16=true``, ``optim.betas=[0.9,0.99]``); they are applied in
    order, then ``data_override`` replaces ``data.train``. The result is validated as a whole, so
    an overridden key is checked exactly like one written in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path}: training config not found")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise HarnessError(
            f"{path}: top level: must be a mapping of training options, got {type(raw).__name__}"
        )
    settings = [_parse_override(text) for text in overrides]
    if data_override is not None:
        settings.append(("data.train", data_override))
    for key, value in settings:
        _set_dotted(raw, key, value, source=str(path))
    return config_from_dict(raw, source=str(path))


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise HarnessError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. optim.iterations=20")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise HarnessError(f"--set {text!r}: the value is not valid YAML") from None


def _set_dotted(raw: dict[str, Any], key: str, value: Any, *, source: str) -> None:
    """Set ``a.b.c`` in the nested mapping, creating sections the file leaves out."""
    *sections, last = key.split(".")
    node = raw
    for depth, section in enumerate(sections):
        child = node.setdefault(section, {})
        if not isinstance(child, dict):
            where = ".".join(sections[: depth + 1])
            raise HarnessError(f"{source}: {where}: must be a mapping, got {type(child).__name__}")
        node = child
    node[last] = value


def config_from_dict(raw: dict[str, Any], *, source: str = "config") -> TrainConfig:
    """Build a TrainConfig from plain data, rejecting unknown keys and wrongly typed values."""
    config = from_mapping(TrainConfig, raw, source=source)
    _check_values(config, source)
    return config


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
