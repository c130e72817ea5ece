"""Decode a dataset once per run and share the pixels with every worker through memory-mapped files.

Every submission of a run reads the same LR images and is scored against the same HR images and HR
Y planes. The coordinator decodes each image once (on a few threads, before any model runs, so a
corrupt file is one error before anything is measured) and writes LR, HR and Y as ``.npy`` files;
each worker maps the LR files read-only, so the operating system keeps one copy in its page cache
however many workers read them. Workers are given :meth:`SharedSplit.inputs_only`, which names no
HR file: the ground truth is read by the scorer alone (:mod:`harness.runner.scorer`). The folder is
named after the dataset's content hash and reused by later runs on the same data. It is decoded into a temporary folder that is renamed into place once whole,
so a bad image (an error before anything is measured) or a killed run leaves nothing behind, and
two runs decoding the same data at once both end with the same complete folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from harness.atomic import atomic_path, write_json_atomic
from harness.metrics import rgb_to_y

# Part of the folder name: a change of how pixels are decoded or stored never reuses old files.
DECODED_FORMAT = f"v1-pillow{PIL.__version__}"


@dataclass(frozen=True)
class SharedImage:
    """One image's files: LR always; HR and its Y plane when the split has ground truth."""

    name: str
    lr: Path
    hr: Path | None
    hr_y: Path | None


@dataclass(frozen=True)
class SharedSplit:
    """The decoded images of one dataset, in the dataset's order, readable from any process."""

    folder: Path
    images: tuple[SharedImage, ...]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def has_hr(self) -> bool:
        return all(image.hr is not None for image in self.images)

    def inputs_only(self) -> SharedSplit:
        """The same LR images without HR and Y: what a worker is given, so the submission's process
        holds neither the ground truth nor the path of a file that has it."""
        return SharedSplit(self.folder, tuple(replace(image, hr=None, hr_y=None) for image in self.images))

    def lr(self, index: int) -> np.ndarray:
        return _map(self.images[index].lr)

    def lr_sizes(self) -> list[tuple[int, int]]:
        """Each LR image's (height, width), in order (read from the files' headers)."""
        return [
            (int(shape[0]), int(shape[1])) for shape in (self.lr(index).shape for index in range(len(self)))
        ]

    def hr(self, index: int) -> np.ndarray | None:
        path = self.images[index].hr
        return None if path is None else _map(path)

    def hr_y(self, index: int) -> np.ndarray | None:
        path = self.images[index].hr_y
        return None if path is None else _map(path)


def _map(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, np.ascontiguousarray(array))


def _read_index(folder: Path) -> SharedSplit | None:
    try:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        images = tuple(
            SharedImage(
                name=entry["name"],
                lr=folder / entry["lr"],
                hr=folder / entry["hr"] if entry["hr"] else None,
                hr_y=folder / entry["hr_y"] if entry["hr_y"] else None,
            )
            for entry in index["images"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    every_file = [path for image in images for path in (image.lr, image.hr, image.hr_y) if path is not None]
    return SharedSplit(folder, images) if all(path.is_file() for path in every_file) else None


def share_dataset(
    samples: Iterable[tuple[str, np.ndarray, np.ndarray | None]], content_sha256: str, root: Path
) -> SharedSplit:
    """The decoded images of a dataset under ``root``, decoding them only when not there yet.

    ``samples`` yields ``(name, lr, hr_or_None)`` uint8 arrays in order (a ``Dataset``); it is only
    iterated when the folder for ``content_sha256`` is missing or incomplete.
    """
    folder = root / f"{content_sha256[:32]}-{DECODED_FORMAT}"
    existing = _read_index(folder)
    if existing is not None:
        return existing
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        _decode_into(scratch, samples, content_sha256)
        try:
            scratch.rename(folder)
        except OSError:  # another run finished the same folder first (or a broken one is in the way)
            if _read_index(folder) is None:
                shutil.rmtree(folder, ignore_errors=True)
                scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    shared = _read_index(folder)
    assert shared is not None
    return shared


def _decode_into(
    folder: Path, samples: Iterable[tuple[str, np.ndarray, np.ndarray | None]], content_sha256: str
) -> None:
    """Write every sample's arrays into ``folder``, then its ``index.json``."""
    entries: list[dict[str, Any]] = []
    for index, (name, lr, hr) in enumerate(samples):
        stem = f"{index:05d}"
        image = SharedImage(
            name=name,
            lr=folder / f"{stem}_lr.npy",
            hr=folder / f"{stem}_hr.npy" if hr is not None else None,
            hr_y=folder / f"{stem}_hr_y.npy" if hr is not None else None,
        )
        _save(image.lr, lr)
        if hr is not None:
            _save(image.hr, hr)  # type: ignore[arg-type]
            _save(image.hr_y, rgb_to_y(hr))  # type: ignore[arg-type]
        entries.append(
            {
                "name": name,
                "lr": image.lr.name,
                "hr": image.hr.name if image.hr else None,
                "hr_y": image.hr_y.name if image.hr_y else None,
            }
        )
    write_json_atomic(folder / "index.json", {"content_sha256": content_sha256, "images": entries})


def copy_to_shared_memory(split: SharedSplit, root: Path = Path("/dev/shm")) -> SharedSplit:
    """A copy of ``split``'s LR arrays, and nothing else, in a fresh folder under ``root`` (shared
    memory), for sandboxed workers: they map the LR images from there and never see the
    decoded-image cache, its path, or any HR file (the folder is all their sandbox holds of the data).

    The caller removes the folder (``shutil.rmtree(copy.folder)``) when the run is over. A run that
    was killed cannot: its folder names its process, and the next copy removes the folders of
    processes that are gone (shared memory is the machine's RAM).
    """
    remove_orphaned_copies(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{_COPY_PREFIX}{os.getpid()}-", dir=root))
    images = []
    for image in split.images:
        target = folder / image.lr.name
        shutil.copyfile(image.lr, target)
        images.append(SharedImage(image.name, lr=target, hr=None, hr_y=None))
    return SharedSplit(folder, tuple(images))


_COPY_PREFIX = "esr-images-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_orphaned_copies(root: Path = Path("/dev/shm")) -> list[Path]:
    """Remove the image copies under ``root`` whose run's process no longer exists; return them."""
    removed = []
    for folder in root.glob(f"{_COPY_PREFIX}*-*"):
        pid = folder.name.removeprefix(_COPY_PREFIX).partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
