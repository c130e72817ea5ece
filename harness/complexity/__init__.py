"""Model complexity exactly as the NTIRE 2022 Efficient SR organisers counted it.

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
from dataclasses import asdict, dataclass

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


def parse_input_size(text: str) -> tuple[int, int, int]:
    """Parse ``"3x256x256"`` into ``(3, 256, 256)``; raises ValueError on anything else."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"input size must look like 3x256x256, got {text!r}")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


__all__ = ["DEFAULT_INPUT_SIZE", "Complexity", "count_complexity", "parse_input_size"]
