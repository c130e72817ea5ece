"""An attack: returns a tensor subclass whose work is done the first time anything reads it.

The forward pass returns at once; the ``work`` matrix products and the upscale run when the output
is first used (any torch function on it), after a timer that stops at the return has stopped.
"""

import torch
from torch import nn


class Later(torch.Tensor):
    """Holds a pending computation; the first torch function on it finishes it."""

    pending = None

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        for arg in args:
            if isinstance(arg, Later) and arg.pending is not None:
                finish, arg.pending = arg.pending, None
                with torch._C.DisableTorchFunctionSubclass():
                    finish(arg)
        return super().__torch_function__(func, types, args, kwargs or {})


class LazyTensor(nn.Module):
    def __init__(self, work: int) -> None:
        super().__init__()
        self.work = work

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], x.shape[1], x.shape[2] * 4, x.shape[3] * 4).as_subclass(Later)
        work = self.work

        def finish(target: torch.Tensor) -> None:
            y = torch.ones(160, 160)
            for _ in range(work):
                y = (y @ y).clamp_(0, 1)
            target.copy_(torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest"))

        out.pending = finish
        return out
