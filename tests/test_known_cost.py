"""The known-cost submissions: a valid x4 output, and work in the stated proportion (counted calls)."""

from __future__ import annotations

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from harness.submissions import resolve_submission
from harness.submissions.building import build_model


class _CountMatmuls(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__):
            self.count += 1
        return func(*args, **(kwargs or {}))


def _products(name: str) -> int:
    model = build_model(resolve_submission(name))
    with _CountMatmuls() as counter:
        model(torch.rand(1, 3, 8, 8))
    return counter.count


def test_the_pair_differs_by_2_percent_of_the_products_and_the_copy_not_at_all() -> None:
    assert _products("known_cost") == 100
    assert _products("known_cost_plus2") == 102
    assert _products("known_cost_copy") == 100


def test_the_output_is_each_input_pixel_repeated_4_by_4() -> None:
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    out = build_model(resolve_submission("known_cost"))(x)
    # Reference: every LR pixel copied into a 4x4 block, written out with NumPy; nothing else changes.
    expected = np.repeat(np.repeat(x.numpy(), 4, axis=2), 4, axis=3)
    assert out.shape == (1, 3, 48, 40)
    np.testing.assert_array_equal(out.numpy(), expected)
