"""Reading and writing images with the pixels the official NTIRE 2022 script sees.

The official script reads with OpenCV (``IMREAD_UNCHANGED``, then BGR to RGB): 8-bit RGB,
grayscale repeated on three channels, alpha dropped, palettes expanded, no EXIF rotation.
This module gives the same uint8 H x W x 3 arrays with Pillow, and refuses what would be
silently changed: images with more than 8 bits per sample (Pillow would truncate 16-bit RGB
PNGs to 8 bits without a word).
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from harness.atomic import atomic_path
from harness.errors import HarnessError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
)

# Pillow modes that hold more than 8 bits per sample.
_DEEP_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;32", "I;32B"})


def is_image_file(path: Path) -> bool:
    """True for a file whose extension is one of IMAGE_EXTENSIONS (any case); others are ignored.

    A symbolic link named like an image that leads nowhere (dangling, or a loop) is an error, not a
    file to skip: the dataset would silently lose an image.
    """
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return False
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python 3.11 reports a loop so
            raise HarnessError(f"{path}: symbolic link loop") from None
        except OSError as error:
            reason = "symbolic link loop" if error.errno == errno.ELOOP else "symbolic link to nothing"
            raise HarnessError(f"{path}: {reason} ({os.readlink(path)})") from None
    return path.is_file()


def _open(path: Path, data: bytes | None) -> Image.Image:
    """Open (header only) and refuse deep images; errors name the file."""
    try:
        image = Image.open(io.BytesIO(data) if data is not None else path)
    except FileNotFoundError:
        raise HarnessError(f"{path}: file not found") from None
    except Exception as error:  # Pillow raises several types for unreadable files.
        raise HarnessError(f"{path}: not a readable image ({error})") from None
    rawmodes = [str(tile[3]) for tile in getattr(image, "tile", ())]
    if image.mode in _DEEP_MODES or any(";16" in raw or ";32" in raw for raw in rawmodes):
        detail = rawmodes[0] if rawmodes else image.mode
        image.close()
        raise HarnessError(
            f"{path}: 16-bit (or deeper) image ({detail}) is not supported; convert it to 8-bit"
        )
    return image


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header, without decoding the pixels."""
    with _open(path, None) as image:
        return image.size


def read_image(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """Decode ``path`` (or its already-read bytes ``data``) to a uint8 H x W x 3 RGB array.

    Grayscale becomes three equal channels, alpha is dropped, palettes are expanded. A missing,
    truncated, corrupt or 16-bit file raises HarnessError naming it.
    """
    path = Path(path)
    with _open(path, data) as image:
        try:
            image.load()
        except Exception as error:
            raise HarnessError(f"{path}: corrupt or truncated image ({error})") from None
        if image.mode in ("1", "L", "LA", "La"):
            gray = np.asarray(image.getchannel(0).convert("L"))
            return np.repeat(gray[:, :, None], 3, axis=2)
        if image.mode != "RGB":
            # RGBA/RGBa/RGBX drop their 4th band; P/PA expand the palette; CMYK and YCbCr convert.
            image = (
                image.convert("RGBA").convert("RGB") if image.mode in ("P", "PA") else image.convert("RGB")
            )
        return np.array(image, dtype=np.uint8)


def write_png(path: str | Path, img: np.ndarray) -> None:
    """Write a uint8 H x W x 3 (or H x W) array as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(img)).save(tmp, format="PNG")
