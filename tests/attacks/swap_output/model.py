"""An attack: after each timed reply, the worker's ``time_image`` (rewritten in its own process)
puts other values into its output slot than the ones it computed and committed to (here one
level higher; a cheat would leave a better output there than its timed calls made).

The digest in the timed reply was made of the computed output, so what the coordinator copies out
of the slot for an audited call does not match it.
"""

import numpy as np
import torch
from torch import nn


def _leave_something_else() -> None:
    from harness.runner import worker

    honest = worker.SubmissionWorker.time_image

    def better(self, request):
        reply = honest(self, request)
        values = self.slot.view(reply.shape)
        np.clip(values + np.float32(1.0 / 255), 0, 1, out=values)
        return reply

    worker.SubmissionWorker.time_image = better


class SwapOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        _leave_something_else()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
