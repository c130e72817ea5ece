"""Collapsible linear blocks (CLB) and the seed's CLB-IMDN: train wide, deploy a plain 7-block IMDN.

A collapsible linear block (Bhardwaj et al., "Collapsible Linear Blocks for Super-Efficient Super
Resolution", MLSys 2022; used by the xilinxSR team in NTIRE 2022) replaces one ``k x k`` convolution
during training by a ``k x k`` convolution to a wider hidden width followed by a ``1 x 1``
convolution back, with no nonlinearity between and an identity path when input and output widths
match. The composition is linear, so after training it folds into one ``k x k`` convolution that
computes exactly the same function:

    W[o, i] = sum_h S[o, h] * E[h, i]  (+ delta[o, i] at the kernel centre when o == i)
    b[o]    = sum_h S[o, h] * e[h] + s[o]

with ``E, e`` the expanding convolution's weight and bias and ``S, s`` the 1x1 convolution's.

``CLBIMDN`` is the training form: an IMDN (:mod:`harness.models.imdn`) in which chosen convolutions
are collapsible blocks. Its ``collapse()`` returns the plain IMDN, whose weights have the layout of
the released ``team26_imdn_nb7.pth``. Evaluation always runs that collapsed form:
``CLBIMDNForEval`` is the plain IMDN that also accepts a training-form checkpoint and collapses it
on load (see :func:`load_clb_state_dict`).

Choices (documented here because the paper leaves them open):

- ``expansion`` multiplies the block's output width (``hidden = expansion * out_channels``; the
  default 4 gives 256 hidden channels for 64-channel layers, the width SESR uses); a fixed
  ``hidden_channels`` overrides it. The hidden width must be at least the output width, so that a
  block can start from a plain convolution's weights (:meth:`CollapsibleConv2d.init_from_conv`).
- ``expanded`` chooses the convolutions: ``"all"`` (every 3x3 convolution: head, the four 3x3s of
  every block, the body's last convolution and the upsampler's), ``"body"`` (the 3x3s inside the
  distillation blocks only), ``"none"``, or a list of ``fnmatch`` patterns over state-dict module
  names such as ``"model.1.sub.*.conv1.0"`` (which may also pick 1x1 convolutions). A pattern that
  matches nothing is an error, so a typo cannot silently train the plain model.
- ``collapse_mode`` ``"explicit"`` runs the two convolutions (and adds the identity); ``"online"``
  folds the kernel and bias from the parameters at every forward pass and runs one convolution.
  Both compute the same function with the same gradients; online needs far less activation memory
  and time at large patches because the wide hidden tensor never exists.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError
from harness.models.imdn import IMDN, plain_conv

CollapseMode = Literal["explicit", "online"]
COLLAPSE_MODES: tuple[str, ...] = ("explicit", "online")
EXPANDED_PRESETS: tuple[str, ...] = ("all", "body", "none")

# State-dict suffixes that mark a collapsible block in a training-form checkpoint.
_EXPAND = ".expand.weight"
_SQUEEZE = ".squeeze.weight"


def fold_linear_block(
    expand_weight: torch.Tensor,
    expand_bias: torch.Tensor,
    squeeze_weight: torch.Tensor,
    squeeze_bias: torch.Tensor,
    identity: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The single convolution's (weight, bias) equal to ``squeeze(expand(x)) (+ x)``; differentiable.

    ``identity`` is the centred delta kernel (``out x in x k x k``) added when the block has an
    identity path, or None.
    """
    squeeze = squeeze_weight.flatten(1)  # out x hidden
    weight = torch.einsum("oh,hikl->oikl", squeeze, expand_weight)
    if identity is not None:
        weight = weight + identity
    return weight, squeeze @ expand_bias + squeeze_bias


def _identity_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    kernel = torch.zeros(channels, channels, kernel_size, kernel_size)
    centre = kernel_size // 2
    kernel[torch.arange(channels), torch.arange(channels), centre, centre] = 1.0
    return kernel


