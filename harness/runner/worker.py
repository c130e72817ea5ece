"""One submission's worker: everything that touches the submission's model, in a process of its own.

A worker owns its imports, its torch global settings, its allocator and its CUDA context, so a
submission cannot change what the next one sees or how it is timed, and a crash (a segfault, a
``sys.exit``, a sticky CUDA error) takes down only its own worker. It answers the requests of
:mod:`harness.runner.messages`:

* **Accuracy pass.** Each image is forwarded once, untimed (the very first call is timed cold, as
  the official script's first image is), on a fresh copy of its input. The output is checked for
  shape, device and finiteness, made uint8 the official way (on a GPU on the device, then copied
  to the host) and sent back as pixels. The worker holds no ground truth: its split names LR files
  only, and the coordinator's scorer (:mod:`harness.runner.scorer`) scores the pixels and writes
  the PNGs, overlapping the worker's next forward pass. Peak device memory is read right after
  each forward pass, before the quantisation allocates.
* **Performance pass.** Inputs are put on the device once (as uint8 levels), and before the first
  warm-up each input size other than image 0's gets one untimed forward pass; then the worker does
  nothing but forward passes when told, each on a freshly dithered input (:mod:`harness.runner.dither`,
  from the seed the request carries) made outside the timed span: no call repeats an input, and
  there is no decoding, no metrics, no writes but one: after the timed span, each timed output
  goes to the worker's output slot (:mod:`harness.runner.output_slot`), which the coordinator copies out.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from harness.cells.backends import Forward, build_cell
from harness.complexity import complexity_record
from harness.errors import HarnessError
from harness.metrics import sr_pixels, to_tensor
from harness.runner import messages as msg
from harness.runner.dither import derive_seed, device_pixels, dithered
from harness.runner.forward import forward
from harness.runner.output_slot import SlotWriter
from harness.submissions import LoadedModel, load_resolved
from harness.submissions.building import summarise_exception
from harness.submissions.placement import CudaOnCpu
from harness.timing import PeakMemory, Timer, make_timer, time_call, warm_up

# How torch's CPU allocator says it ran out (a RuntimeError, not an OutOfMemoryError).
_CPU_ALLOCATION_FAILED = "DefaultCPUAllocator: can't allocate memory"


class SubmissionFailure(Exception):
    """A submission misbehaved (bad output, NaN, wrong size); the worker answers ``Failed``."""


def apply_torch_settings(settings: msg.TorchSettings) -> None:
    """Put this process's torch global settings to what the protocol says.

    OpenCV, which a submission may use, gets the same thread count: a worker uses ``threads`` cores.
    """
    torch.set_num_threads(settings.threads)
    cv2.setNumThreads(settings.threads)
    torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    torch.backends.cudnn.deterministic = settings.cudnn_deterministic
    torch.backends.cuda.matmul.allow_tf32 = settings.cuda_matmul_allow_tf32
    torch.backends.cudnn.allow_tf32 = settings.cudnn_allow_tf32
    torch.set_float32_matmul_precision(settings.float32_matmul_precision)


def torch_settings() -> dict[str, Any]:
    """This process's torch global settings as they are now (recorded in the run document)."""
    return {
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def failure_reason(error: BaseException) -> str:
    """One line for a submission's failure: out-of-memory and our own errors as they are, else the
    exception type, message and where in the team's code it was raised."""
    if isinstance(error, torch.cuda.OutOfMemoryError) or _CPU_ALLOCATION_FAILED in str(error):
        return f"out of memory: {str(error).splitlines()[0]}"
    if isinstance(error, HarnessError | SubmissionFailure):
        return str(error)
    return summarise_exception(error)


def check_type_and_shape(sr: object, lr: torch.Tensor, scale: int, name: str) -> torch.Tensor:
    """The output must be a plain floating-point 1x3x(sH)x(sW) tensor on the input's device."""
    if not isinstance(sr, torch.Tensor):
        raise SubmissionFailure(f"{name}: output is a {type(sr).__name__}, not a torch.Tensor")
    if type(sr) is not torch.Tensor:  # a subclass can run code when read, after the timer stopped
        raise SubmissionFailure(
            f"{name}: output is a {type(sr).__name__}, a subclass of torch.Tensor; return a plain torch.Tensor"
        )
    expected = (1, 3, lr.shape[-2] * scale, lr.shape[-1] * scale)
    if tuple(sr.shape) != expected:
        raise SubmissionFailure(f"{name}: output shape {tuple(sr.shape)}, expected {expected}")
    if sr.device != lr.device:
        raise SubmissionFailure(f"{name}: output is on {sr.device}, the input was on {lr.device}")
    if not sr.is_floating_point():
        raise SubmissionFailure(f"{name}: output dtype {sr.dtype} is not floating point")
    return sr


def check_output(sr: object, lr: torch.Tensor, scale: int, name: str) -> torch.Tensor:
    """The output must be a finite floating-point 1x3x(sH)x(sW) tensor on the input's device."""
    sr = check_type_and_shape(sr, lr, scale, name)
    if not bool(torch.isfinite(sr).all()):
        raise SubmissionFailure(f"{name}: output contains NaN or Inf")
    return sr


def make_current(device: torch.device) -> None:
    """Make ``device`` this process's current CUDA device (nothing to do on the CPU).

    Team code often says ``.cuda()`` or ``device="cuda"``, meaning the current device. Without this,
    a worker of a lane on ``cuda:1`` would build such a model, and run such a forward pass, on GPU 0,
    where another lane may be timing.
    """
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)


