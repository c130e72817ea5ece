"""Model complexity exactly as the NTIRE Efficient SR organisers counted it, by either of their counters.

From 2024 the organisers count FLOPs with fvcore instead (see :func:`count_fvcore`); which counter
is official is the protocol's ``flop_counter``, and :func:`complexity_record` gives both figures.

The NTIRE 2022 counter:

The organisers' counter (``utils/model_summary.py`` of the challenge repository, derived from
flops-counter.pytorch) hooks module *calls* during one forward pass on a ``1 x C x H x W`` input
(``3 x 256 x 256`` in the challenge). Its rules, restated here:

- **FLOPs** are multiply-accumulates, summed over calls of these module types only:

  - ``Conv2d`` / ``ConvTranspose2d``: ``kernel area * in_channels * out_channels / groups`` per
    output spatial position, times the batch; the bias is not counted.
  - ``ReLU``, ``PReLU``, ``ELU``, ``LeakyReLU``, ``ReLU6``: one per output element.
  - ``BatchNorm2d``: one per output element, two when affine.
  - ``Linear``: ``batch * in_features * out_features`` where the counter reads the batch and the
    feature sizes from dimensions 0 and 1 of the input and dimension 1 of the output (for a
    one-dimensional input, ``in_features * out_features``).

  Everything else (functional calls, sigmoid, pooling, interpolation, pixel shuffle, additions) costs
  nothing. Subclasses count as their base type.
- **Activations** are the number of elements of every ``Conv2d`` / ``ConvTranspose2d`` output.
- **#Conv** is the number of ``Conv2d`` / ``ConvTranspose2d`` calls (a module called twice counts
  twice).
- **Params** are all parameters of the model, trainable or not, each shared tensor once.

The count runs once under ``torch.no_grad`` with a zero input, in place on the model's own device
(hooks removed and the train/eval mode restored afterwards), so no data is needed and the model
passed in is left as it was.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

#: The challenge's input size, channels x height x width of the low-resolution image.
DEFAULT_INPUT_SIZE: tuple[int, int, int] = (3, 256, 256)

_CONVOLUTIONS = (nn.Conv2d, nn.ConvTranspose2d)
_ACTIVATIONS = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6)


@dataclass(frozen=True)
class Complexity:
    """The organisers' four complexity figures for one model at one input size."""

    params: int
    flops: int
    activations: int
    num_conv: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _module_flops(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    """The FLOPs one call of ``module`` costs under the organisers' rules (0 for other types)."""
    if isinstance(module, _CONVOLUTIONS):
        filters_per_channel = module.out_channels // module.groups
        per_position = math.prod(module.kernel_size) * module.in_channels * filters_per_channel
        return per_position * output.shape[0] * math.prod(output.shape[2:])
    if isinstance(module, _ACTIVATIONS):
        return output.numel()
    if isinstance(module, nn.BatchNorm2d):
        per_element = 2 if module.affine else 1
        return per_element * output.shape[0] * module.num_features * math.prod(output.shape[2:])
    if isinstance(module, nn.Linear):
        first = inputs[0]
        if first.dim() == 1:
            return first.shape[0] * output.shape[0]
        return first.shape[0] * first.shape[1] * output.shape[1]
    return 0


def count_complexity(model: nn.Module, input_size: tuple[int, ...] = DEFAULT_INPUT_SIZE) -> Complexity:
    """Count params, FLOPs, activations and #conv of ``model`` for a ``1 x input_size`` input."""
    if len(input_size) != 3 or any(int(size) <= 0 for size in input_size):
        raise ValueError(f"input_size must be three positive sizes (C, H, W), got {tuple(input_size)}")
    params = sum(parameter.numel() for parameter in model.parameters())
    # Counted in place, on the model's own device: team models built with weight_norm cannot be
    # deep-copied, and some only run on the device they were built for. Hooks are removed and the
    # train/eval mode restored afterwards; only shapes matter, so the device does not change a count.
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    was_training = model.training
    model.eval()
    totals = {"flops": 0, "activations": 0, "num_conv": 0}

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        totals["flops"] += _module_flops(module, inputs, output)
        if isinstance(module, _CONVOLUTIONS):
            totals["activations"] += output.numel()
            totals["num_conv"] += 1

    handles = [module.register_forward_hook(hook) for module in model.modules()]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *(int(size) for size in input_size), device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return Complexity(params=params, **totals)


#: The FLOP counters :func:`complexity_record` knows, by the names protocols use.
FLOP_COUNTERS: tuple[str, ...] = ("ntire2022", "fvcore")

# Operators fvcore has no rule for (it counts them as 0) whose cost is a few operations per element
# or only moves data: leaving them out does not hide real work. Names without ``aten::`` and any
# trailing ``_`` (in-place forms). Everything else uncounted - a custom op (``prim::PythonOp.*``),
# an attention or scan kernel, an FFT, a convolution fvcore does not recognise (``_convolution_mode``,
# ``padding='same'``) - can carry real work, and makes the fvcore figure a lower bound.
_NEGLIGIBLE_OPS = frozenset(
    {
        # elementwise arithmetic and activations
        "abs",
        "add",
        "addcmul",
        "addcdiv",
        "ceil",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "div",
        "elu",
        "erf",
        "exp",
        "expm1",
        "floor",
        "gelu",
        "hardsigmoid",
        "hardswish",
        "hardtanh",
        "leaky_relu",
        "log",
        "log_sigmoid",
        "lt",
        "le",
        "ne",
        "minimum",
        "maximum",
        "mish",
        "mul",
        "neg",
        "pow",
        "prelu",
        "reciprocal",
        "relu",
        "relu6",
        "round",
        "rsqrt",
        "rsub",
        "sigmoid",
        "sign",
        "silu",
        "sin",
        "softplus",
        "sqrt",
        "square",
        "sub",
        "tanh",
        "where",
        "masked_fill",
        "fill",
        "zero",
        "lerp",
        # reductions and pooling (a few operations per input element)
        "mean",
        "sum",
        "var",
        "std",
        "amax",
        "amin",
        "max",
        "min",
        "norm",
        "linalg_vector_norm",
        "frobenius_norm",
        "softmax",
        "log_softmax",
        "max_pool2d",
        "avg_pool2d",
        "adaptive_max_pool2d",
        "argmax",
        "argmin",
        "cumsum",
        "topk",
        "sort",
        # moving and copying data, and bicubic interpolation (16 weights per output element)
        "pixel_shuffle",
        "pixel_unshuffle",
        "pad",
        "reflection_pad2d",
        "replication_pad2d",
        "im2col",
        "col2im",
        "unfold",
        "fold",
        "expand_as",
        "repeat",
        "repeat_interleave",
        "clone",
        "flip",
        "embedding",
        "index_select",
        "scatter",
        "scatter_add",
        "upsample_bicubic2d",
        "view_as",
        "unflatten",
    }
)


@dataclass(frozen=True)
class FvcoreCount:
    """fvcore's total for one model, and the operators it met but counted as 0."""

    flops: int | float
    unsupported_ops: Mapping[str, int] = field(default_factory=dict)

    @property
    def uncounted_work(self) -> list[str]:
        """Uncounted operators that can carry real work (see ``_NEGLIGIBLE_OPS``), sorted."""
        return sorted(op for op in self.unsupported_ops if not _is_negligible(op))

    @property
    def lower_bound(self) -> bool:
        """True when the total leaves out operators that can carry real work."""
        return bool(self.uncounted_work)


def _is_negligible(op: str) -> bool:
    match = re.fullmatch(r"aten::(\w+?)_?", op)
    return match is not None and match.group(1) in _NEGLIGIBLE_OPS


def _input_like(model: nn.Module, input_size: tuple[int, ...]) -> torch.Tensor:
    """A ``1 x input_size`` input on the model's device: uniform noise from a fixed seed, as the
    organisers' ``torch.rand`` but the same on every run."""
    if len(input_size) != 3 or any(int(size) <= 0 for size in input_size):
        raise ValueError(f"input_size must be three positive sizes (C, H, W), got {tuple(input_size)}")
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, *(int(size) for size in input_size), generator=generator).to(device)


