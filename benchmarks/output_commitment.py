"""What a timed call costs outside its timed span, piece by piece, and what a digest would add.

After every timed call the worker checks the output's type and shape, copies it as float32 values
into its output slot (:mod:`harness.runner.output_slot`) and sends a small reply; the coordinator
copies the values out of the slot as soon as it reads the reply (into a buffer touched before the
round), and after the round quantises the outputs the audit keeps to uint8. All of that lies inside
a round's wall time but outside the timed spans (``benchmarks/timed_loop_purity.py``).

The worker used to commit to each output with a digest in its reply, checked against the values
the coordinator copied out of the slot for the calls the audit drew. This script times each piece
on the outputs the purity benchmark's model makes on the embedded samples (x4 nearest upscale of
each LR image, float32, 1.6-10.5 MB), beside the candidate digests on the same bytes, which is why
the copy out of every call replaced the digest (the reason is in :mod:`harness.runner.output_slot`):

* ``sha1``, ``sha256``, ``blake2b``: hashlib, one thread;
* ``sha1 x2``: SHA-1 of each half on two threads, then SHA-1 of the two digests (a hash tree);
* ``blake3 1t`` / ``blake3 Nt``: BLAKE3 (PyPI ``blake3``, in the ``dev`` extra) on one thread / on
  ``--threads``.

Every figure is the minimum and the median over ``--repeats`` calls (the minimum is the cost on a
quiet core; the median what a shared machine gives), in milliseconds.

    .venv/bin/python benchmarks/output_commitment.py --repeats 21 --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import pickle
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import blake3
import numpy as np
import torch

from harness.data import open_dataset
from harness.metrics import sr_pixels
from harness.runner import messages as msg
from harness.runner.output_slot import OutputSlot, SlotWriter, slot_values
from harness.runner.worker import check_type_and_shape


def _bytes(values: np.ndarray) -> memoryview:
    return memoryview(values).cast("B")


def _sha1_halves(pool: ThreadPoolExecutor, values: np.ndarray) -> bytes:
    data = _bytes(values)
    half = len(data) // 2
    parts = pool.map(lambda part: hashlib.sha1(part).digest(), (data[:half], data[half:]))
    return hashlib.sha1(b"".join(parts)).digest()


def candidates(threads: int, pool: ThreadPoolExecutor) -> dict[str, Callable[[np.ndarray], bytes]]:
    """The digests compared, each from a float32 C-contiguous array to its digest."""
    return {
        "sha1": lambda values: hashlib.sha1(_bytes(values)).digest(),
        "sha256": lambda values: hashlib.sha256(_bytes(values)).digest(),
        "blake2b": lambda values: hashlib.blake2b(_bytes(values)).digest(),
        "sha1 x2": lambda values: _sha1_halves(pool, values),
        "blake3 1t": lambda values: blake3.blake3(_bytes(values)).digest(),
        f"blake3 {threads}t": lambda values: blake3.blake3(_bytes(values), max_threads=threads).digest(),
    }


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The minimum and median milliseconds of ``repeats`` calls of ``fn``."""
    spans = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        spans.append((time.perf_counter() - start) * 1000.0)
    return min(spans), statistics.median(spans)


def sample_outputs() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, LR input, output) of the purity benchmark's model on each embedded sample."""
    outputs = []
    for name, lr, _ in open_dataset("samples"):
        tensor = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        with torch.inference_mode():
            outputs.append((name, tensor, torch.nn.functional.interpolate(tensor, scale_factor=4)))
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2, help="threads of the multi-threaded BLAKE3")
    args = parser.parse_args()
    torch.set_num_threads(1)
    outputs = sample_outputs()
    slot = OutputSlot(slot_values([tuple(lr.shape[-2:]) for _, lr, _ in outputs], 4))
    writer = SlotWriter(os.dup(slot.fd))
    totals: dict[str, list[float]] = {}
    with ThreadPoolExecutor(2) as pool:
        digests = candidates(args.threads, pool)
        for name, lr, sr in outputs:
            values = sr.detach().to("cpu", torch.float32).contiguous().numpy()
            shape = tuple(values.shape)
            into = np.full(math.prod(shape), 0.0, np.float32)  # touched before, as the round loop does

            pieces = {
                "check_type_and_shape": lambda sr=sr, lr=lr, name=name: check_type_and_shape(sr, lr, 4, name),
                "copy into the slot": lambda sr=sr, shape=shape: torch.from_numpy(writer.view(shape)).copy_(
                    sr
                ),
                "pickle ImageTimed": lambda: pickle.dumps(
                    msg.ImageTimed(0, 50.0, 0, (0.0, 0.05), (1, 3, 2040, 1356))
                ),
                **{
                    f"digest {label}": (lambda fn=fn, values=values: fn(values))
                    for label, fn in digests.items()
                },
                "copy out of the slot": lambda into=into: slot.copy(into),
                "kept: sr_pixels": lambda values=values: sr_pixels(torch.from_numpy(values), 1.0),
            }
            print(f"{name}: output {'x'.join(map(str, shape))}, {values.nbytes / 1e6:.1f} MB")
            for label, fn in pieces.items():
                low, middle = timed(fn, args.repeats)
                totals.setdefault(label, []).append(low)
                print(f"  {label:30s} min {low:7.2f} ms, median {middle:7.2f} ms")
    slot.close()
    print("sum of the minima over the six outputs (one submission's round):")
    for label, lows in totals.items():
        print(f"  {label:30s} {sum(lows):7.2f} ms")


if __name__ == "__main__":
    main()
