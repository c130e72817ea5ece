"""An attack: answers each timed call with a cheap output, then writes its real one into the output
slot after replying, for the audit to find there.

Its worker's ``time_image`` is rewritten in its own process: the timed forward pass answers at once
with a bicubic upscale (the accuracy pass gets the nearest neighbour upscale, which suits the test
data, after ``work`` matrix products); the reply goes out, and a thread does the work and puts the
nearest neighbour upscale into the slot. A coordinator that read the slot some time after the reply
would audit the real output. It reads it at once, so the audited timed outputs are the cheap ones
and score under the accuracy pass.
"""

import threading

import numpy as np
import torch
from torch import nn

_TIMED = threading.local()


def _write_late() -> None:
    from harness.runner import worker

    honest = worker.SubmissionWorker.time_image

    def answer_then_finish(self, request):
        _TIMED.on = True
        try:
            reply = honest(self, request)
        finally:
            _TIMED.on = False
        pixels = self.inputs[request.index].to(torch.float32) / 255.0
        slot = self.slot.view(reply.shape)

        def finish() -> None:
            real = self.loaded.model.real(pixels)
            np.copyto(slot, real.numpy())

        threading.Thread(target=finish, daemon=True).start()
        return reply

    worker.SubmissionWorker.time_image = answer_then_finish


class LateOutput(nn.Module):
    def __init__(self, work: int) -> None:
        super().__init__()
        self.work = work
        _write_late()

    def real(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ones(160, 160)
        for _ in range(self.work):
            y = (y @ y).clamp_(0, 1)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") + 0 * y[0, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(_TIMED, "on", False):
            return torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        return self.real(x)
