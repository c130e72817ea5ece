"""The coordinator/worker protocol: a few typed requests, each answered by one reply.

A worker evaluates one submission. The coordinator sends it a :class:`Load`, then the work of the
accuracy pass, the complexity count and the performance pass, one request at a time; the worker
answers each with its reply, or with :class:`Failed` when the submission misbehaved. The accuracy
pass streams one :class:`ImageOutput` per image (the SR image as uint8 pixels) before its
:class:`AccuracyDone`; the coordinator scores each against the ground truth, which the worker never
holds (:mod:`harness.runner.scorer`), and checkpoints after every image. Messages are plain,
picklable dataclasses: the same requests travel over a pipe to a local process or as method calls
to a remote actor. Replies come from the submission's process, so the coordinator reads them with
:func:`read_reply`, which builds nothing but these replies and their plain values.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.runner.shared_data import SharedSplit
from harness.submissions import ResolvedWeights, Submission


@dataclass(frozen=True)
class TorchSettings:
    """The torch global settings a worker runs its submission under.

    The protocol decides cuDNN autotuning, the coordinator the thread count; the other defaults are
    torch's own, stated explicitly so that the run document records them.
    """

    cudnn_benchmark: bool
    threads: int
    cudnn_deterministic: bool = False
    cuda_matmul_allow_tf32: bool = False
    cudnn_allow_tf32: bool = True
    float32_matmul_precision: str = "highest"


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Load:
    """Build the submission, load its verified weights onto ``device`` and map the shared LR images.

    ``split`` is :meth:`SharedSplit.inputs_only`: no HR image or Y plane, not even their paths.
    """

    submission: Submission
    weights: ResolvedWeights | None
    trust_weights: bool
    device: str
    settings: TorchSettings
    split: SharedSplit
    # The cell (harness.cells) the accuracy and timing passes run the model in; fp32 is the protocol's.
    cell: str = "fp32"
    # What latencies are read on (harness.timing.make_timer): wall, the protocol's, or cpu.
    clock: str = "wall"


@dataclass(frozen=True)
class Accuracy:
    """Forward each of ``indices`` once, untimed, and return its output; time the very first call cold."""

    indices: tuple[int, ...]
    time_first_call: bool


@dataclass(frozen=True)
class CountComplexity:
    """Params, FLOPs, activations and #conv at the protocol's input size; FLOPs by ``counter``
    (the protocol's FLOP counter), the other counter's figure beside it."""

    counter: str


@dataclass(frozen=True)
class PrepareTiming:
    """Put every LR input on the device, ready for the performance pass."""


@dataclass(frozen=True)
class WarmUp:
    """Forward passes on the first image until ``seconds`` have passed (within the pass bounds).

    Each pass (and the first warm-up's priming of other input sizes) gets the image dithered from
    a seed derived from ``dither_seed`` (:mod:`harness.runner.dither`).
    """

    seconds: float
    min_passes: int
    max_passes: int
    dither_seed: int


@dataclass(frozen=True)
class TimeImage:
    """Time the forward pass of image ``index`` ``repeats`` times, each on the image dithered from a
    seed derived from ``dither_seed`` and the repeat's number (:mod:`harness.runner.dither`)."""

    index: int
    repeats: int
    dither_seed: int


@dataclass(frozen=True)
class Shutdown:
    """Exit the worker."""


Request = Load | Accuracy | CountComplexity | PrepareTiming | WarmUp | TimeImage | Shutdown


# ---------------------------------------------------------------- replies


@dataclass(frozen=True)
class Loaded:
    """The model is ready; the settings it runs under, and any the submission's code changed."""

    torch_settings: dict[str, Any]
    changed_by_submission: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageOutput:
    """One image of the accuracy pass: the uint8 HxWx3 SR pixels of image ``index``
    (:func:`harness.metrics.sr_pixels`), made after the forward pass, for the scorer."""

    index: int
    pixels: np.ndarray


@dataclass(frozen=True)
class AccuracyDone:
    """The accuracy pass is over: the cold first call (when timed) and peak device memory (MiB)."""

    first_call_ms: float | None
    max_memory_mb: float | None


@dataclass(frozen=True)
class ComplexityCounted:
    counts: dict[str, int]


@dataclass(frozen=True)
class TimingReady:
    """Every input is on the device."""


@dataclass(frozen=True)
class WarmedUp:
    passes: int


@dataclass(frozen=True)
class ImageTimed:
    """Image ``index`` timed: the median of its repeats' latencies, in ms, and the ``shape`` of the
    last repeat's output, which the worker wrote to its output slot (:mod:`harness.runner.output_slot`)
    after the timed span, for the coordinator to copy out as soon as it reads this reply; Python
    threads the calls left running; ``span``, the worker's ``time.perf_counter`` (seconds) before the
    first repeat and after the last, which on the coordinator's host must lie inside its own window
    around the request (:func:`harness.integrity.clock_check`)."""

    index: int
    milliseconds: float
    threads_left: int = 0
    span: tuple[float, float] | None = None
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Failed:
    """The submission failed; ``reason`` is one line naming what went wrong."""

    reason: str


Reply = Loaded | ImageOutput | AccuracyDone | ComplexityCounted | TimingReady | WarmedUp | ImageTimed | Failed


class UnexpectedReply(Exception):
    """What a worker sent is not a reply of this protocol; the message says what it held."""


#: The only classes a reply's pickle may name: the replies, and what NumPy needs to rebuild an array.
_REPLY_CLASSES = {cls.__name__: cls for cls in Reply.__args__}
_NUMPY_REBUILDERS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5, the default
    ("numpy._core.numeric", "_frombuffer"),
}


class _ReplyUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global but the replies' classes and NumPy's array rebuilders.

    A pickle can name any importable callable and call it while it is read (``os.system``, a class
    whose ``__reduce__`` runs code); a submission that writes to its worker's end of the pipe could
    otherwise run code in the coordinator, which holds the ground truth.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name in _REPLY_CLASSES:
            return _REPLY_CLASSES[name]
        if (module, name) in _NUMPY_REBUILDERS:
            return super().find_class(module, name)
        raise UnexpectedReply(f"the reply names {module}.{name}, which is not part of the protocol")


def read_reply(data: bytes) -> Reply:
    """The reply pickled in ``data``, built without running any code a worker could choose.

    Raises :class:`UnexpectedReply` when it names another class or is not a reply at all.
    """
    try:
        reply = _ReplyUnpickler(io.BytesIO(data)).load()
    except UnexpectedReply:
        raise
    except Exception as error:  # a truncated or malformed pickle: one line, not a traceback
        raise UnexpectedReply(
            f"the reply is not a readable message ({type(error).__name__}: {error})"
        ) from None
    if not isinstance(reply, Reply.__args__):
        raise UnexpectedReply(f"the reply is a {type(reply).__name__}, not a reply of the protocol")
    return reply