def count_fvcore(model: nn.Module, input_size: tuple[int, ...] = DEFAULT_INPUT_SIZE) -> FvcoreCount:
    """``fvcore.nn.FlopCountAnalysis(model, input).total()`` as the 2024+ organisers call it.

    fvcore traces one forward pass and counts one FLOP per multiply-accumulate of the operators it
    has rules for (convolutions, matrix products, normalisations, upsampling); every other operator
    counts 0 and is listed in ``unsupported_ops``. The model is traced in place, in eval mode and
    without gradients; its train/eval mode is restored afterwards.
    """
    from fvcore.nn import FlopCountAnalysis  # imported here: its import pulls in iopath and yacs

    example = _input_like(model, input_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, example)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            total = analysis.total()
            unsupported = dict(sorted(analysis.unsupported_ops().items()))
    finally:
        model.train(was_training)
    flops = int(total) if float(total).is_integer() else float(total)
    return FvcoreCount(flops=flops, unsupported_ops=unsupported)


#: The fields :func:`complexity_record` puts in a result record.
RECORD_FIELDS: tuple[str, ...] = (
    "params",
    "flops",
    "flops_counter",
    "flops_ntire2022",
    "flops_fvcore",
    "flops_lower_bound",
    "activations",
    "num_conv",
    "fvcore_unsupported_ops",
    "fvcore_uncounted_work",
    "counter_errors",
    # not from complexity_record: "cuda calls mapped to cpu" when the submission's CUDA placements ran
    # on the CPU (harness.submissions.placement), else None; the worker adds it to its counts
    "placement",
)


