"""An attack: when the audit asks for a timed call's output, the worker's ``send_output``
(rewritten in its own process) sends other values than the ones it computed (here one level
higher; a cheat would send a better output than its timed calls made).

The digest in the timed reply was made of the computed output, so what it sends does not match.
"""

import numpy as np
import torch
from torch import nn


def _send_something_else() -> None:
    from harness.runner import messages as msg
    from harness.runner import worker

    def better(self):
        values = torch.from_numpy(np.array(self.last_output))
        return msg.TimedOutput(values.add(1.0 / 255).clamp(0, 1).numpy())

    worker.SubmissionWorker.send_output = better


class SwapOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        _send_something_else()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
