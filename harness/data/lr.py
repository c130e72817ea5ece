"""Make a folder of LR images from a folder of HR images, named like DIV2K (0801x4.png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from harness.data.images import read_image, write_png
from harness.data.layouts import image_files
from harness.data.prefetch import prefetch
from harness.errors import HarnessError
from harness.imresize import check_scale, imresize, modcrop


def _downscale(path: Path, scale: int) -> tuple[Path, np.ndarray]:
    return path, imresize(modcrop(read_image(path), scale), 1 / scale)


def make_lr_folder(hr_dir: Path, out_dir: Path, *, scale: int, progress: bool = True) -> list[Path]:
    """Write ``<stem>x<scale>.png`` in ``out_dir`` for every image in ``hr_dir``; returns the files.

    HR is mod-cropped to the scale and resized with the MATLAB-exact bicubic. Each file is
    written atomically, so an interrupted run leaves only complete images.
    """
    check_scale(scale)
    if not hr_dir.is_dir():
        raise HarnessError(f"{hr_dir}: no such folder")
    sources = image_files(hr_dir)
    if not sources:
        raise HarnessError(f"{hr_dir}: no images in this folder")
    written = []
    results = prefetch(sources, lambda path: _downscale(path, scale))
    for path, lr in tqdm(results, total=len(sources), desc=f"LR x{scale}", unit="img", disable=not progress):
        target = out_dir / f"{path.stem}x{scale}.png"
        write_png(target, lr)
        written.append(target)
    return written
