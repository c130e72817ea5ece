"""Every timed and warm-up call gets a freshly dithered input; the accuracy pass gets the exact LR.

The worker is driven in this process with a model that keeps every input it is given; the inputs
are turned back into uint8 levels here (x * 255, rounded) and compared with the LR image directly.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from harness.runner import messages as msg
from harness.runner.output_slot import OutputSlot, SlotWriter, slot_values
from harness.runner.worker import SubmissionWorker
from harness.timing import PerfCounterTimer


class InputKeeper(nn.Module):
    """Nearest-neighbour x4 that keeps a copy of every input it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")


class _Split:
    """LR images, and for the accuracy pass HR images made by pixel repetition."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self.pixels = images
        self.images = [SimpleNamespace(name=f"img{index}") for index in range(len(images))]

    def __len__(self) -> int:
        return len(self.pixels)

    def lr(self, index: int) -> np.ndarray:
        return self.pixels[index]

    def hr(self, index: int) -> np.ndarray:
        return np.repeat(np.repeat(self.pixels[index], 4, axis=0), 4, axis=1)

    def hr_y(self, index: int) -> None:
        return None


def _worker(model: nn.Module, images: list[np.ndarray]) -> SubmissionWorker:
    slot = OutputSlot(slot_values([image.shape[:2] for image in images], 4))
    worker = SubmissionWorker(SlotWriter(os.dup(slot.fd)))
    slot.close()  # the worker's mapping keeps the memory it writes its timed outputs to
    worker.loaded = SimpleNamespace(model=model)  # type: ignore[assignment]
    worker.cell_forward = model
    submission = SimpleNamespace(scale=4, tile=None, tile_overlap=32, input_range=1.0)
    worker.request = SimpleNamespace(submission=submission, split=_Split(images))  # type: ignore[assignment]
    worker.timer = PerfCounterTimer()
    return worker


def _levels(x: torch.Tensor) -> np.ndarray:
    """A model input (1x3xHxW, range 1) back as HxWx3 integer levels."""
    return np.rint(x[0].permute(1, 2, 0).double().numpy() * 255.0).astype(np.int64)


def _image() -> np.ndarray:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    image[0, :, :] = 0  # the clipped ends: a level may not leave [0, 255]
    image[1, :, :] = 255
    return image


def test_timed_calls_on_one_image_never_get_identical_inputs() -> None:
    image = _image()
    model = InputKeeper()
    worker = _worker(model, [image])
    worker.prepare_timing()
    worker.time_image(msg.TimeImage(0, repeats=3, dither_seed=11))
    worker.time_image(msg.TimeImage(0, repeats=1, dither_seed=12))
    inputs = [_levels(x) for x in model.seen]
    assert len(inputs) == 4
    for first in range(len(inputs)):
        for second in range(first + 1, len(inputs)):
            assert not np.array_equal(inputs[first], inputs[second])
    exact = image.astype(np.int64)
    for levels in inputs:
        assert levels.min() >= 0 and levels.max() <= 255
        assert np.abs(levels - exact).max() == 1  # moved, and by one level at most
        assert not np.array_equal(levels, exact)


def test_warm_up_passes_are_dithered_too() -> None:
    image = _image()
    model = InputKeeper()
    worker = _worker(model, [image])
    worker.warm_up(msg.WarmUp(seconds=0.0, min_passes=3, max_passes=3, dither_seed=5))
    inputs = [_levels(x) for x in model.seen]
    assert len(inputs) == 3
    assert not np.array_equal(inputs[0], inputs[1]) and not np.array_equal(inputs[1], inputs[2])
    assert all(np.abs(levels - image.astype(np.int64)).max() <= 1 for levels in inputs)


def test_the_same_seed_makes_the_same_input_again() -> None:
    """What lets the coordinator ask for a timed call's input again (an audit of its output)."""
    image = _image()
    model = InputKeeper()
    worker = _worker(model, [image])
    worker.time_image(msg.TimeImage(0, repeats=1, dither_seed=99))
    worker.time_image(msg.TimeImage(0, repeats=1, dither_seed=99))
    assert torch.equal(model.seen[0], model.seen[1])


def test_the_accuracy_inputs_are_the_exact_lr_images() -> None:
    image = _image()
    model = InputKeeper()
    worker = _worker(model, [image])
    replies = list(worker.accuracy(msg.Accuracy(indices=(0,), time_first_call=True)))
    assert isinstance(replies[-1], msg.AccuracyDone)
    (seen,) = model.seen
    expected = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / np.float32(255.0)
    assert torch.equal(seen, expected)
    assert np.array_equal(_levels(seen), image.astype(np.int64))
