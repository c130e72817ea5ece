"""Running code written for a GPU on the CPU: hard-coded moves to CUDA land on the CPU instead.

Team code often says ``model.cuda()``, ``x.to('cuda')``, ``torch.zeros(..., device='cuda')`` or
``torch.cuda.synchronize()`` where it means "the device I run on", and saves checkpoints from CUDA
tensors. On a machine without a GPU each of these raises, although neither the parameters, the FLOPs
nor the output depend on the device. :class:`CudaOnCpu` patches those entry points of torch for as
long as it is entered and restores the originals on exit, so that such a model is built, counted and
run on the CPU exactly as its own code writes it. The edition's ``test_demo.py`` counts the same
models on a CPU the same way (``.cuda()`` a no-op, ``map_location='cpu'``).

What it does not touch stays CUDA-only and still fails with its own error: a custom CUDA extension,
a Triton kernel, ``mamba_ssm``'s selective scan, ``torch.cuda`` queries other than ``synchronize``
and ``empty_cache``. ``torch.cuda.is_available()`` keeps saying False, so code that chooses its
device by asking chooses the CPU without help.

The patches are process-wide while entered: the evaluation worker (one process per submission) holds
them for its whole life when its device is the CPU; ``esr summary`` holds them around each model's
build and count. :attr:`CudaOnCpu.placement` is what a record says: ``"cuda calls mapped to cpu"``
once at least one call was redirected, None when the code made none (so the record says it only
when the mapping changed what ran).
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

#: What a result record's ``placement`` says when a submission's CUDA calls ran on the CPU.
MAPPED_TO_CPU = "cuda calls mapped to cpu"

# Tensor factories of the torch namespace that take a ``device`` keyword.
_FACTORIES = (
    "arange",
    "as_tensor",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "linspace",
    "logspace",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "tensor",
    "zeros",
    "zeros_like",
)
_CPU = torch.device("cpu")


def _is_cuda(device: object) -> bool:
    """True for ``'cuda'``, ``'cuda:1'``, ``torch.device('cuda')`` and a bare index (which means CUDA)."""
    if isinstance(device, torch.device):
        return device.type == "cuda"
    if isinstance(device, str):
        return device == "cuda" or device.startswith("cuda:")
    return isinstance(device, int) and not isinstance(device, bool)


class CudaOnCpu:
    """A context manager under which hard-coded CUDA placements of torch code land on the CPU.

    ``redirected`` counts the calls it changed, by name (``Module.cuda``, ``torch.zeros``, ...).
    Entering twice without leaving is an error: the originals it restores would be its own patches.
    """

    def __init__(self) -> None:
        self.redirected: Counter[str] = Counter()
        self._saved: list[tuple[object, str, object]] = []
        # Each replacement made once per original (entered at every request of a CPU worker:
        # rebuilding some thirty wrappers each time cost 0.3 ms per timed request).
        self._made: dict[tuple[object, str], tuple[object, object]] = {}

    @property
    def placement(self) -> str | None:
        """:data:`MAPPED_TO_CPU` once any call was redirected, else None."""
        return MAPPED_TO_CPU if self.redirected else None

    def __enter__(self) -> CudaOnCpu:
        if self._saved:
            raise RuntimeError("CudaOnCpu is already entered")
        self._patch(nn.Module, "cuda", lambda _: self._staying("Module.cuda"))
        self._patch(torch.Tensor, "cuda", lambda _: self._staying("Tensor.cuda"))
        self._patch(nn.Module, "to", lambda original: self._moving(original, "Module.to"))
        self._patch(torch.Tensor, "to", lambda original: self._moving(original, "Tensor.to"))
        for name in _FACTORIES:
            self._patch(torch, name, lambda original, name=name: self._factory(original, f"torch.{name}"))
        self._patch(torch, "load", self._load)
        self._patch(torch.cuda, "synchronize", lambda _: self._no_op("torch.cuda.synchronize"))
        self._patch(torch.cuda, "empty_cache", lambda _: self._no_op("torch.cuda.empty_cache"))
        return self

    def __exit__(self, *exc_info: object) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)

    def _patch(self, owner: object, name: str, make: Callable[[Any], object]) -> None:
        """Replace ``owner.name`` by ``make(original)``, made again only when the original changed."""
        original = getattr(owner, name)
        made = self._made.get((owner, name))
        if made is None or made[0] is not original:
            made = (original, make(original))
            self._made[(owner, name)] = made
        self._saved.append((owner, name, original))
        setattr(owner, name, made[1])

    def _staying(self, label: str) -> Callable[..., Any]:
        """``.cuda()`` of a module or tensor: it stays where it is (on the CPU)."""

        def cuda(owner: Any, *args: Any, **kwargs: Any) -> Any:
            self.redirected[label] += 1
            return owner

        return cuda

    def _moving(self, original: Callable[..., Any], label: str) -> Callable[..., Any]:
        """``.to(...)`` with a CUDA device (positional or ``device=``) turned into the CPU."""

        @functools.wraps(original)
        def to(owner: Any, *args: Any, **kwargs: Any) -> Any:
            if args and _is_cuda(args[0]):
                args = (_CPU, *args[1:])
                self.redirected[label] += 1
            if _is_cuda(kwargs.get("device")):
                kwargs["device"] = _CPU
                self.redirected[label] += 1
            return original(owner, *args, **kwargs)

        return to

    def _factory(self, original: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(original)
        def factory(*args: Any, **kwargs: Any) -> Any:
            if _is_cuda(kwargs.get("device")):
                kwargs["device"] = _CPU
                self.redirected[label] += 1
            return original(*args, **kwargs)

        return factory

    def _load(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """``torch.load`` reading CUDA-saved tensors onto the CPU (``map_location`` absent or CUDA)."""

        @functools.wraps(original)
        def load(*args: Any, **kwargs: Any) -> Any:
            if len(args) < 2 and (kwargs.get("map_location") is None or _is_cuda(kwargs["map_location"])):
                kwargs["map_location"] = _CPU
                self.redirected["torch.load"] += 1
            return original(*args, **kwargs)

        return load

    def _no_op(self, label: str) -> Callable[..., None]:
        def no_op(*args: Any, **kwargs: Any) -> None:
            self.redirected[label] += 1

        return no_op


@contextlib.contextmanager
def placement_for(device: str | torch.device) -> Iterator[CudaOnCpu | None]:
    """:class:`CudaOnCpu` entered when ``device`` is the CPU; nothing (None) on a GPU."""
    if torch.device(device).type != "cpu":
        yield None
        return
    with CudaOnCpu() as mapping:
        yield mapping