@torch.no_grad()
def fold_exactly(
    expand_weight: torch.Tensor,
    expand_bias: torch.Tensor,
    squeeze_weight: torch.Tensor,
    squeeze_bias: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The deployed (weight, bias) of one block: folded in float64, cast back to the weights' dtype.

    A block has an identity path exactly when its input and output widths match, as in
    :class:`CollapsibleConv2d`, so the four tensors alone determine the result.
    """
    out_channels, in_channels, kernel_size = (
        squeeze_weight.shape[0],
        expand_weight.shape[1],
        expand_weight.shape[2],
    )
    identity = None
    if in_channels == out_channels:
        identity = _identity_kernel(out_channels, kernel_size).to(expand_weight.device, torch.float64)
    weight, bias = fold_linear_block(
        expand_weight.double(), expand_bias.double(), squeeze_weight.double(), squeeze_bias.double(), identity
    )
    return weight.to(expand_weight.dtype), bias.to(expand_weight.dtype)


class CollapsibleConv2d(nn.Module):
    """``k x k`` conv in->hidden, then ``1 x 1`` conv hidden->out, plus identity when in == out.

    Stride 1, "same" zero padding, odd ``k``, no groups: the configurations IMDN uses and the ones for
    which the fold is exact. ``collapse()`` returns the equivalent ``nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        hidden_channels: int,
        *,
        collapse_mode: CollapseMode = "explicit",
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"collapsible blocks need an odd kernel size, got {kernel_size}")
        if hidden_channels < out_channels:
            raise ValueError(
                f"hidden width {hidden_channels} is narrower than the output width {out_channels}; "
                "a collapsible block must expand"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.hidden_channels = hidden_channels
        self.expand = nn.Conv2d(in_channels, hidden_channels, kernel_size, padding=kernel_size // 2)
        self.squeeze = nn.Conv2d(hidden_channels, out_channels, 1)
        self.has_identity = in_channels == out_channels
        # Not saved: it is a constant, and checkpoints must carry only the trained parameters.
        identity = _identity_kernel(out_channels, kernel_size) if self.has_identity else None
        self.register_buffer("identity", identity, persistent=False)
        self.collapse_mode: CollapseMode = "explicit"
        self.set_collapse_mode(collapse_mode)

    def set_collapse_mode(self, mode: str) -> None:
        if mode not in COLLAPSE_MODES:
            raise ValueError(f"collapse_mode must be one of {', '.join(COLLAPSE_MODES)}, got {mode!r}")
        self.collapse_mode = mode  # type: ignore[assignment]

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The collapsed (weight, bias), computed from the current parameters (keeps gradients)."""
        return fold_linear_block(
            self.expand.weight, self.expand.bias, self.squeeze.weight, self.squeeze.bias, self.identity
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.collapse_mode == "online":
            weight, bias = self.folded()
            return F.conv2d(x, weight, bias, padding=self.kernel_size // 2)
        out = self.squeeze(self.expand(x))
        return out + x if self.has_identity else out

    @torch.no_grad()
    def collapse(self) -> nn.Conv2d:
        """One ``nn.Conv2d`` with exactly this block's function (folded in float64, then cast)."""
        weight, bias = fold_exactly(
            self.expand.weight, self.expand.bias, self.squeeze.weight, self.squeeze.bias
        )
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, padding=self.kernel_size // 2)
        conv = conv.to(device=weight.device, dtype=weight.dtype)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        return conv

    @torch.no_grad()
    def init_from_conv(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Set the parameters so the block computes the plain convolution (``weight``, ``bias``).

        The first ``out`` hidden channels carry the kernel (minus the identity) and the 1x1 passes
        them through; the other hidden channels keep their random kernels behind zero 1x1 weights,
        so they start silent but receive gradients at once (no dead units).
        """
        expected = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        if tuple(weight.shape) != expected or tuple(bias.shape) != (self.out_channels,):
            raise ValueError(f"a plain kernel of shape {expected} is needed, got {tuple(weight.shape)}")
        out = self.out_channels
        kernel = weight - self.identity if self.identity is not None else weight
        self.expand.weight[:out].copy_(kernel)
        self.expand.bias.zero_()
        self.squeeze.weight.zero_()
        self.squeeze.weight[torch.arange(out), torch.arange(out), 0, 0] = 1.0
        self.squeeze.bias.copy_(bias)

    def extra_repr(self) -> str:
        return f"hidden={self.hidden_channels}, identity={self.has_identity}, mode={self.collapse_mode}"


def _is_3x3(kernel_size: int) -> bool:
    return kernel_size == 3


def _body_convolution(name: str) -> bool:
    return fnmatch.fnmatchcase(name, "model.1.sub.*.conv[1-4]*")


class CLBIMDN(IMDN):
    """Training form of the seed's model: IMDN (default 7 blocks) with collapsible linear blocks."""

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nc: int = 64,
        nb: int = 7,
        upscale: int = 4,
        negative_slope: float = 0.05,
        d_rate: float = 0.25,
        *,
        expansion: int = 4,
        hidden_channels: int | None = None,
        expanded: str | Sequence[str] = "all",
        collapse_mode: CollapseMode = "explicit",
    ) -> None:
        if expansion < 1:
            raise ValueError(f"expansion must be at least 1, got {expansion}")
        if isinstance(expanded, str) and expanded not in EXPANDED_PRESETS:
            raise ValueError(
                f"expanded must be one of {', '.join(EXPANDED_PRESETS)} or a list of patterns, "
                f"got {expanded!r}"
            )
        patterns = None if isinstance(expanded, str) else [str(p) for p in expanded]
        used: set[str] = set()

        def chosen(name: str, kernel_size: int) -> bool:
            if patterns is None:
                if expanded == "all":
                    return _is_3x3(kernel_size)
                return expanded == "body" and _is_3x3(kernel_size) and _body_convolution(name)
            hits = [p for p in patterns if fnmatch.fnmatchcase(name, p)]
            used.update(hits)
            return bool(hits)

        def factory(name: str, in_channels: int, out_channels: int, kernel_size: int) -> nn.Module:
            if not chosen(name, kernel_size):
                return plain_conv(name, in_channels, out_channels, kernel_size)
            hidden = hidden_channels if hidden_channels is not None else expansion * out_channels
            return CollapsibleConv2d(
                in_channels, out_channels, kernel_size, hidden, collapse_mode=collapse_mode
            )

        super().__init__(in_nc, out_nc, nc, nb, upscale, negative_slope, d_rate, conv_factory=factory)
        unused = [p for p in patterns or [] if p not in used]
        if unused:
            raise ValueError(f"expanded pattern(s) {', '.join(map(repr, unused))} match no convolution")
        self._plain_kwargs = {
            "in_nc": in_nc,
            "out_nc": out_nc,
            "nc": nc,
            "nb": nb,
            "upscale": upscale,
            "negative_slope": negative_slope,
            "d_rate": d_rate,
        }

    def collapsible_blocks(self) -> dict[str, CollapsibleConv2d]:
        """The expanded convolutions by state-dict module name."""
        return {name: m for name, m in self.named_modules() if isinstance(m, CollapsibleConv2d)}

    def set_collapse_mode(self, mode: str) -> None:
        for block in self.collapsible_blocks().values():
            block.set_collapse_mode(mode)

    @torch.no_grad()
    def collapse(self) -> IMDN:
        """The plain IMDN with the same function (team26 layout), in this model's train/eval mode."""
        plain = IMDN(**self._plain_kwargs).to(device=next(self.parameters()).device)
        plain.load_state_dict(collapse_state_dict(self.state_dict()), strict=True)
        return plain.train(self.training)

    @torch.no_grad()
    def init_from_plain(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Start from plain IMDN weights (e.g. ``esr prune`` output): the same function at step 0.

        The weights must fit the plain IMDN of this model's shape strictly; each collapsible block
        is set with :meth:`CollapsibleConv2d.init_from_conv`, every other layer is copied.
        """
        plain = IMDN(**self._plain_kwargs)
        plain.load_state_dict(state_dict, strict=True)
        blocks = self.collapsible_blocks()
        plain_modules = dict(plain.named_modules())
        for name, block in blocks.items():
            conv = plain_modules[name]
            block.init_from_conv(conv.weight, conv.bias)
        # The remaining keys are exactly the non-expanded layers, named alike in both models.
        rest = {k: v for k, v in plain.state_dict().items() if k.rpartition(".")[0] not in blocks}
        self.load_state_dict(rest, strict=False)


def is_training_form(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether a checkpoint holds expanded collapsible blocks (rather than a plain IMDN)."""
    return any(key.endswith(_EXPAND) for key in state_dict)


def collapse_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fold every collapsible block of a training-form state dict; other entries pass through.

    Each block is folded by :func:`fold_exactly`, so the checkpoint alone determines the result.
    """
    result: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.endswith(_EXPAND):
            name = key[: -len(_EXPAND)]
            try:
                expand_b = state_dict[f"{name}.expand.bias"]
                squeeze_w, squeeze_b = state_dict[name + _SQUEEZE], state_dict[f"{name}.squeeze.bias"]
            except KeyError as error:
                raise HarnessError(f"collapsible block {name!r} lacks {error.args[0]!r}") from None
            result[f"{name}.weight"], result[f"{name}.bias"] = fold_exactly(
                value, expand_b, squeeze_w, squeeze_b
            )
        elif ".expand." in key or ".squeeze." in key:
            continue  # folded with its block's expand weight above
        else:
            result[key] = value
    return result


def load_clb_state_dict(model: IMDN, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a collapsed (team26-layout) or training-form checkpoint into a plain IMDN, strictly."""
    if is_training_form(state_dict):
        state_dict = collapse_state_dict(state_dict)
    model.load_state_dict(state_dict, strict=True)


class CLBIMDNForEval(IMDN):
    """The evaluated form of ``clb_imdn``: the collapsed 7-block IMDN (loads team26 weights strictly).

    ``load_submission_state_dict`` (the hook the submission loader calls) also accepts a
    training-form checkpoint and collapses it first.
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nc: int = 64,
        nb: int = 7,
        upscale: int = 4,
        negative_slope: float = 0.05,
        d_rate: float = 0.25,
    ) -> None:
        super().__init__(in_nc, out_nc, nc, nb, upscale, negative_slope, d_rate)

    def load_submission_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        load_clb_state_dict(self, state_dict)


class CLBIMDNUncollapsed(CLBIMDN):
    """``clb_imdn`` in its training form (every 3x3 a 4x-expanded block), built from collapsed weights.

    It computes the released model's function through the uncollapsed blocks, so cells can show
    what collapsing buys after deployment. A training-form checkpoint loads as it is.
    """

    def load_submission_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        if is_training_form(state_dict):
            self.load_state_dict(state_dict, strict=True)
        else:
            self.init_from_plain(state_dict)


__all__ = [
    "COLLAPSE_MODES",
    "EXPANDED_PRESETS",
    "CLBIMDN",
    "CLBIMDNForEval",
    "CLBIMDNUncollapsed",
    "CollapsibleConv2d",
    "collapse_state_dict",
    "fold_exactly",
    "fold_linear_block",
    "is_training_form",
    "load_clb_state_dict",
]
