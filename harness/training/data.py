"""Training patches: decoded images kept ready, random aligned LR/HR crops, a resumable sampler.

Every random choice (which image, where to crop, which flip) is a pure function of the training
seed and a global sample number, never of worker scheduling or of an RNG that lives in a worker.
That is what makes a resumed run bit-for-bit identical to an uninterrupted one, and what lets
several DDP processes draw disjoint samples without talking to each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from harness.atomic import atomic_path
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.data import Dataset


@dataclass(frozen=True)
class TrainImage:
    """One training pair: LR and its HR (mod-cropped to scale times the LR size), uint8 HxWx3."""

    name: str
    lr: np.ndarray
    hr: np.ndarray


DIV2K_TRAIN_NUMBERS = range(1, 801)


def training_dataset(spec: str, *, scale: int, cache_dir: Path) -> tuple[str, Dataset]:
    """The training pairs of ``spec`` and a label for logs: a DIV2K root (train split 0001-0800),
    or any dataset the harness reads.

    A DIV2K root is recognised by ``DIV2K_train_HR/``; its LR comes from
    ``DIV2K_train_LR_bicubic/X<scale>/`` when that folder exists, otherwise it is made from the HR
    (MATLAB-exact resize, cached in ``cache_dir``). Anything else (``samples``, an HR-only folder, a
    paired layout) is opened with :func:`harness.data.open_dataset`, whose errors name the folder.
    """
    from harness.data import Dataset, ImagePair, open_dataset

    root = Path(spec).expanduser()
    hr_dir = root / "DIV2K_train_HR"
    if spec != "samples" and hr_dir.is_dir():
        lr_dir = root / "DIV2K_train_LR_bicubic" / f"X{scale}"
        items = []
        for n in DIV2K_TRAIN_NUMBERS:
            hr = hr_dir / f"{n:04d}.png"
            if not hr.is_file():
                continue
            lr = lr_dir / f"{n:04d}x{scale}.png"
            if lr_dir.is_dir() and not lr.is_file():
                raise HarnessError(f"{lr}: LR image missing for {hr}")
            items.append(ImagePair(f"{n:04d}", lr if lr_dir.is_dir() else None, hr))
        if not items:
            raise HarnessError(f"{hr_dir}: no DIV2K training images 0001.png-0800.png in it")
        dataset = Dataset(
            "DIV2K", str(root), "div2k-train", "train", scale, tuple(items), lr_cache_dir=cache_dir
        )
        return f"DIV2K train ({root})", dataset
    dataset = open_dataset(spec, scale=scale, cache_dir=cache_dir)
    return dataset.name if dataset.path is None else f"{dataset.name} ({dataset.path})", dataset


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, array)


def load_training_images(dataset: Dataset, *, cache: str, cache_dir: Path) -> list[TrainImage]:
    """Decode every pair once, as the evaluation decodes it (:meth:`harness.data.Dataset.load`).

    With ``cache="npy"`` decoded arrays are also written as .npy files, keyed by the sha256 of the
    image files (a changed file is never served stale), and memory-mapped: DataLoader workers then
    share one copy through the page cache and later runs skip PNG decoding. With
    ``cache="memory"`` arrays are held in RAM (LR made from HR is still cached by the dataset).
    """
    from harness.submissions import sha256_file

    images = []
    for item in dataset.items:
        if item.hr_path is None:
            raise HarnessError(f"training image {item.name}: the dataset has no HR image for it")
        if cache == "memory":
            _, lr, hr = dataset.load(item)
            images.append(TrainImage(item.name, lr, hr))
            continue
        key = sha256_file(Path(item.hr_path))[:24]
        if item.lr_path is not None:
            key += "-" + sha256_file(Path(item.lr_path))[:24]
        hr_npy = cache_dir / f"{key}.hr.npy"
        lr_npy = cache_dir / f"{key}.lr_x{dataset.scale}.npy"
        if not (hr_npy.exists() and lr_npy.exists()):
            _, lr, hr = dataset.load(item)
            _save_npy(hr_npy, hr)
            _save_npy(lr_npy, lr)
        images.append(TrainImage(item.name, np.load(lr_npy, mmap_mode="r"), np.load(hr_npy, mmap_mode="r")))
    if not images:
        raise HarnessError("the training dataset has no images")
    return images


def check_patch_fits(images: Sequence[TrainImage], patch_size: int, *, source: str) -> None:
    """Fail before training when an LR image is smaller than the configured patch."""
    for image in images:
        height, width = image.lr.shape[:2]
        if height < patch_size or width < patch_size:
            raise HarnessError(
                f"{source}: data.patch_size {patch_size} is larger than training image {image.name} "
                f"(LR {width}x{height})"
            )


class PatchDataset(Dataset):
    """Maps a global sample number to an aligned (LR, HR) patch pair as float tensors in [0, 1].

    Sample ``k`` belongs to epoch ``k // N`` (N images); each epoch visits every image once in a
    seeded random order, so the data seen is the same for any number of processes or workers.
    """

    def __init__(
        self, images: Sequence[TrainImage], *, patch_size: int, scale: int, augment: bool, seed: int
    ):
        self.images = list(images)
        self.patch_size = patch_size
        self.scale = scale
        self.augment = augment
        self.seed = seed
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def _image_index(self, sample: int) -> int:
        epoch, position = divmod(sample, len(self.images))
        if self._order is None or self._order[0] != epoch:
            order = np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.images))
            self._order = (epoch, order)
        return int(self._order[1][position])

    def __getitem__(self, sample: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[self._image_index(sample)]
        rng = np.random.default_rng([self.seed, 1, sample])
        p, s = self.patch_size, self.scale
        height, width = image.lr.shape[:2]
        top = int(rng.integers(0, height - p + 1))
        left = int(rng.integers(0, width - p + 1))
        lr = np.asarray(image.lr[top : top + p, left : left + p])
        hr = np.asarray(image.hr[top * s : (top + p) * s, left * s : (left + p) * s])
        if self.augment:
            flip_h, flip_v, transpose = (bool(b) for b in rng.integers(0, 2, size=3))
            lr, hr = _augment(lr, flip_h, flip_v, transpose), _augment(hr, flip_h, flip_v, transpose)
        return _to_chw(lr), _to_chw(hr)


def _augment(img: np.ndarray, flip_h: bool, flip_v: bool, transpose: bool) -> np.ndarray:
    """The eight flips and 90-degree rotations of a square patch, as three independent choices."""
    if flip_h:
        img = img[:, ::-1]
    if flip_v:
        img = img[::-1]
    if transpose:
        img = img.transpose(1, 0, 2)
    return img


def _to_chw(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 3xHxW in [0, 1], the same division as the evaluation's input."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(255.0)


class IterationSampler(Sampler[int]):
    """An endless distributed sampler over global sample numbers, able to start at any iteration.

    At iteration ``i`` with ``world_size`` processes of ``batch_size`` samples each, process
    ``rank`` gets samples ``(i * world_size + rank) * batch_size + j``. Unlike
    ``torch.utils.data.DistributedSampler`` it needs no epoch bookkeeping and can resume mid-epoch
    by starting from ``start_iteration``.
    """

    def __init__(self, *, batch_size: int, rank: int = 0, world_size: int = 1, start_iteration: int = 0):
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.start_iteration = start_iteration

    def __iter__(self) -> Iterator[int]:
        iteration = self.start_iteration
        while True:
            first = (iteration * self.world_size + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)
            iteration += 1