class SubmissionWorker:
    """The state of one worker: the loaded model, the shared data and the device inputs."""

    def __init__(self, slot: SlotWriter | None = None) -> None:
        self.slot = slot  # where each timed call's output leaves (harness.runner.output_slot)
        self.loaded: LoadedModel | None = None
        self.request: msg.Load | None = None
        self.cell_forward: Forward | None = None
        self.device = torch.device("cpu")
        self.timer: Timer | None = None
        self.inputs: list[torch.Tensor] = []
        self.sizes_primed = False  # one untimed forward pass per input size, before the first round
        self.cuda_on_cpu = CudaOnCpu()  # entered around each request when the device is the CPU

    # -- dispatch -------------------------------------------------------------------------------

    def handle(self, request: msg.Request) -> Iterator[msg.Reply]:
        """The replies to one request: one, or for the accuracy pass one per image and a last one.

        On the CPU the request runs with the submission's CUDA placements mapped to the CPU
        (patched for the request, restored after it: the worker's own process is left as it was).
        """
        device = torch.device(request.device if isinstance(request, msg.Load) else self.device)
        with self.cuda_on_cpu if device.type == "cpu" else contextlib.nullcontext():
            yield from self._handle(request)

    def _handle(self, request: msg.Request) -> Iterator[msg.Reply]:
        try:
            if isinstance(request, msg.Load):
                yield self.load(request)
            elif isinstance(request, msg.Accuracy):
                yield from self.accuracy(request)
            elif isinstance(request, msg.CountComplexity):
                counts = complexity_record(self._model(), request.counter)
                yield msg.ComplexityCounted({**counts, "placement": self.cuda_on_cpu.placement})
            elif isinstance(request, msg.PrepareTiming):
                yield self.prepare_timing()
            elif isinstance(request, msg.WarmUp):
                yield self.warm_up(request)
            elif isinstance(request, msg.TimeImage):
                yield self.time_image(request)
            else:
                raise HarnessError(f"worker: unexpected request {type(request).__name__}")
        except Exception as error:  # noqa: BLE001 - the submission's fault is reported, not raised
            yield msg.Failed(failure_reason(error))

    # -- loading --------------------------------------------------------------------------------

    def load(self, request: msg.Load) -> msg.Loaded:
        apply_torch_settings(request.settings)
        wanted = torch_settings()
        self.request = request
        self.device = torch.device(request.device)
        make_current(self.device)
        self.loaded = load_resolved(
            request.submission, request.weights, trust_weights=request.trust_weights, device=self.device
        )
        # Another cell is built (and tried) on image 0, so a model it cannot run fails here as a Failed
        # reply, not mid-round; fp32 is the model itself, untouched, so its first call stays cold.
        self.cell_forward = (
            self.loaded.model
            if request.cell == "fp32"
            else build_cell(request.cell, self.loaded.model, self._input(0))
        )
        found = torch_settings()
        changed = {key: value for key, value in found.items() if value != wanted[key]}
        apply_torch_settings(request.settings)  # the submission is timed under the protocol's settings
        self.timer = make_timer(self.device, request.clock)  # type: ignore[arg-type]
        return msg.Loaded(torch_settings=torch_settings(), changed_by_submission=changed)

    def _model(self) -> torch.nn.Module:
        if self.loaded is None:
            raise HarnessError("worker: no model loaded")
        return self.loaded.model

    def _forward(self, lr: torch.Tensor) -> Callable[[], torch.Tensor]:
        """The forward pass of the official script (tiled when the manifest says so), on ``lr``, in the cell."""
        self._model()  # a clear error when nothing is loaded
        model = self.cell_forward
        submission = self.request.submission  # type: ignore[union-attr]

        def call() -> torch.Tensor:
            with torch.inference_mode():
                return forward(
                    model,
                    lr,
                    scale=submission.scale,
                    tile=submission.tile,
                    tile_overlap=submission.tile_overlap,
                )

        return call

    def _input(self, index: int) -> torch.Tensor:
        """A fresh tensor of image ``index``'s LR input on the device, made the official way."""
        request = self.request
        assert request is not None
        return to_tensor(np.array(request.split.lr(index)), request.submission.input_range).to(self.device)

    # -- accuracy pass --------------------------------------------------------------------------

    def accuracy(self, request: msg.Accuracy) -> Iterator[msg.Reply]:
        """Each image's SR pixels, one reply each as soon as made; then the cold call and peak memory.

        When an image fails, the images already done have been sent; the failure comes last.
        """
        first_call_ms: float | None = None
        peak_mb: float | None = None
        for position, index in enumerate(request.indices):
            cold = position == 0 and request.time_first_call
            pixels, elapsed_ms, peak = self._one_image(index, cold)
            first_call_ms = elapsed_ms if cold else first_call_ms
            peak_mb = peak_mb if peak is None else max(peak, peak_mb or 0.0)
            yield msg.ImageOutput(index=index, pixels=pixels)
        yield msg.AccuracyDone(first_call_ms=first_call_ms, max_memory_mb=peak_mb)

    def _one_image(self, index: int, cold: bool) -> tuple[np.ndarray, float | None, float | None]:
        """Forward image ``index`` once (timed when ``cold``) and make its output uint8 pixels.

        Returns the pixels (:func:`harness.metrics.sr_pixels`, the official quantisation), the cold
        call's milliseconds and the peak device memory of the forward pass (read before the
        quantisation allocates anything).
        """
        load = self.request
        assert load is not None and self.timer is not None
        submission, split = load.submission, load.split
        lr = self._input(index)
        memory = PeakMemory(self.device)
        memory.reset()
        elapsed_ms = None
        if cold:
            sr, elapsed_ms = self.timer.time(self._forward(lr))
        else:
            sr = self._forward(lr)()
        peak = memory.peak_mb()
        check_output(sr, lr, submission.scale, split.images[index].name)
        del lr
        return sr_pixels(sr, submission.input_range), elapsed_ms, peak

    # -- performance pass -----------------------------------------------------------------------

    def prepare_timing(self) -> msg.TimingReady:
        split = self.request.split  # type: ignore[union-attr]
        self.inputs = [device_pixels(np.array(split.lr(index)), self.device) for index in range(len(split))]
        return msg.TimingReady()

    def _fresh_call(self, index: int, seed: int) -> Callable[[], torch.Tensor]:
        """A forward pass on image ``index`` dithered from ``seed``, made now (outside any timed span).

        A worker that was restarted (Ray) has lost its device inputs: they are put there again
        first; the coordinator measures such a round again anyway.
        """
        if not self.inputs:
            self.prepare_timing()
        fresh = dithered(self.inputs[index], seed, self.request.submission.input_range)  # type: ignore[union-attr]
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self._forward(fresh)

    def _prime_every_input_size(self, seed: int) -> None:
        """One untimed forward pass for each distinct input size, image 0's aside.

        The warm-up repeats image 0; per-size setup (cuDNN plans with ``cudnn.benchmark``, lazily
        loaded kernels, allocator growth) for the other sizes would otherwise land inside the
        first timed round.
        """
        assert self.timer is not None
        if not self.inputs:
            self.prepare_timing()
        seen = {tuple(self.inputs[0].shape)}
        for index, image in enumerate(self.inputs):
            if tuple(image.shape) not in seen:
                seen.add(tuple(image.shape))
                self.timer.time(self._fresh_call(index, derive_seed(seed, "prime", index)))
        self.sizes_primed = True

    def warm_up(self, request: msg.WarmUp) -> msg.WarmedUp:
        assert self.timer is not None
        if not self.sizes_primed and request.max_passes > 0:
            self._prime_every_input_size(request.dither_seed)
        seeds = (derive_seed(request.dither_seed, "warm-up", number) for number in range(request.max_passes))
        # The dither is drawn inside the warm-up's timed calls: warm-up latencies are never kept.
        passes = warm_up(
            self.timer,
            lambda: self._fresh_call(0, next(seeds))(),
            min_seconds=request.seconds,
            min_passes=request.min_passes,
            max_passes=request.max_passes,
        )
        return msg.WarmedUp(passes)

    def time_image(self, request: msg.TimeImage) -> msg.ImageTimed:
        """Time the image's repeats; the last one's output goes to the slot, and the reply says its shape.

        After the timed span, the output is written to the output slot: the coordinator copies every
        timed output out of it as soon as it reads the reply, before anything else, and keeps the
        ones its audit drew (:mod:`harness.runner.audit`), so the worker cannot tell a drawn call
        from another. Python threads the forward passes left running are counted: work done there
        is work no timer saw.
        """
        assert self.timer is not None
        if self.slot is None:
            raise HarnessError("worker: no output slot to write the timed output to")
        threads_before = threading.active_count()
        latencies = []
        started = time.perf_counter()  # read through the module: a clock replaced there reads here too
        for repeat in range(request.repeats):
            sr, elapsed_ms = time_call(
                self.timer, self._fresh_call(request.index, derive_seed(request.dither_seed, repeat))
            )
            latencies.append(elapsed_ms)
        ended = time.perf_counter()
        threads_left = max(threading.active_count() - threads_before, 0)
        lr = self.inputs[request.index]
        check_type_and_shape(sr, lr, self.request.submission.scale, f"timed image {request.index + 1}")  # type: ignore[union-attr]
        values = self.slot.view(tuple(sr.shape))
        torch.from_numpy(values).copy_(sr.detach())  # to the host as float32, in one copy
        # statistics, not NumPy: np.median's first call imports numpy.ma, 16 ms inside the round.
        return msg.ImageTimed(
            request.index,
            statistics.median(latencies),
            threads_left,
            span=(started, ended),
            shape=values.shape,
        )


