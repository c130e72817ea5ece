"""A test dataset: which images, in which order, and their pixels decoded ahead of use."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.data.images import image_size, read_image, write_png
from harness.data.layouts import DIV2K_SPLITS, ImagePair, detect
from harness.data.prefetch import prefetch
from harness.data.samples import sample_items
from harness.errors import HarnessError
from harness.imresize import check_scale, imresize, modcrop

DEFAULT_LR_CACHE = Path.home() / ".cache" / "esr-harness" / "lr"

# Names how LR is made from HR; part of cache keys and content hashes so that a change of the
# resize algorithm can never reuse old LR images.
LR_ALGORITHM = "matlab-bicubic-v1"

Sample = tuple[str, np.ndarray, np.ndarray | None]


@dataclass(frozen=True)
class Dataset:
    """Image pairs in a fixed order; iterating yields ``(name, lr, hr_or_None)`` uint8 RGB arrays.

    HR is mod-cropped to the scale. Pairs without an LR file get it made from the HR with the
    MATLAB-exact resize (cached under ``lr_cache_dir`` when set). Images are decoded ahead by
    ``workers`` threads, at most ``depth`` at a time.
    """

    name: str
    path: str | None
    layout: str
    split: str | None
    scale: int
    items: tuple[ImagePair, ...]
    lr_cache_dir: Path | None = None
    expected_count: int | None = None  # the split's full size, when the layout states it
    hash_pixels: bool = False  # hash decoded pixels, not file bytes (JPEG decoding may vary)
    workers: int = 2
    depth: int = 4
    _hash: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def has_hr(self) -> bool:
        return all(item.hr_path is not None for item in self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def names(self) -> tuple[str, ...]:
        """The image names, in order (without decoding anything)."""
        return tuple(item.name for item in self.items)

    def __iter__(self) -> Iterator[Sample]:
        return prefetch(self.items, self.load, workers=self.workers, depth=self.depth)

    def load(self, item: ImagePair) -> Sample:
        """Decode one pair: LR and mod-cropped HR, checked to match in size."""
        hr_bytes = _read_bytes(item.hr_path) if item.hr_path is not None else None
        hr = modcrop(read_image(item.hr_path, hr_bytes), self.scale) if item.hr_path is not None else None
        if item.lr_path is not None:
            lr = read_image(item.lr_path)
            if hr is not None:
                _check_sizes(item, lr, hr, self.scale)
            return item.name, lr, hr
        if hr is None or hr_bytes is None:
            raise HarnessError(f"{self.name}/{item.name}: neither an LR nor an HR image")
        return item.name, self._make_lr(item, hr, hr_bytes), hr

    def _make_lr(self, item: ImagePair, hr: np.ndarray, hr_bytes: bytes) -> np.ndarray:
        if self.lr_cache_dir is None:
            return imresize(hr, 1 / self.scale)
        key = self._file_digest(item.hr_path, hr_bytes).hex()
        cached = self.lr_cache_dir / f"{key}_x{self.scale}_{LR_ALGORITHM}.png"
        expected = (hr.shape[0] // self.scale, hr.shape[1] // self.scale, 3)
        if cached.is_file():
            try:
                lr = read_image(cached)
                if lr.shape == expected:
                    return lr
            except HarnessError:
                pass  # an unreadable cache entry is rebuilt below
        lr = imresize(hr, 1 / self.scale)
        try:
            write_png(cached, lr)
        except OSError as error:
            raise HarnessError(f"{cached}: cannot write the LR cache for {item.hr_path} ({error})") from None
        return lr

    def content_hash(self) -> str:
        """sha256 identifying the images (file bytes, or decoded pixels), their order and the scale."""
        if "sha256" not in self._hash:
            digest = hashlib.sha256(f"scale={self.scale};lr={LR_ALGORITHM}\n".encode())
            for item in self.items:
                digest.update(f"{item.name}\n".encode())
                for path in (item.lr_path, item.hr_path):
                    digest.update(self._item_digest(path))
            self._hash["sha256"] = digest.hexdigest()
        return self._hash["sha256"]

    def _item_digest(self, path: Path | None) -> bytes:
        if path is None:
            return b"-" * 32
        if self.hash_pixels:
            pixels = read_image(path)
            return hashlib.sha256(f"{pixels.shape}".encode() + pixels.tobytes()).digest()
        return self._file_digest(path)

    def _file_digest(self, path: Path, data: bytes | None = None) -> bytes:
        """sha256 of a file's bytes, once per dataset: the content hash and the LR cache key share it."""
        key = f"file:{path}"
        if key not in self._hash:
            self._hash[key] = hashlib.sha256(_read_bytes(path) if data is None else data).hexdigest()
        return bytes.fromhex(self._hash[key])

    @property
    def expected_images(self) -> int:
        """How many images the split should have: 100 for a DIV2K split, 200 for a DIV2K_LSDIR one,
        else what the folder holds.

        With ``--allow-partial`` a split may hold fewer; the results then say so, and the
        completeness constraint keeps such a run out of every ranking.
        """
        if self.expected_count is not None:
            return self.expected_count
        if self.layout.startswith("div2k") and self.split in DIV2K_SPLITS:
            return len(DIV2K_SPLITS[self.split][1])
        return len(self.items)

    def describe(self) -> dict[str, object]:
        """The dataset's identity as recorded in results."""
        return {
            "name": self.name,
            "path": self.path,
            "split": self.split,
            "num_images": len(self.items),
            "expected_images": self.expected_images,
            "scale": self.scale,
            "layout": self.layout,
            "content_sha256": self.content_hash(),
        }


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise HarnessError(f"{path}: cannot read ({error.strerror or error})") from None


