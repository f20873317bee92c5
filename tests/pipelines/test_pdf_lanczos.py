"""`pipelines.core.lanczos.resize_grey` gives Pillow's LANCZOS pixels exactly (the PDF
renderer's page pHash depends on it: issue 17)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.core import lanczos
from pipelines.core.signatures import EXACT_RESIZE_PIXELS, perceptual_hash


def _pillow(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def _grey_images():
    rng = np.random.default_rng(17)
    sides = [(1, 1), (1, 40), (40, 1), (31, 32), (32, 32), (33, 32), (32, 100), (7, 9),
             (256, 198), (1024, 792), (792, 1024), (1024, 1024), (1023, 17), (2000, 40)]
    sides += [(int(rng.integers(1, 1400)), int(rng.integers(1, 1400))) for _ in range(40)]
    for number, (width, height) in enumerate(sides):
        kind = number % 4
        if kind == 0:  # noise: every coefficient matters
            pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        elif kind == 1:  # sparse black on white: clipping at 0 and 255 (the lobes)
            pixels = ((rng.random((height, width)) > 0.05) * 255).astype(np.uint8)
        elif kind == 2:  # a page-like image: white with dark text-sized strokes
            pixels = np.full((height, width), 255, dtype=np.uint8)
            pixels[::7, ::3] = 0
        else:  # uniform
            pixels = np.full((height, width), int(rng.integers(0, 256)), dtype=np.uint8)
        yield Image.fromarray(pixels, "L")


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (16, 16), (40, 24)])
def test_resize_grey_is_pillows_lanczos_resize(size):
    compared = 0
    for image in _grey_images():
        expected = _pillow(image, size)
        got = lanczos.resize_grey(image, size)
        assert got.dtype == np.uint8 and got.shape == expected.shape
        assert np.array_equal(got, expected), (image.size, size)
        compared += 1
    assert compared >= 50


def test_a_rendered_page_hashes_the_same_by_either_resize():
    """A real page image (large enough for the matrix path) gets imagehash's pHash."""
    import imagehash
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    for line in range(40):
        page.insert_text((72, 72 + 16 * line), f"Line {line} of a page with text " * 2)
    page.draw_rect(pymupdf.Rect(300, 400, 500, 600), color=(0.2, 0.4, 0.8), fill=(0.9, 0.5, 0))
    pix = page.get_pixmap(matrix=pymupdf.Matrix(1024 / 792, 1024 / 792), alpha=False)
    image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    assert image.width * image.height >= EXACT_RESIZE_PIXELS
    assert perceptual_hash(image, matrix_resize=True) == str(imagehash.phash(image))
    assert perceptual_hash(image) == str(imagehash.phash(image))
    grey = image.convert("L")
    assert np.array_equal(lanczos.resize_grey(grey, (32, 32)), _pillow(grey, (32, 32)))


def test_resize_grey_refuses_other_modes():
    with pytest.raises(ValueError):
        lanczos.resize_grey(Image.new("RGB", (40, 40)), (32, 32))


def test_perceptual_hash_by_matrix_resize_is_imagehashs_phash():
    import imagehash

    hashed = 0
    for image in _grey_images():
        if image.width * image.height >= EXACT_RESIZE_PIXELS:
            for size in (8, 16):
                assert perceptual_hash(image, size, matrix_resize=True) == str(
                    imagehash.phash(image, hash_size=size))
            hashed += 1
    assert hashed >= 5
