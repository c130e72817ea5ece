"""Data-parallel training across processes: the launch through torchrun and the process group.

`esr train --nproc N` re-executes itself under ``python -m torch.distributed.run`` (torchrun) so
that process management, rendezvous and failure handling come from PyTorch rather than from
here; each worker then joins the process group with the rank torchrun gave it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from harness.errors import HarnessError


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run; the default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    init_method: str = "env://"  # torchrun publishes MASTER_ADDR/PORT; tests pass tcp://host:port

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env(env: dict[str, str]) -> DistContext:
    """The context torchrun describes in ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (absent: single)."""
    try:
        world_size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", "0"))
    except ValueError as error:
        raise HarnessError(f"torchrun environment: {error}") from None
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def init_process_group(ctx: DistContext, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo on CPU."""
    if not ctx.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=ctx.init_method, rank=ctx.rank, world_size=ctx.world_size)


def destroy_process_group(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def broadcast_flag(ctx: DistContext, flag: bool) -> bool:
    """Rank 0's boolean, on every rank (e.g. whether validation failed)."""
    if not ctx.enabled:
        return flag
    holder = [flag]
    dist.broadcast_object_list(holder, src=0)
    return bool(holder[0])


def mean_over_ranks(ctx: DistContext, value: float, device: torch.device) -> float:
    """The mean of ``value`` over all processes (the logged loss covers every rank's patches)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / ctx.world_size


def launch_torchrun(nproc: int, esr_argv: list[str]) -> int:
    """Run ``esr <esr_argv>`` in ``nproc`` processes under torchrun on this machine; return its status."""
    if nproc < 1:
        raise HarnessError(f"--nproc must be at least 1, got {nproc}")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "harness.cli",
        *esr_argv,
    ]
    return subprocess.call(command)
