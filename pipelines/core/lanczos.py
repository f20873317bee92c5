"""Pillow's LANCZOS resize of a grey ("L") image, exactly, as banded matrix products.

`pipelines.core.signatures.perceptual_hash` shrinks every page image (~1024 x 800 px) to
32 x 32 with Pillow's LANCZOS filter: ~2.3 ms a page in the PDF renderer, a fifth of what
it spends beyond the render and the PNG encoding themselves (issue 17). Pillow resamples
8-bit images in fixed point (its ``Resample.c``): each output pixel is a sum of input
pixels times integer coefficients (the filter's weights, normalised, scaled by 2**22 and
rounded), plus a half, shifted down and clipped to 0..255; the horizontal pass runs first
and its result is rounded that way before the vertical pass. Those sums are integers
below 2**31, so a float64 matrix product gives them exactly, in any order of summation:
BLAS does a page's horizontal pass in ~0.6 ms, on the band of columns each group of
outputs reads, where it runs one thread: a multi-threaded OpenBLAS wakes its threads for
each of these small products at ~20x the CPU (`perceptual_hash` uses this only where the
caller asks, the PDF renderer child, started with ``OPENBLAS_NUM_THREADS=1``).

The coefficients are Pillow's, computed as Pillow computes them: the same double
arithmetic in the same order, libm's ``sin`` (through `math.sin`, never numpy's own),
the weights summed one after another, the same rounding; cached per (input, output)
size. ``tests/pipelines/test_pdf_lanczos.py`` holds `resize_grey` to Pillow's own resize
on random images of many sizes (shrinking, enlarging, equal sides).
"""

from __future__ import annotations

import functools
import math

import numpy as np

PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit images
_HALF = float(1 << (PRECISION_BITS - 1))
_ONE = float(1 << PRECISION_BITS)
SUPPORT = 3.0  # LANCZOS: a 3-lobed windowed sinc
GROUPS = 4  # output columns per product: bands of the input, not its whole width


def resize_grey(image, size: tuple[int, int]) -> np.ndarray:
    """``np.asarray(image.resize(size, Image.Resampling.LANCZOS))`` for an "L" image: the
    same uint8 pixels (shape ``(height, width)``)."""
    if image.mode != "L":
        raise ValueError(f"resize_grey takes 'L' images, not {image.mode!r}")
    width, height = size
    pixels = np.asarray(image)
    if pixels.shape[1] != width:  # Pillow's need_horizontal (no box): first
        values = pixels.astype(np.float64)
        out = np.empty((pixels.shape[0], width), dtype=np.float64)
        for first, end, lo, hi, band in _coefficients(pixels.shape[1], width):
            np.matmul(values[:, lo:hi], band, out=out[:, first:end])
        pixels = _round(out)
    if pixels.shape[0] != height:  # need_vertical, on the rounded horizontal pass
        values = pixels.astype(np.float64)
        out = np.empty((height, pixels.shape[1]), dtype=np.float64)
        for first, end, lo, hi, band in _coefficients(pixels.shape[0], height):
            np.matmul(band.T, values[lo:hi], out=out[first:end])
        pixels = _round(out)
    return pixels


def _round(sums: np.ndarray) -> np.ndarray:
    """Pillow's ``clip8``: (sum + half) >> 22, clipped to 0..255 (exact: powers of two)."""
    return np.clip(np.floor((sums + _HALF) / _ONE), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=64)  # ~0.1 MB each (a page side to 32 px)
def _coefficients(in_size: int, out_size: int) -> tuple:
    """One pass's integer coefficients in `GROUPS` bands ``(first output, end output,
    first input, end input, matrix[input, output])``."""
    # Pillow's precompute_coeffs (box 0..in_size) and normalize_coeffs_8bpc
    scale = filterscale = in_size / out_size
    if filterscale < 1.0:
        filterscale = 1.0
    support = SUPPORT * filterscale
    ss = 1.0 / filterscale
    matrix = np.zeros((in_size, out_size), dtype=np.float64)
    bounds, args = [], []
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        xmin = int(center - support + 0.5)
        if xmin < 0:
            xmin = 0
        xmax = int(center + support + 0.5)
        if xmax > in_size:
            xmax = in_size
        bounds.append((xmin, xmax))
        # (x + xmin - center + 0.5) * ss, elementwise: the same IEEE operations in order
        args.append((np.arange(xmin, xmax, dtype=np.float64) - center + 0.5) * ss)
    # the filter once per distinct argument (outputs of a pass repeat them), by libm
    unique, inverse = np.unique(np.concatenate(args), return_inverse=True)
    values = np.array([_lanczos(x) for x in unique.tolist()], dtype=np.float64)[inverse]
    at = 0
    for xx, (xmin, xmax) in enumerate(bounds):
        k = values[at:at + xmax - xmin]
        at += xmax - xmin
        ww = np.add.accumulate(k)[-1] if len(k) else 0.0  # summed one after another
        if ww != 0.0:
            k = k / ww
        matrix[xmin:xmax, xx] = np.where(k < 0, np.trunc(-0.5 + k * _ONE),
                                         np.trunc(0.5 + k * _ONE))
    groups = []
    step = -(-out_size // GROUPS)
    for first in range(0, out_size, step):
        end = min(first + step, out_size)
        lo = min(b[0] for b in bounds[first:end])
        hi = max(b[1] for b in bounds[first:end])
        groups.append((first, end, lo, hi, np.ascontiguousarray(matrix[lo:hi, first:end])))
    return tuple(groups)


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0
