"""MATLAB-exact bicubic resizing by the integer factors of the super-resolution benchmarks.

The LR images of DIV2K and of the classic benchmark sets were made with MATLAB's
``imresize(hr, 1/s, 'bicubic')``. Python ports of that function usually agree on only about
90% of the pixels because of three details they leave out, all of which this module follows:

1. MATLAB resizes one dimension at a time and converts the result of *each* pass back to the
   input class. For uint8 the intermediate image is rounded (half away from zero) and
   saturated to 0..255 before the second pass; the ports keep it in floating point.
2. The dimension with the smaller scale goes first; with equal scales the rows (height) go
   first.
3. Weights come from the cubic kernel (a = -0.5), widened by 1/scale when shrinking
   (antialiasing), normalised per output pixel, and out-of-range indices are mirrored with the
   edge pixel repeated (``[1:n, n:-1:1]``).

Why float32 and BLAS give the same bits as MATLAB's float64 loop: for the factors 2 and 4 the
weights are dyadic fractions with at most 12 significant bits, so every product and partial
sum is exact in float32 whatever the order. For the factor 3 the exact weights are multiples
of 1/81 (down) or 1/27 (up), so an exact pass result is never closer than 1/162 to a rounding
tie, far more than the float32 error (below 3e-4). The tests check both against Set5 images
resized by MATLAB and against a float64 per-pixel loop.

Speed: each pass is a band matrix applied with dense matrix products on blocks of output
rows, instead of one small product per output row and channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.errors import HarnessError

FACTORS: tuple[int, ...] = (2, 3, 4)

# Output rows per dense block: small blocks waste few multiplications on the zeros outside
# the band, large blocks keep BLAS efficient; 8 measured fastest for DIV2K-sized images.
_BLOCK_ROWS = 8

# Columns (pass 1) or rows (pass 2) per tile: each matrix product stays below OpenBLAS's
# threading threshold (m*n*k < 2**18). Threaded BLAS on products this small loses time to
# spinning threads (measured 3x slower on a busy 2-core machine), worse when the data
# prefetcher runs several resizes at once.
_TILE = 512

_KERNEL_WIDTH = 4.0  # the bicubic kernel's support, in input pixels at scale 1


@dataclass(frozen=True)
class _Block:
    """One dense piece of a pass's band matrix: out[out_start:out_stop] = matrix @ in[in_start:in_stop]."""

    out_start: int
    out_stop: int
    in_start: int
    in_stop: int
    matrix: np.ndarray  # float32, (out_stop - out_start, in_stop - in_start)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB's imresize."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * (
        (absx > 1) & (absx <= 2)
    )


