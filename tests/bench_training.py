"""Benchmark (`make bench`): one training step of the CLB-IMDN in explicit and online form.

The online form folds every collapsible block into one kernel per forward pass, so it should be
several times faster than running the wide expanded convolutions; compare the two rows.
`esr bench train` measures the same at the seed's patch sizes, with peak memory.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness.training.config import ModelConfig
from harness.training.model import build_training_model


@pytest.mark.parametrize("mode", ["explicit", "online"])
def test_training_step(benchmark, mode: str) -> None:
    torch.manual_seed(0)
    model = build_training_model(ModelConfig(), collapse_mode=mode).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr = torch.rand(1, 3, 32, 32)
    hr = torch.rand(1, 3, 128, 128)

    def step() -> float:
        loss = nn.functional.l1_loss(model(lr), hr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    loss = benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)
    assert math.isfinite(loss)
