"""An attack: each forward pass starts a process that computes for ``cpu_seconds`` after it returned.

No Python thread is left behind (the threads check sees nothing) and the reply comes at once (the
clocks agree): only the CPU time the kernel counts for the worker's processes between two timed
calls shows the work.
"""

import subprocess
import sys

import torch
from torch import nn

BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end:\n    pass\n"


class LateProcess(nn.Module):
    def __init__(self, cpu_seconds: float) -> None:
        super().__init__()
        self.cpu_seconds = cpu_seconds
        self.started: list[subprocess.Popen] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.started = [process for process in self.started if process.poll() is None]
        self.started.append(subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=self.cpu_seconds)]))
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
