"""EFDN, first in overall performance at NTIRE 2023 and the NTIRE 2025 baseline.

Written from Wang, "Edge-enhanced Feature Distillation Network for Efficient Super-Resolution"
(CVPR Workshops 2022), in its deployed form: the edge-enhanced diverse branch blocks trained with
Sobel and Laplacian branches are re-parameterised into single 3x3 convolutions (``rep_conv``)
followed by PReLU. A 3x3 head, four cells (a 1x1 convolution and two re-parameterised 3x3
convolutions in sequence, four 1x1 branch convolutions that fuse the cell's input and the three
intermediate outputs, enhanced spatial attention, and a residual), three 1x1 local fusions of
concatenated cell outputs, a long skip, and a 3x3 convolution with pixel shuffle. The output is
clamped to [0, 1], the input range. Module names follow the released ``team00_EFDN.pth`` of the
NTIRE 2025 repository (the same file as NTIRE 2022's ``team01_efdn.pth``) so that it loads strictly.
"""

from __future__ import annotations

import torch
from torch import nn

# EFDN's attention is RFDN's enhanced spatial attention (with its max branch), a quarter of the channels.
from harness.models.rfdn import ESA


class PointwisePReLU(nn.Module):
    """1x1 convolution followed by a per-channel PReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(channels, channels, 1)
        self.act = nn.PReLU(num_parameters=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv1x1(x))


class RepConvPReLU(nn.Module):
    """A deployed edge-enhanced block: one re-parameterised 3x3 convolution and a per-channel PReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.rep_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.PReLU(num_parameters=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.rep_conv(x))


class Cell(nn.Module):
    """Feature distillation cell: three stages, every stage's features kept through a 1x1 branch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = PointwisePReLU(channels)
        self.conv2 = RepConvPReLU(channels)
        self.conv3 = RepConvPReLU(channels)
        self.fuse = nn.Conv2d(channels * 2, channels, 1)
        self.att = ESA(channels)
        self.branch = nn.ModuleList(nn.Conv2d(channels, channels // 2, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.conv1(x)
        second = self.conv2(first)
        third = self.conv3(second)
        stages = (x, first, second, third)
        distilled = torch.cat([branch(stage) for branch, stage in zip(self.branch, stages, strict=True)], 1)
        return self.att(self.fuse(distilled)) + x


class EFDN(nn.Module):
    """The deployed EFDN of the challenge: 276,192 parameters at the default sizes."""

    def __init__(
        self, scale: int = 4, in_channels: int = 3, n_feats: int = 48, out_channels: int = 3
    ) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.cells = nn.ModuleList(Cell(n_feats) for _ in range(4))
        self.local_fuse = nn.ModuleList(nn.Conv2d(n_feats * 2, n_feats, 1) for _ in range(3))
        self.tail = nn.Sequential(
            nn.Conv2d(n_feats, out_channels * scale**2, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        first = self.cells[0](head)
        second = self.cells[1](first)
        third = self.cells[2](self.local_fuse[0](torch.cat([first, second], 1)))
        fourth = self.cells[3](self.local_fuse[1](torch.cat([second, third], 1)))
        fused = self.local_fuse[2](torch.cat([second, fourth], 1))
        return self.tail(fused + head).clamp(0, 1)