def _contributions(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's per-output weights and 0-based input indices for one dimension.

    Returns ``(weights, indices)``, both of shape (out_length, taps): output pixel k is
    ``sum(weights[k] * input[indices[k]])``. Indices are already mirrored into range.
    """
    kernel_width = _KERNEL_WIDTH
    antialias = scale < 1
    if antialias:
        kernel_width = kernel_width / scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    # Output pixel centres mapped to input coordinates (MATLAB's 1-based convention).
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if antialias else _cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    used = np.any(weights != 0, axis=0)
    return weights[:, used], indices[:, used]


@lru_cache(maxsize=64)
def _plan(in_length: int, out_length: int, scale: float) -> tuple[_Block, ...]:
    """The band matrix of one pass, cut into dense blocks of ``_BLOCK_ROWS`` output rows."""
    weights, indices = _contributions(in_length, out_length, scale)
    blocks = []
    for start in range(0, out_length, _BLOCK_ROWS):
        stop = min(out_length, start + _BLOCK_ROWS)
        idx = indices[start:stop]
        lo, hi = int(idx.min()), int(idx.max()) + 1
        matrix = np.zeros((stop - start, hi - lo), dtype=np.float64)
        rows = np.repeat(np.arange(stop - start), idx.shape[1])
        # add.at: mirrored indices can name one input pixel twice; their weights add up.
        np.add.at(matrix, (rows, (idx - lo).ravel()), weights[start:stop].ravel())
        blocks.append(_Block(start, stop, lo, hi, matrix.astype(np.float32)))
    return tuple(blocks)


def _round_to_uint8_values(values: np.ndarray) -> np.ndarray:
    """In place: saturate to 0..255 and round half away from zero, as MATLAB's uint8()."""
    np.clip(values, 0, 255, out=values)
    values += 0.5
    np.floor(values, out=values)
    return values


def _factor(scale: float) -> tuple[int, bool]:
    """(s, shrinking) for scale 1/s or s; anything else is refused."""
    for s in FACTORS:
        if math.isclose(scale, s, rel_tol=0, abs_tol=1e-9):
            return s, False
        if math.isclose(scale, 1 / s, rel_tol=0, abs_tol=1e-9):
            return s, True
    allowed = ", ".join(f"1/{s}" for s in FACTORS) + ", " + ", ".join(str(s) for s in FACTORS)
    raise HarnessError(f"imresize: scale {scale!r} is not supported (allowed: {allowed})")


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize a uint8 image (H x W or H x W x C) like MATLAB ``imresize(img, scale, 'bicubic')``.

    ``scale`` is 1/2, 1/3 or 1/4 (shrink, antialiased) or 2, 3, 4 (enlarge). The output size is
    ``ceil(H * scale) x ceil(W * scale)``; the result is uint8 with the input's channels.
    """
    array = np.asarray(img)
    if array.dtype != np.uint8:
        raise HarnessError(f"imresize: expected a uint8 image, got dtype {array.dtype}")
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 1:
        raise HarnessError(f"imresize: expected an H x W or H x W x C image, got shape {array.shape}")
    s, shrinking = _factor(scale)
    matlab_scale = 1 / s if shrinking else float(s)
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    if shrinking:
        out_height, out_width = -(-height // s), -(-width // s)
    else:
        out_height, out_width = height * s, width * s

    # Pass 1, along the height: rows of a (H, W*C) matrix, every channel at once.
    first = np.empty((out_height, width * channels), dtype=np.float32)
    source = array.reshape(height, width * channels).astype(np.float32)
    blocks = _plan(height, out_height, matlab_scale)
    for c0 in range(0, source.shape[1], _TILE):
        columns = slice(c0, c0 + _TILE)
        for b in blocks:
            np.matmul(
                b.matrix,
                source[b.in_start : b.in_stop, columns],
                out=first[b.out_start : b.out_stop, columns],
            )
    _round_to_uint8_values(first)

    # Pass 2, along the width: channel planes stacked so the width is the contiguous axis.
    planes = np.ascontiguousarray(first.reshape(out_height, width, channels).transpose(2, 0, 1))
    planes = planes.reshape(channels * out_height, width)
    second = np.empty((channels * out_height, out_width), dtype=np.float32)
    blocks = _plan(width, out_width, matlab_scale)
    for r0 in range(0, planes.shape[0], _TILE):
        tile = planes[r0 : r0 + _TILE]
        for b in blocks:
            np.matmul(
                tile[:, b.in_start : b.in_stop],
                b.matrix.T,
                out=second[r0 : r0 + _TILE, b.out_start : b.out_stop],
            )
    result = _round_to_uint8_values(second).astype(np.uint8)
    result = np.ascontiguousarray(result.reshape(channels, out_height, out_width).transpose(1, 2, 0))
    return result[:, :, 0] if array.ndim == 2 else result


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right edges so that height and width are multiples of ``scale``."""
    array = np.asarray(img)
    if array.ndim not in (2, 3):
        raise HarnessError(f"modcrop: expected an H x W or H x W x C image, got shape {array.shape}")
    height, width = array.shape[:2]
    return array[: height - height % scale, : width - width % scale]
