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

Why a pass is a fixed-kernel correlation: for an integer factor the output centres fall on a
grid commensurate with the input grid. Shrinking by s, output q (0-based) is centred on input
``s*q + (s-1)/2``, the same offset from its taps for every q, so every output pixel has the
same weights (4s taps, 4s-1 for odd s); enlarging by s there are s phases of 4 or 5 taps. The
weights never depend on the image size, and mirroring only changes *which* pixels the taps
read, so a pass is a strided correlation of the mirror-padded image with one kernel. Padding
through the mirror index map stays right however often it wraps (images narrower than the
kernel), so there is no separate path for small images.

Why float32 gives the same bits as MATLAB's float64 loop: for the factors 2 and 4 the weights
are dyadic fractions (multiples of 2**-8 or 2**-12 shrinking, 2**-7 or 2**-10 enlarging), so
with uint8 inputs every product and partial sum is an integer number of such units below 2**21
and is exact in float32 in any order, rounding ties included. For the factor 3 the exact weights are
multiples of 1/81 (shrinking) or 1/27 (enlarging), so an exact pass result is never closer
than 1/162 to a rounding tie, far more than the float32 error (below 1e-3). The tests check
both against Set5 images resized by MATLAB and against a float64 per-pixel loop.

Speed: the height pass converts a chunk of input rows to float32 while it is still in cache
and applies the kernel as one strided matrix-vector product per output row and column tile
(numpy loops over a strided view, no copies). The width pass multiplies blocks of
mirror-padded pixels by one small band matrix (the kernel repeated per output, per channel),
again through a strided view. Output rows are independent, so a large image is done in two
halves on two Python threads (numpy and BLAS release the GIL; nothing spins while waiting).
Every BLAS call is kept small enough for OpenBLAS to run it on the calling thread instead:
its worker threads spin, and a product it did split ran about 50 times slower on a busy
machine.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from harness.errors import HarnessError

FACTORS: tuple[int, ...] = (2, 3, 4)


def check_scale(scale: int) -> None:
    """Refuse a super-resolution scale the MATLAB-exact resize does not reproduce."""
    if scale not in FACTORS:
        raise HarnessError(f"scale {scale} is not supported (choose from: {', '.join(map(str, FACTORS))})")


# Every BLAS call is kept below the sizes at which OpenBLAS hands it to its worker threads
# (measured for numpy's OpenBLAS 0.3.31: matrix-vector products from about 460800 elements,
# matrix products from m*n*k = 2**18; older versions thread matrix-vector products sooner).
# The height pass tiles its columns to at most _TILE_ELEMENTS weights x columns per call.
_TILE_ELEMENTS = 2**16
_SERIAL_GEMM_LIMIT = 2**18

# Height pass: float32 input rows converted per chunk (about 2 MiB), so the rows the products
# read are still in cache; larger chunks measured slower, smaller ones pay per-call overhead.
_CHUNK_BYTES = 2 << 20

# Width pass: output pixels per band block. Four keep the band matrix mostly non-zero (the
# extra multiply-adds cost less than more, smaller products).
_BLOCK_OUTPUTS = 4


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """One helper thread shared by all calls: concurrent callers add one thread in all, not one each."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="imresize")


# A forked child (a DataLoader worker) inherits the pool but not its thread; it makes its own.
os.register_at_fork(after_in_child=_pool.cache_clear)


@dataclass(frozen=True)
class _Kernel:
    """One pass's correlation: output ``q * phases + p`` is
    ``sum(weights[p, t] * padded[stride * q + t])``, where ``padded[i]`` is the input pixel
    ``mirror(i + offset)``."""

    weights: np.ndarray  # float32, (phases, taps)
    stride: int
    offset: int

    @property
    def phases(self) -> int:
        return self.weights.shape[0]

    @property
    def taps(self) -> int:
        return self.weights.shape[1]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB's imresize."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * (
        (absx > 1) & (absx <= 2)
    )


@lru_cache(maxsize=8)
def _kernel(factor: int, shrinking: bool) -> _Kernel:
    """MATLAB's contributions() for one output pixel per phase, relative to its first tap.

    MATLAB maps output x (1-based) to input ``u = x / scale + (1 - 1 / scale) / 2``; in 0-based
    coordinates that is ``factor * q + (factor - 1) / 2`` when shrinking and
    ``q + (p + 1/2) / factor - 1/2`` for phase p when enlarging.
    """
    if shrinking:
        centres = np.array([(factor - 1) / 2])
        stride, half_width = factor, 2.0 * factor
    else:
        centres = (np.arange(factor) + 0.5) / factor - 0.5
        stride, half_width = 1, 2.0
    first = math.floor(centres.min() - half_width)
    positions = np.arange(first, math.ceil(centres.max() + half_width) + 1)
    distance = centres[:, None] - positions
    weights = _cubic(distance / factor) / factor if shrinking else _cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    used = np.flatnonzero(np.any(weights != 0, axis=0))
    weights = weights[:, used[0] : used[-1] + 1]
    return _Kernel(weights.astype(np.float32), stride, first + int(used[0]))


def _mirror(indices: np.ndarray, length: int) -> np.ndarray:
    """MATLAB's ``aux = [1:n, n:-1:1]`` lookup for 0-based indices, any distance out of range."""
    folded = np.mod(indices, 2 * length)
    return np.where(folded < length, folded, 2 * length - 1 - folded)


