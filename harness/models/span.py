"""SPAN, the NTIRE 2024 Efficient SR winner and the NTIRE 2026 baseline.

Written from Wan et al., "Swift Parameter-free Attention Network for Efficient Super-Resolution"
(CVPR Workshops 2024), in its deployed form: each Conv3XC (trained as 1x1 -> 3x3 -> 1x1 plus a 1x1
skip) is re-parameterised into one 3x3 convolution, ``eval_conv``. The input, in [0, 1], has the
DIV2K mean subtracted and is scaled by 255; a Conv3XC extracts features; six swift parameter-free
attention blocks (SPAB: three Conv3XC with SiLU between them, and an attention map
``sigmoid(out) - 0.5`` that gates ``out + input`` without any parameter) follow; the shallow
features, the last Conv3XC's output, the first block's output and the sixth block's first
convolution are concatenated and fused by a 1x1 convolution, then a 3x3 convolution with pixel
shuffle upsamples. 28 feature channels. Module names follow the released ``team00_SPAN.pth`` of the
NTIRE 2026 repository so that it loads strictly.
"""

from __future__ import annotations

import torch
from torch import nn

# DIV2K's RGB mean, subtracted from the input (not a parameter: the released model has no such key).
_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class Conv3XC(nn.Module):
    """A deployed Conv3XC: its three trained convolutions and skip folded into one 3x3 convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.eval_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eval_conv(x)


class SPAB(nn.Module):
    """Swift parameter-free attention block; returns its output and its first convolution's output."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = Conv3XC(channels, channels)
        self.c2_r = Conv3XC(channels, channels)
        self.c3_r = Conv3XC(channels, channels)
        self.act1 = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.c1_r(x)
        out = self.c3_r(self.act1(self.c2_r(self.act1(first))))
        attention = torch.sigmoid(out) - 0.5
        return (out + x) * attention, first


class SPAN(nn.Module):
    """The deployed SPAN of the challenge: 150,688 parameters at the default sizes."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 28,
        upscale: int = 4,
        img_range: float = 255.0,
    ) -> None:
        super().__init__()
        self.img_range = img_range
        self.register_buffer("mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_1 = Conv3XC(num_in_ch, feature_channels)
        self.block_1 = SPAB(feature_channels)
        self.block_2 = SPAB(feature_channels)
        self.block_3 = SPAB(feature_channels)
        self.block_4 = SPAB(feature_channels)
        self.block_5 = SPAB(feature_channels)
        self.block_6 = SPAB(feature_channels)
        self.conv_cat = nn.Conv2d(feature_channels * 4, feature_channels, 1)
        self.conv_2 = Conv3XC(feature_channels, feature_channels)
        self.upsampler = nn.Sequential(
            nn.Conv2d(feature_channels, num_out_ch * upscale**2, 3, padding=1), nn.PixelShuffle(upscale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv_1((x - self.mean) * self.img_range)
        out_1, _ = self.block_1(features)
        out_2, _ = self.block_2(out_1)
        out_3, _ = self.block_3(out_2)
        out_4, _ = self.block_4(out_3)
        out_5, _ = self.block_5(out_4)
        out_6, first_conv_of_6 = self.block_6(out_5)
        fused = self.conv_cat(torch.cat([features, self.conv_2(out_6), out_1, first_conv_of_6], 1))
        return self.upsampler(fused)
