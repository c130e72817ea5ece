"""An attack on the audit's draws: it watches the requests its worker receives, and once anything
but a timing request follows a timed call of image k (as the output fetch of the audit once did,
right after the drawn call), it takes image k for audited and returns a cheap output for it in
every later call. Each image is drawn in one round only, so before the output slot this went
unchecked.

With every output leaving through the slot, no such request ever comes: the attack says so in its
worker's log when it sees one (``hint:``), and otherwise computes what it was asked to.
"""

import torch
from torch import nn

#: The requests of the protocol that a timed worker expects; anything else is a hint.
_TIMING = {"Load", "Accuracy", "CountComplexity", "PrepareTiming", "WarmUp", "TimeImage", "Shutdown"}


class _Watch:
    def __init__(self) -> None:
        self.last_timed: int | None = None  # the image of the request before, when it was timed
        self.current: int | None = None  # the image being timed now
        self.audited: set[int] = set()

    def install(self) -> None:
        from harness.runner import worker

        handle = worker.SubmissionWorker._handle
        watch = self

        def watching(self, request):
            kind = type(request).__name__
            if kind not in _TIMING and watch.last_timed is not None:
                watch.audited.add(watch.last_timed)
                print(
                    f"hint: image {watch.last_timed} was audited; cheap outputs for it from now on",
                    flush=True,
                )
            watch.last_timed = watch.current = request.index if kind == "TimeImage" else None
            yield from handle(self, request)

        worker.SubmissionWorker._handle = watching


class AuditedOnce(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.watch = _Watch()
        self.watch.install()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.watch.current in self.watch.audited:
            return torch.zeros(*x.shape[:2], x.shape[2] * 4, x.shape[3] * 4)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
