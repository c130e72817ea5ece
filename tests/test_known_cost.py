"""The known-cost submissions: a valid x4 output, and work in the stated proportion (counted calls)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def test_the_output_is_the_bicubic_x4_image() -> None:
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    out = build_model(resolve_submission("known_cost"))(x)
    # Reference: torch's bicubic upscaling clamped to the input range, with no other change.
    expected = F.interpolate(x, size=(48, 40), mode="bicubic", align_corners=False).clamp(0, 1)
    assert out.shape == (1, 3, 48, 40)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
