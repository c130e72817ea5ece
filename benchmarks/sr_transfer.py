"""How long one SR output takes to leave the worker: an ``ImageOutput`` of a 2K image through the pipe.

Since the worker no longer holds the ground truth, every image of the accuracy pass comes back to
the coordinator as uint8 pixels (a 2040x1356x3 DIV2K output is 8.3 MB). This script measures the
cost of that on this machine: a process answers each request with the pixels of one 2K image, the
way a worker does (:class:`multiprocessing.connection.Connection` of the worker's start method,
the pickled :class:`~harness.runner.messages.ImageOutput`), and the coordinator's side times each
request until the reply is unpickled, beside the same exchange with a 1-pixel image (what the pipe
costs anyway). It is outside every timed span (the accuracy pass is untimed but for its first
call), so the question is only whether it is small beside a forward pass and a scoring.

    .venv/bin/python benchmarks/sr_transfer.py --repeats 50
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from typing import Any

import numpy as np

from harness.runner import messages as msg

SIZE_2K = (1356, 2040, 3)


def _answer(connection: Any) -> None:
    """The worker's side: each request names a shape; the reply is an ImageOutput of that shape."""
    images: dict[tuple[int, ...], np.ndarray] = {}
    while (shape := connection.recv()) is not None:
        if shape not in images:
            images[shape] = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        connection.send(msg.ImageOutput(index=0, pixels=images[shape]))


def _times_ms(connection: Any, shape: tuple[int, ...], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        connection.send(shape)
        reply = connection.recv()
        times.append((time.perf_counter() - started) * 1000.0)
        assert reply.pixels.shape == shape
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    context = multiprocessing.get_context("forkserver")
    ours, theirs = context.Pipe()
    process = context.Process(target=_answer, args=(theirs,))
    process.start()
    try:
        _times_ms(ours, SIZE_2K, 3)  # the first exchanges allocate the buffers
        tiny, full = [], []
        for _ in range(args.repeats):  # alternated, so drift on a shared machine hits both alike
            tiny += _times_ms(ours, (1, 1, 3), 1)
            full += _times_ms(ours, SIZE_2K, 1)
    finally:
        ours.send(None)
        process.join()
    mb = np.prod(SIZE_2K) / 1e6
    for label, times in (("1x1x3 image", tiny), (f"2040x1356x3 image ({mb:.1f} MB)", full)):
        quartiles = statistics.quantiles(times, n=4)
        print(
            f"{label}: median {statistics.median(times):.2f} ms, "
            f"quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f} ms over {len(times)} replies"
        )


if __name__ == "__main__":
    main()