def complexity_record(
    model: nn.Module, counter: str, input_size: tuple[int, ...] = DEFAULT_INPUT_SIZE
) -> dict[str, Any]:
    """Complexity as a result record carries it, with ``counter`` (a protocol's ``flop_counter``) official.

    ``flops`` is the official counter's figure and ``flops_counter`` names it; ``flops_ntire2022`` and
    ``flops_fvcore`` are both figures, so that 2022 and 2024+ numbers can be compared. The fvcore
    operators counted as 0 are listed (``fvcore_unsupported_ops``), those of them that can carry real
    work in ``fvcore_uncounted_work``; ``flops_lower_bound`` is true when the official figure is
    fvcore's and leaves such work out. When the other counter fails on a model, its figure is None
    and ``counter_errors`` says why; a failure of the official counter raises.
    """
    if counter not in FLOP_COUNTERS:
        raise ValueError(f"unknown FLOP counter {counter!r} (known: {', '.join(FLOP_COUNTERS)})")
    errors: dict[str, str] = {}
    organisers: Complexity | None = None
    fvcore: FvcoreCount | None = None
    try:
        organisers = count_complexity(model, input_size)
    except Exception as error:  # noqa: BLE001 - the other counter's failure is recorded, not fatal
        if counter == "ntire2022":
            raise
        errors["ntire2022"] = f"{type(error).__name__}: {error}"
    try:
        fvcore = count_fvcore(model, input_size)
    except Exception as error:  # noqa: BLE001
        if counter == "fvcore":
            raise
        errors["fvcore"] = (
            f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        )
    flops = {
        "ntire2022": organisers.flops if organisers else None,
        "fvcore": fvcore.flops if fvcore else None,
    }
    return {
        "params": sum(parameter.numel() for parameter in model.parameters()),
        "flops": flops[counter],
        "flops_counter": counter,
        "flops_ntire2022": flops["ntire2022"],
        "flops_fvcore": flops["fvcore"],
        "flops_lower_bound": counter == "fvcore" and fvcore is not None and fvcore.lower_bound,
        "activations": organisers.activations if organisers else None,
        "num_conv": organisers.num_conv if organisers else None,
        "fvcore_unsupported_ops": dict(fvcore.unsupported_ops) if fvcore else None,
        "fvcore_uncounted_work": fvcore.uncounted_work if fvcore else None,
        "counter_errors": errors,
    }


def parse_input_size(text: str) -> tuple[int, int, int]:
    """Parse ``"3x256x256"`` into ``(3, 256, 256)``; raises ValueError on anything else."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"input size must look like 3x256x256, got {text!r}")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


__all__ = [
    "DEFAULT_INPUT_SIZE",
    "FLOP_COUNTERS",
    "Complexity",
    "FvcoreCount",
    "RECORD_FIELDS",
    "complexity_record",
    "count_complexity",
    "count_fvcore",
    "parse_input_size",
]