def _size_mismatch(
    item: ImagePair, lr_wh: tuple[int, int], hr_wh: tuple[int, int], scale: int
) -> HarnessError:
    """The one-line error for LR x scale != mod-cropped HR, sizes as width x height."""
    return HarnessError(
        f"{item.lr_path}: LR is {lr_wh[0]}x{lr_wh[1]}, x{scale} = {lr_wh[0] * scale}x{lr_wh[1] * scale}, "
        f"but HR {item.hr_path} is {hr_wh[0]}x{hr_wh[1]} after cropping to a multiple of {scale}"
    )


def _check_sizes(item: ImagePair, lr: np.ndarray, hr: np.ndarray, scale: int) -> None:
    if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
        raise _size_mismatch(item, (lr.shape[1], lr.shape[0]), (hr.shape[1], hr.shape[0]), scale)


def _check_headers(items: tuple[ImagePair, ...], scale: int, min_hr_side: int) -> None:
    """Fail before a long run: every file opens, is 8-bit, LR x scale fits the HR, and the HR (or
    LR x scale) keeps at least ``min_hr_side`` pixels per side once cropped to the scale."""
    for item in items:
        lr_wh = image_size(item.lr_path) if item.lr_path is not None else None
        hr_wh = image_size(item.hr_path) if item.hr_path is not None else None
        cropped = (hr_wh[0] - hr_wh[0] % scale, hr_wh[1] - hr_wh[1] % scale) if hr_wh else None
        if lr_wh and cropped and (lr_wh[0] * scale, lr_wh[1] * scale) != cropped:
            raise _size_mismatch(item, lr_wh, cropped, scale)
        size = cropped or (lr_wh[0] * scale, lr_wh[1] * scale)  # type: ignore[index]
        if min(size) < min_hr_side:
            path = item.hr_path or item.lr_path
            raise HarnessError(
                f"{path}: image too small: {size[0]}x{size[1]} at HR size, the metrics need at least "
                f"{min_hr_side} pixels per side"
            )


def open_dataset(
    spec: str = "samples",
    *,
    split: str | None = None,
    scale: int = 4,
    allow_partial: bool = False,
    cache_dir: Path | None = None,
    min_hr_side: int = 1,
) -> Dataset:
    """Open ``spec`` ("samples" or a dataset folder of any known layout) for x``scale`` SR.

    ``split`` chooses DIV2K val (default, 0801-0900) or test (0901-1000), or DIV2K_LSDIR val, test
    or (NTIRE 2023) hybrid_test; other datasets have no split (None or "val" accepted). A DIV2K or
    DIV2K_LSDIR split with fewer images than it has is refused unless ``allow_partial``.
    ``cache_dir`` holds LR images made from HR-only folders. An image whose HR (or LR x scale) has
    fewer than ``min_hr_side`` pixels on a side is refused (the metrics' border and window need that
    many).
    """
    check_scale(scale)
    if spec == "samples":
        if split not in (None, "val"):
            raise HarnessError(f"split {split!r} applies to DIV2K only, not to the built-in samples")
        return Dataset("samples", None, "samples", None, scale, sample_items(), hash_pixels=True)
    root = Path(spec).expanduser()
    if not root.exists():
        raise HarnessError(f"{spec}: no such dataset folder (give a dataset folder or 'samples')")
    if not root.is_dir():
        raise HarnessError(f"{spec}: is a file; give the dataset folder")
    root = root.resolve()
    found = detect(root, split=split, scale=scale, allow_partial=allow_partial)
    _check_headers(found.items, scale, min_hr_side)
    generated = any(item.lr_path is None for item in found.items)
    lr_cache = (cache_dir or DEFAULT_LR_CACHE) if generated else None
    return Dataset(
        found.name,
        str(root),
        found.layout,
        found.split,
        scale,
        found.items,
        lr_cache_dir=lr_cache,
        expected_count=found.expected_images,
    )


def reopen_dataset(description: dict[str, object], *, spec: str | None = None) -> Dataset:
    """The dataset a run document describes, opened again and checked to hold the same images.

    ``spec`` replaces the recorded folder (the data moved, or the run came from another machine).
    The content hash must equal the recorded one, so that no SR image is ever paired with, or named
    after, an image the run did not measure.
    """
    name = description.get("name")
    recorded_path = "samples" if description.get("layout") == "samples" else description.get("path")
    spec = spec or (recorded_path if isinstance(recorded_path, str) else None)
    if spec is None:
        raise HarnessError(f"dataset {name}: the run does not record where its images are; give --data PATH")
    split = description.get("split")
    scale = description.get("scale")
    try:
        dataset = open_dataset(
            spec,
            split=split if isinstance(split, str) else None,
            scale=scale if isinstance(scale, int) else 4,
            allow_partial=True,
        )
    except HarnessError as error:
        raise HarnessError(
            f"{error}; it held the run's dataset {name}: give --data PATH where it is now"
        ) from None
    recorded = description.get("content_sha256")
    if dataset.content_hash() != recorded:
        raise HarnessError(
            f"{spec}: not the images the run measured (content sha256 {dataset.content_hash()[:16]}…, the run "
            f"recorded {str(recorded)[:16]}…); give --data with the folder of dataset {name}"
        )
    return dataset