def _round_to_uint8_values(values: np.ndarray) -> None:
    """In place: round half away from zero and saturate to 0..255, as MATLAB's uint8().

    Adding 1/2 first and clipping to 0..255 gives the same integers after the floor.
    """
    np.add(values, 0.5, out=values)
    np.clip(values, 0, 255, out=values)
    np.floor(values, out=values)


def _column_tile(columns: int, kernel: _Kernel) -> int:
    """Columns per height-pass product: the fewest equal tiles (multiples of 16) that keep each
    product at about _TILE_ELEMENTS or less. The pass writes rows of whole tiles."""
    largest = max(16, _TILE_ELEMENTS // kernel.weights.size)
    tiles = -(-columns // largest)
    return -(-columns // (tiles * 16)) * 16


def _height_pass(source: np.ndarray, kernel: _Kernel, out: np.ndarray, first: int, stop: int) -> None:
    """Output rows ``first * phases`` to ``stop * phases`` of the pass along ``source``'s rows.

    ``source`` is n x m uint8; ``out`` is a float32 view with unit column stride, m rounded up
    to whole tiles wide (_column_tile); its columns past m receive zeros. The rows written
    hold uint8 values.
    """
    rows, width = source.shape
    stride, taps, phases = kernel.stride, kernel.taps, kernel.phases
    tile = _column_tile(width, kernel)
    tiles = out.shape[1] // tile
    per_chunk = max(1, _CHUNK_BYTES // (stride * out.shape[1] * 4))
    scratch = np.empty(((per_chunk - 1) * stride + taps, out.shape[1]), np.float32)
    scratch[:, width:] = 0
    row_bytes, out_row_bytes = scratch.strides[0], out.strides[0]
    for q0 in range(first, stop, per_chunk):
        n = min(per_chunk, stop - q0)
        index = _mirror(np.arange(q0 * stride, (q0 + n - 1) * stride + taps) + kernel.offset, rows)
        window = scratch[: len(index)]
        # Mirrored runs repeat or step back, so last - first == length - 1 only for a plain run.
        if index[-1] - index[0] == len(index) - 1:
            window[:, :width] = source[index[0] : index[-1] + 1]
        else:
            window[:, :width] = source[index]
        taps_view = as_strided(window, (n, tiles, taps, tile), (stride * row_bytes, tile * 4, row_bytes, 4))
        rows_out = out[q0 * phases : (q0 + n) * phases]
        block = as_strided(
            rows_out, (n, tiles, phases, tile), (phases * out_row_bytes, tile * 4, out_row_bytes, 4)
        )
        np.matmul(kernel.weights, taps_view, out=block)
    _round_to_uint8_values(out[first * phases : stop * phases])


def _width_band(kernel: _Kernel, channels: int) -> tuple[int, int, np.ndarray]:
    """(positions per block, span, matrix): a block of output pixels from ``span`` input pixels.

    The matrix maps ``span * channels`` interleaved input values to the block's outputs, also
    interleaved, so the width pass needs no transposition.
    """
    per_block = max(1, _BLOCK_OUTPUTS // kernel.phases)
    span = (per_block - 1) * kernel.stride + kernel.taps
    band = np.zeros((span, per_block * kernel.phases), np.float32)
    for j in range(per_block):
        start = j * kernel.stride
        band[start : start + kernel.taps, j * kernel.phases : (j + 1) * kernel.phases] = kernel.weights.T
    return per_block, span, np.kron(band, np.eye(channels, dtype=np.float32))


def _width_pass(
    padded: np.ndarray, kernel: _Kernel, width_band: tuple[int, int, np.ndarray], out: np.ndarray
) -> None:
    """The pass along the rows of ``padded`` (rows x padded pixels x channels, float32) into
    ``out`` (rows x out_width x channels, uint8), with the kernel's ``_width_band``."""
    per_block, _, band = width_band
    channels = out.shape[2]
    blocks = -(-out.shape[1] // (per_block * kernel.phases))
    flat = padded.reshape(padded.shape[0], -1)
    step = per_block * kernel.stride * channels * 4
    rows_per_call = max(1, (_SERIAL_GEMM_LIMIT - 1) // band.size)
    for r0 in range(0, flat.shape[0], rows_per_call):
        rows = flat[r0 : r0 + rows_per_call]
        windows = as_strided(rows, (blocks, rows.shape[0], band.shape[0]), (step, rows.strides[0], 4))
        values = np.matmul(windows, band)
        np.add(values, 0.5, out=values)
        np.clip(values, 0, 255, out=values)
        # Truncation to uint8 is the floor here: the values are non-negative.
        arranged = values.transpose(1, 0, 2).reshape(rows.shape[0], -1, channels)[:, : out.shape[1]]
        np.copyto(out[r0 : r0 + rows.shape[0]], arranged, casting="unsafe")


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
    kernel = _kernel(s, shrinking)
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    if shrinking:
        out_height, out_width = -(-height // s), -(-width // s)
    else:
        out_height, out_width = height * s, width * s
    source = array.reshape(height, width * channels)

    # The intermediate image: rows of mirror-padded pixels, channels interleaved. Pixel p of a
    # row is input column mirror(p - left); the height pass fills the real ones, [left, left +
    # width), and spills zeros up to a whole tile, which the mirrored pixels then overwrite.
    width_band = _width_band(kernel, channels)
    per_block, span, _ = width_band
    blocks = -(-out_width // (per_block * kernel.phases))
    left = -kernel.offset
    tile = _column_tile(width * channels, kernel)
    tiled = -(-width * channels // tile) * tile
    padded_width = max((blocks - 1) * per_block * kernel.stride + span, left + -(-tiled // channels))
    middle = np.empty((out_height, padded_width, channels), np.float32)
    real = middle.reshape(out_height, -1)[:, left * channels : left * channels + tiled]
    outside = np.r_[0:left, left + width : padded_width]
    mirrored = left + _mirror(outside - left, width)
    result = np.empty((out_height, out_width, channels), np.uint8)

    def resize_rows(first: int, stop: int) -> None:
        """Both passes for output positions [first, stop) of the height pass."""
        rows = slice(first * kernel.phases, stop * kernel.phases)
        _height_pass(source, kernel, real, first, stop)
        middle[rows, outside] = middle[rows, mirrored]
        _width_pass(middle[rows], kernel, width_band, result[rows])

    positions = out_height // kernel.phases
    if source.nbytes * 4 < 2 * _CHUNK_BYTES:
        # Less than a chunk per half: handing a half over would cost more than it saves.
        resize_rows(0, positions)
    else:
        # Rows of the result are independent: the calling thread does one half, the pool's
        # thread the other.
        half = positions // 2
        other = _pool().submit(resize_rows, half, positions)
        try:
            resize_rows(0, half)
        finally:
            other.result()
    return result[:, :, 0] if array.ndim == 2 else result


def _factor(scale: float) -> tuple[int, bool]:
    """(s, shrinking) for scale 1/s or s; anything else is refused."""
    for s in FACTORS:
        if math.isclose(scale, s, rel_tol=0, abs_tol=1e-9):
            return s, False
        if math.isclose(scale, 1 / s, rel_tol=0, abs_tol=1e-9):
            return s, True
    allowed = ", ".join(f"1/{s}" for s in FACTORS) + ", " + ", ".join(str(s) for s in FACTORS)
    raise HarnessError(f"imresize: scale {scale!r} is not supported (allowed: {allowed})")


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right edges so that height and width are multiples of ``scale``."""
    array = np.asarray(img)
    if array.ndim not in (2, 3):
        raise HarnessError(f"modcrop: expected an H x W or H x W x C image, got shape {array.shape}")
    height, width = array.shape[:2]
    return array[: height - height % scale, : width - width % scale]
