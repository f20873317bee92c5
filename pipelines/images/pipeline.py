"""The smallest real pipeline: image files (photos, scans, charts) → samples.

``vlforge images FILE|DIR|GLOB... --out RUN_DIR``. Each file is read, verified by decoding
it, and stored as PNG (other formats re-encoded, pixels kept) with its original size and
format in ``meta["image"]``. Files that do not decode become error records; images below
a minimum side are dropped.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Iterable, Mapping

from PIL import Image

from pipelines.core.fetch import read_bytes
from pipelines.core.outcome import Outcome
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample, sha256_hex
from pipelines.core.stage import Record, StageFn
from pipelines.images.config import ImagesConfig
from pipelines.post_stages import post_stages

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
MAX_PIXELS = 100_000_000


class LoadImagesFn(StageFn):
    """Read and verify an image file; re-encode to PNG when it is not one."""

    stage = "LoadImages"

    def __init__(self, min_side: int = 16):
        self.min_side = min_side

    def process_sample(self, seed: Sample) -> Iterable[Record]:
        path = seed.lineage["input_ref"]["path"]
        data = read_bytes(path)  # in the worker, from a local path or any fsspec URL
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # decompression bombs raise instead of eating RAM
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height, fmt = image.width, image.height, image.format
            # Stored as PNG whatever the input: every run then has one image member
            # ("png"), which readers that infer columns from a few samples need
            # (pipelines.core.schema); the original format stays in meta["image"].
            if fmt != "PNG":
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, format="PNG")
                data = buffer.getvalue()
        sample = seed.replace(image=data).with_meta(
            "image", {"width": width, "height": height, "format": fmt, "path": path,
                      "file_sha256": sha256_hex(data)})
        if min(width, height) < self.min_side:
            yield Outcome.dropped(sample, self.stage, "too_small", f"{width}x{height}")
            return
        yield sample


def build_stages(config: ImagesConfig | Mapping[str, Any]) -> list[StageFn]:
    """LoadImages, then the post stages (OCR, charts, labels) as configured."""
    config = ImagesConfig.coerce(config)
    return [LoadImagesFn(min_side=config.min_side), *post_stages(config)]


def image_refs(paths: Iterable[str]) -> list[dict[str, Any]]:
    """One input ref per image file (a local path or any fsspec URL; nothing is read)."""
    return [input_ref("images", p if "://" in p else f"file://{p}", path=p) for p in paths]
