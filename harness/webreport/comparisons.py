"""Visual comparisons: for chosen images, a row of crops (HR, bicubic, every submission) with their fidelity.

As in the seed's figure: the same rectangle cut from the HR image and from each output, enlarged
with nearest-neighbour so that pixels stay visible, each labelled with the PSNR and SSIM of that
crop. Bicubic is the bundled ``bicubic`` submission (MATLAB-exact), taken from the run when the run
has it and computed for the report otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from harness.data import Dataset
from harness.errors import HarnessError
from harness.webreport.crops import Crop, crop_fidelity, cut, enlarge, most_different_window
from harness.webreport.outputs import OutputSource

__all__ = ["BICUBIC", "ComparisonRow", "Panel", "Shown", "build_comparisons", "choose_images", "png_bytes"]

BICUBIC = "bicubic"
_OVERVIEW_SIDE = 180  # pixels: the longer side of the whole-image thumbnail beside each row


@dataclass(frozen=True)
class Shown:
    """One column of the comparison rows: a submission, the run folder holding its saved images
    (None: none), and the PSNR its run recorded per image (to check regenerated images against)."""

    name: str
    run_dir: Path | None
    recorded_psnr: Mapping[str, float]


@dataclass(frozen=True)
class Panel:
    """One enlarged crop with its caption figures; ``png`` is None when the output could not be had."""

    title: str
    png: bytes | None
    psnr: float | None = None
    ssim: float | None = None


@dataclass(frozen=True)
class ComparisonRow:
    """The crops of one image, with a thumbnail of the whole image that outlines the crop."""

    image: str
    crop: Crop
    image_size: tuple[int, int]
    overview: bytes
    panels: tuple[Panel, ...]


def png_bytes(pixels: np.ndarray) -> bytes:
    """A uint8 image as PNG file bytes (for embedding in the page)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _overview(hr: np.ndarray, crop: Crop) -> bytes:
    height, width = hr.shape[:2]
    factor = min(1.0, _OVERVIEW_SIDE / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    thumbnail = Image.fromarray(hr).resize(size, Image.Resampling.LANCZOS)
    box = [
        crop.x * factor,
        crop.y * factor,
        (crop.x + crop.width) * factor - 1,
        (crop.y + crop.height) * factor - 1,
    ]
    ImageDraw.Draw(thumbnail).rectangle(box, outline=(255, 0, 0), width=2)
    return png_bytes(np.asarray(thumbnail))


def choose_images(
    names: Sequence[str], recorded: Sequence[Mapping[str, float]], *, requested: Sequence[str], limit: int
) -> list[str]:
    """Which images get a comparison row, in dataset order.

    ``requested`` images when given (each must exist); else every image when there are at most
    ``limit``, else the ``limit`` images whose PSNR varies most across the submissions.
    """
    if requested:
        unknown = [name for name in requested if name not in names]
        if unknown:
            raise HarnessError(
                f"--images {unknown[0]}: no such image in the run (it has {', '.join(names[:8])}…)"
            )
        return [name for name in names if name in requested]
    if len(names) <= limit:
        return list(names)

    def spread(name: str) -> float:
        values = [psnrs[name] for psnrs in recorded if name in psnrs]
        return max(values) - min(values) if values else 0.0

    chosen = set(sorted(names, key=lambda name: -spread(name))[:limit])
    return [name for name in names if name in chosen]


def build_comparisons(
    dataset: Dataset,
    shown: Sequence[Shown],
    images: Sequence[str],
    *,
    hand_crops: Mapping[str, Crop],
    crop_size: int,
    zoom: int,
    source: OutputSource,
    channel: str,
) -> list[ComparisonRow]:
    """One row per image in ``images``: HR, then ``shown`` (bicubic first), cut where they differ most."""
    items = {item.name: item for item in dataset.items}
    unknown = [name for name in hand_crops if name not in items]
    if unknown:
        raise HarnessError(
            f"--crop {hand_crops[unknown[0]].describe()}: no image {unknown[0]!r} in {dataset.name}"
        )
    rows = []
    for image in images:
        name, lr, hr = dataset.load(items[image])
        if hr is None:
            raise HarnessError(f"{dataset.name}/{image}: no HR image, so no visual comparison")
        outputs = [
            (
                column.name,
                source.output(
                    column.name,
                    name,
                    lr,
                    hr,
                    run_dir=column.run_dir,
                    recorded_psnr=column.recorded_psnr.get(name),
                ),
            )
            for column in shown
        ]
        available = [sr for _, sr in outputs if sr is not None]
        crop = hand_crops.get(image)
        if crop is None:
            x, y, width, height = most_different_window(hr, available or [hr], crop_size)
            crop = Crop(image, x, y, width, height)
        crop.check_inside(hr.shape[0], hr.shape[1])
        hr_crop = cut(hr, crop)
        panels = [Panel("HR", png_bytes(enlarge(hr_crop, zoom)))]
        for title, sr in outputs:
            if sr is None:
                panels.append(Panel(title, None))
                continue
            sr_crop = cut(sr, crop)
            psnr, ssim = crop_fidelity(sr_crop, hr_crop, channel=channel)
            panels.append(Panel(title, png_bytes(enlarge(sr_crop, zoom)), psnr, ssim))
        rows.append(
            ComparisonRow(image, crop, (hr.shape[1], hr.shape[0]), _overview(hr, crop), tuple(panels))
        )
    return rows
