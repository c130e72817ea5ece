"""RFDN, the winner of the AIM 2020 Efficient SR challenge and the NTIRE 2022 runtime reference.

Written from Liu et al., "Residual Feature Distillation Network for Lightweight Image
Super-Resolution" (ECCV Workshops 2020): a 3x3 feature convolution, four residual feature
distillation blocks (RFDB) whose outputs are concatenated and fused by a 1x1 convolution with
LeakyReLU, a 3x3 convolution plus a long skip, and a pixel-shuffle upsampler. Each RFDB distils
with 1x1 convolutions beside shallow residual 3x3 convolutions and ends with enhanced spatial
attention (ESA). Module names follow the released ``rfdn_baseline.pth`` so it loads strictly.
The network expects input range 255.

Activations are modules called at every use (one LeakyReLU per block, called seven times), as in the
released model, because the organisers' complexity counter counts FLOPs per activation-module call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class ESA(nn.Module):
    """Enhanced spatial attention: a cheap, strided, max-pooled branch that gates the features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = channels // 4
        self.conv1 = nn.Conv2d(channels, reduced, 1)
        self.conv_f = nn.Conv2d(reduced, reduced, 1)
        self.conv_max = nn.Conv2d(reduced, reduced, 3, padding=1)
        self.conv2 = nn.Conv2d(reduced, reduced, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(reduced, reduced, 3, padding=1)
        self.conv3_ = nn.Conv2d(reduced, reduced, 3, padding=1)
        self.conv4 = nn.Conv2d(reduced, channels, 1)
        self.sigmoid = nn.Sigmoid()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        pooled = F.max_pool2d(c1, kernel_size=7, stride=3)
        c3 = self.relu(self.conv_max(pooled))
        c3 = self.relu(self.conv3(c3))
        c3 = self.conv3_(c3)
        c3 = F.interpolate(c3, (x.size(2), x.size(3)), mode="bilinear", align_corners=False)
        mask = self.sigmoid(self.conv4(c3 + self.conv_f(c1_)))
        return x * mask


class RFDB(nn.Module):
    """Residual feature distillation block: three distil/refine stages, a last 3x3, fusion, ESA."""

    def __init__(self, channels: int, negative_slope: float = 0.05) -> None:
        super().__init__()
        distilled = channels // 2
        self.c1_d = _conv(channels, distilled, 1)
        self.c1_r = _conv(channels, channels, 3)
        self.c2_d = _conv(channels, distilled, 1)
        self.c2_r = _conv(channels, channels, 3)
        self.c3_d = _conv(channels, distilled, 1)
        self.c3_r = _conv(channels, channels, 3)
        self.c4 = _conv(channels, distilled, 3)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.c5 = _conv(4 * distilled, channels, 1)
        self.esa = ESA(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.act(self.c1_d(x))
        r1 = self.act(self.c1_r(x) + x)
        d2 = self.act(self.c2_d(r1))
        r2 = self.act(self.c2_r(r1) + r1)
        d3 = self.act(self.c3_d(r2))
        r3 = self.act(self.c3_r(r2) + r2)
        d4 = self.act(self.c4(r3))
        return self.esa(self.c5(torch.cat([d1, d2, d3, d4], dim=1)))


class RFDN(nn.Module):
    """RFDN with ``num_modules`` RFDBs of ``nf`` channels (released: 50 channels, 4 blocks)."""

    def __init__(
        self,
        in_nc: int = 3,
        nf: int = 50,
        num_modules: int = 4,
        out_nc: int = 3,
        upscale: int = 4,
        negative_slope: float = 0.05,
    ) -> None:
        super().__init__()
        if num_modules < 1:
            raise ValueError(f"RFDN needs at least one block, got num_modules={num_modules}")
        self.num_modules = num_modules
        self.upscale = upscale
        self.fea_conv = _conv(in_nc, nf, 3)
        for i in range(1, num_modules + 1):
            self.add_module(f"B{i}", RFDB(nf, negative_slope))
        self.c = nn.Sequential(nn.Conv2d(nf * num_modules, nf, 1), nn.LeakyReLU(negative_slope, inplace=True))
        self.LR_conv = _conv(nf, nf, 3)
        self.upsampler = nn.Sequential(_conv(nf, out_nc * upscale**2, 3), nn.PixelShuffle(upscale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.fea_conv(x)
        outputs = []
        current = features
        for i in range(1, self.num_modules + 1):
            current = self._modules[f"B{i}"](current)
            outputs.append(current)
        fused = self.c(torch.cat(outputs, dim=1))
        return self.upsampler(self.LR_conv(fused) + features)