def serve(connection: Any, log_path: str, slot_fd: int) -> None:
    """The worker process's main loop: answer requests from ``connection`` until ``Shutdown``,
    writing timed outputs to the output slot ``slot_fd``.

    The process's stdout and stderr go to ``log_path``, so that a submission's prints never mix with
    the harness's output and the coordinator can quote the last line when the process dies.
    """
    redirect_output(log_path)
    threading.Thread(
        target=_exit_when_orphaned, args=(os.getppid(),), name="esr-orphan-watch", daemon=True
    ).start()
    answer(connection, slot_fd)


def answer(connection: Any, slot_fd: int) -> None:
    """Answer requests from ``connection`` until ``Shutdown`` (the loop of every kind of worker),
    writing timed outputs to the output slot ``slot_fd`` (:mod:`harness.runner.output_slot`)."""
    worker = SubmissionWorker(SlotWriter(slot_fd))
    while True:
        request = connection.recv()
        if isinstance(request, msg.Shutdown):
            return
        try:
            for reply in worker.handle(request):
                connection.send(reply)
        except Exception:  # a reply that cannot be sent (unpicklable result): say so in the log
            traceback.print_exc()
            connection.send(msg.Failed(f"worker: could not answer {type(request).__name__}"))


def redirect_output(log_path: str) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``log_path``."""
    log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - kept open for the process's life
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _exit_when_orphaned(parent: int) -> None:
    """End this process once its parent is gone (the coordinator was killed), even mid-forward."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def log_tail(path: Path, lines: int = 1) -> str:
    """The last non-empty lines of a worker's log, for a failure reason ('' when there are none)."""
    try:
        text = path.read_bytes()[-8192:].decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])
