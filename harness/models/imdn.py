"""IMDN as used by the NTIRE 2022 Efficient SR challenge (the organisers' baseline, AIM 2019 winner).

Written from Hui et al., "Lightweight Image Super-Resolution with Information Multi-distillation
Network" (ACM MM 2019), in the simplified form the challenge released: a 3x3 head, ``nb``
information multi-distillation blocks and a 3x3 convolution inside one long skip connection, then a
3x3 convolution to ``out_nc * upscale**2`` channels and a pixel shuffle. Module names follow the
released checkpoints (``model.0``, ``model.1.sub.<i>``, ``model.2``) so that ``imdn_baseline.pth``
(``nb=8``) and ``team26_imdn_nb7.pth`` (``nb=7``) load strictly. The network expects input range 1.

Every convolution is built through a *conv factory* that receives the convolution's state-dict
name; the collapsible-linear-block model (:mod:`harness.models.clb`) uses it to put expanded blocks
in place of chosen convolutions without repeating the architecture.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: ``factory(name, in_channels, out_channels, kernel_size) -> module`` with "same" padding and
#: stride 1; ``name`` is the module's path in the state dict, e.g. ``"model.1.sub.0.conv1.0"``.
ConvFactory = Callable[[str, int, int, int], nn.Module]


def plain_conv(name: str, in_channels: int, out_channels: int, kernel_size: int) -> nn.Module:
    """The ordinary convolution: stride 1, zero padding that keeps the spatial size, with bias."""
    del name  # a plain convolution does not depend on where it sits
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class IMDBlock(nn.Module):
    """One information multi-distillation block with a residual connection.

    Three 3x3 convolutions (each followed by LeakyReLU) each keep ``d_nc`` channels ("distilled")
    and pass the remaining ``r_nc`` on; a fourth 3x3 convolution produces the last ``d_nc``; the
    four distilled parts are concatenated and fused by a 1x1 convolution added to the input.
    The activations are modules (not functional calls) because the organisers' complexity counter
    counts FLOPs of activation modules only.
    """

    def __init__(
        self,
        channels: int,
        *,
        d_rate: float,
        negative_slope: float,
        conv: ConvFactory,
        prefix: str,
    ) -> None:
        super().__init__()
        self.d_nc = int(channels * d_rate)
        self.r_nc = channels - self.d_nc
        self.conv1 = self._conv_act(conv(f"{prefix}.conv1.0", channels, channels, 3), negative_slope)
        self.conv2 = self._conv_act(conv(f"{prefix}.conv2.0", self.r_nc, channels, 3), negative_slope)
        self.conv3 = self._conv_act(conv(f"{prefix}.conv3.0", self.r_nc, channels, 3), negative_slope)
        self.conv4 = conv(f"{prefix}.conv4", self.r_nc, self.d_nc, 3)
        self.conv1x1 = conv(f"{prefix}.conv1x1", 4 * self.d_nc, channels, 1)

    @staticmethod
    def _conv_act(conv: nn.Module, negative_slope: float) -> nn.Sequential:
        # In-place like the released model, so that peak memory measurements compare fairly.
        return nn.Sequential(conv, nn.LeakyReLU(negative_slope, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1, r1 = torch.split(self.conv1(x), (self.d_nc, self.r_nc), dim=1)
        d2, r2 = torch.split(self.conv2(r1), (self.d_nc, self.r_nc), dim=1)
        d3, r3 = torch.split(self.conv3(r2), (self.d_nc, self.r_nc), dim=1)
        d4 = self.conv4(r3)
        return x + self.conv1x1(torch.cat((d1, d2, d3, d4), dim=1))


class Shortcut(nn.Module):
    """``x + sub(x)``; the attribute is called ``sub`` to match the released checkpoints."""

    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sub(x)


class IMDN(nn.Module):
    """IMDN with ``nb`` blocks of ``nc`` channels and a pixel-shuffle upsampler (input range 1).

    ``conv_factory`` (keyword-only, a Python hook, not a manifest option) builds every convolution;
    the default is :func:`plain_conv`.
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nc: int = 64,
        nb: int = 8,
        upscale: int = 4,
        negative_slope: float = 0.05,
        d_rate: float = 0.25,
        *,
        conv_factory: ConvFactory = plain_conv,
    ) -> None:
        super().__init__()
        if nb < 1:
            raise ValueError(f"IMDN needs at least one block, got nb={nb}")
        self.nb = nb
        self.upscale = upscale
        blocks: list[nn.Module] = [
            IMDBlock(
                nc, d_rate=d_rate, negative_slope=negative_slope, conv=conv_factory, prefix=f"model.1.sub.{i}"
            )
            for i in range(nb)
        ]
        blocks.append(conv_factory(f"model.1.sub.{nb}", nc, nc, 3))
        self.model = nn.Sequential(
            conv_factory("model.0", in_nc, nc, 3),
            Shortcut(nn.Sequential(*blocks)),
            conv_factory("model.2", nc, out_nc * upscale**2, 3),
            nn.PixelShuffle(upscale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
