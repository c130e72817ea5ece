"""A "model" of known relative cost, to measure what the timing can resolve without a real SR model.

Each forward pass does a fixed number of products of a fixed ``size x size`` matrix (CPU- or
GPU-bound work whose cost is proportional to ``products``), then upscales the image by repeating
each pixel (nearest neighbour), a step alike for every copy and kept cheap on purpose: its share of
the pass dilutes the difference in products. Bicubic upscaling took 10-35% of a 100-product pass
on the sample images (a CPU core), which made a 2% difference in products a 1.3-1.8% difference in
cost; a nearest-neighbour upscaling takes a few percent, so two copies whose ``products`` differ by
2% differ in cost by nearly 2%, and two copies with equal ``products`` cost the same.

The matrix is orthogonal (the Q of a seeded QR decomposition), so the chained products neither grow
nor vanish; their result enters the output multiplied by zero, which keeps the work in the pass
(eager PyTorch computes what it is asked) without changing the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KnownCost(nn.Module):
    """Nearest-neighbour x``scale`` upscaling plus ``products`` chained ``size x size`` matrix products."""

    def __init__(self, products: int, size: int = 256, scale: int = 4, input_range: float = 1.0) -> None:
        super().__init__()
        if products < 1 or size < 1:
            raise ValueError(f"products and size must be positive, got {products} and {size}")
        self.products = products
        self.scale = scale
        self.input_range = input_range
        generator = torch.Generator().manual_seed(19)
        q, _ = torch.linalg.qr(torch.randn(size, size, generator=generator, dtype=torch.float64))
        self.register_buffer("matrix", q.to(torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        matrix = self.matrix.to(x.dtype)
        chain = matrix
        for _ in range(self.products):
            chain = chain @ matrix
        up = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return (up + 0 * chain[0, 0]).clamp(0, self.input_range)

    def extra_repr(self) -> str:
        return f"products={self.products}, size={self.matrix.shape[0]}, scale={self.scale}"
