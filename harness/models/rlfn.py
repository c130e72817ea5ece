"""RLFN, the NTIRE 2022 Efficient SR winner (ByteESR) and the NTIRE 2024 baseline.

Written from Kong et al., "Residual Local Feature Network for Efficient Super-Resolution" (CVPR
Workshops 2022), in its pruned challenge form: a 3x3 feature convolution, four residual local
feature blocks (RLFB: three 3x3 convolutions with LeakyReLU 0.05 and a residual, a 1x1
convolution, then enhanced spatial attention), a 3x3 convolution plus a long skip and a pixel-shuffle
upsampler. 46 feature channels, 48 inside a block, 16 in the attention. Module names follow the
released ``team00_rlfn.pth`` of the NTIRE 2024 repository so that it loads strictly. The network
expects input range 255.

Each block has one LeakyReLU module called three times, as the released model has, because the
organisers' 2022 complexity counter counts FLOPs per activation-module call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class ESA(nn.Module):
    """Enhanced spatial attention without RFDN's extra max-branch convolutions (pruned in RLFN)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, reduced, 1)
        self.conv_f = nn.Conv2d(reduced, reduced, 1)
        self.conv2 = nn.Conv2d(reduced, reduced, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(reduced, reduced, 3, padding=1)
        self.conv4 = nn.Conv2d(reduced, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.conv1(x)
        pooled = F.max_pool2d(self.conv2(reduced), kernel_size=7, stride=3)
        wide = F.interpolate(self.conv3(pooled), x.shape[-2:], mode="bilinear", align_corners=False)
        return x * self.sigmoid(self.conv4(wide + self.conv_f(reduced)))


class RLFB(nn.Module):
    """Residual local feature block."""

    def __init__(self, channels: int, mid_channels: int, esa_channels: int = 16) -> None:
        super().__init__()
        self.c1_r = _conv(channels, mid_channels, 3)
        self.c2_r = _conv(mid_channels, mid_channels, 3)
        self.c3_r = _conv(mid_channels, channels, 3)
        self.c5 = _conv(channels, channels, 1)
        self.esa = ESA(channels, esa_channels)
        self.act = nn.LeakyReLU(0.05, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out)) + x
        return self.esa(self.c5(out))


class RLFN(nn.Module):
    """The pruned RLFN of the challenge: 317,218 parameters at the default sizes."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        feature_channels: int = 46,
        mid_channels: int = 48,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        self.conv_1 = _conv(in_channels, feature_channels, 3)
        self.block_1 = RLFB(feature_channels, mid_channels)
        self.block_2 = RLFB(feature_channels, mid_channels)
        self.block_3 = RLFB(feature_channels, mid_channels)
        self.block_4 = RLFB(feature_channels, mid_channels)
        self.conv_2 = _conv(feature_channels, feature_channels, 3)
        self.upsampler = nn.Sequential(
            _conv(feature_channels, out_channels * upscale**2, 3), nn.PixelShuffle(upscale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv_1(x)
        out = self.block_4(self.block_3(self.block_2(self.block_1(features))))
        return self.upsampler(self.conv_2(out) + features)
