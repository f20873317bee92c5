"""Fixtures generated in code for the pipeline tests (no files shipped)."""

from __future__ import annotations

import io
import os

from PIL import Image, ImageDraw

from pipelines.core.sample import Sample


def png_bytes(width: int = 64, height: int = 48, seed: int = 0, text: str = "") -> bytes:
    """A small PNG whose pixels depend on `seed` (so checksums differ)."""
    image = Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, 120))
    if text:
        ImageDraw.Draw(image).text((4, 4), text, fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_images(directory: str, count: int, size: int = 64) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    paths = []
    for index in range(count):
        path = os.path.join(directory, f"img{index:04d}.png")
        with open(path, "wb") as handle:
            handle.write(png_bytes(size + index % 7, size, seed=index))
        paths.append(path)
    return paths


def make_sample(index: int, **fields) -> Sample:
    return Sample.create("test", f"test://{index}", image=png_bytes(seed=index),
                         text=f"sample {index}", **fields)
