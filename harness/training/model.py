"""The training-form network of a stage, built from its config, and the hand-off to the plain IMDN."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from harness.errors import HarnessError
from harness.models.clb import CLBIMDN
from harness.models.imdn import IMDN
from harness.training.config import ModelConfig


def build_training_model(
    config: ModelConfig, *, collapse_mode: str | None = None, source: str = "config"
) -> CLBIMDN:
    """CLB-IMDN with the configured blocks, expansion and expanded layers (random initial weights).

    ``collapse_mode`` overrides the configured one (the benchmark builds both forms).
    """
    try:
        return CLBIMDN(
            nb=config.blocks,
            expansion=config.expansion,
            expanded=config.expanded,
            collapse_mode=collapse_mode or config.collapse_mode,
        )
    except ValueError as error:
        raise HarnessError(f"{source}: model: {error}") from None


def init_from_imdn_state_dict(model: CLBIMDN, state_dict: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Start from plain (pruned) IMDN weights so that the training form computes the same function.

    Each collapsible block gets the plain kernel through its first hidden channels (minus the
    identity path) and a pass-through 1x1; its other hidden channels start silent but trainable.
    """
    if not isinstance(state_dict, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise HarnessError(f"{source}: not a state dict of tensors (expected `esr prune` output)")
    try:
        model.init_from_plain(state_dict)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise HarnessError(f"{source}: not the weights of a {model.nb}-block IMDN ({first})") from None


def collapse_to_imdn(model: nn.Module) -> IMDN:
    """The deployed network: the plain IMDN with exactly the training form's function."""
    if not isinstance(model, CLBIMDN):
        raise TypeError(f"expected a CLBIMDN, got {type(model).__name__}")
    return model.collapse()
