"""The smallest real pipeline: image files (photos, scans, charts) → samples.

``vlforge images FILE|DIR|GLOB... --out RUN_DIR``. Each file is read, verified by decoding
it, and stored as PNG (other formats re-encoded, pixels kept) with its original size and
format in ``meta["image"]``. Files that do not decode become error records; images below
a minimum side are dropped.

Captions (`pipelines.images.captions`: a ``--captions`` table, else ``NAME.txt`` /
``NAME.json`` beside the image) become the sample's ``text`` and ``meta["image"]["caption"]``
(a ``caption`` text layer, trust ``paired``), so training stages 1-2 get image→caption
pairs. A caption failing `pipelines.core.caption_quality` is left out and the reason kept
in ``meta["image"]["caption_dropped"]`` (counted as ``caption_dropped_<reason>``); the
image sample is written either way.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from apache_beam.metrics import Metrics
from PIL import Image

from pipelines.core.caption_quality import caption_problem, normalise
from pipelines.core.fetch import read_bytes
from pipelines.core.outcome import Outcome
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample, sha256_hex
from pipelines.core.stage import Record, StageFn
from pipelines.images.captions import sidecar_caption
from pipelines.images.config import ImagesConfig
from pipelines.post_stages import post_stages

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
MAX_PIXELS = 100_000_000


class LoadImagesFn(StageFn):
    """Read and verify an image file; re-encode to PNG when it is not one."""

    stage = "LoadImages"

    def __init__(self, min_side: int = 16, sidecar_captions: bool = True):
        self.min_side = min_side
        self.sidecar_captions = sidecar_captions

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
        info = {"width": width, "height": height, "format": fmt, "path": path,
                "file_sha256": sha256_hex(data)}
        caption = self.caption_of(seed.lineage["input_ref"], path, info)
        sample = seed.replace(image=data, text=caption).with_meta("image", info)
        if min(width, height) < self.min_side:
            yield Outcome.dropped(sample, self.stage, "too_small", f"{width}x{height}")
            return
        yield sample

    def caption_of(self, ref: Mapping[str, Any], path: str, info: dict[str, Any]) -> str | None:
        """The image's usable caption, or None; records its source (and any drop) in `info`."""
        if ref.get("caption") is not None:
            found: tuple[str, str] | None = (str(ref["caption"]), "table")
        else:
            found = sidecar_caption(path) if self.sidecar_captions else None
        if found is None:
            return None
        text, info["caption_source"] = found
        problem = caption_problem(text)
        if problem is not None:
            info["caption_dropped"] = problem
            Metrics.counter(self.stage, f"caption_dropped_{problem}").inc()
            return None
        Metrics.counter(self.stage, f"caption_{info['caption_source']}").inc()
        info["caption"] = normalise(text)
        return info["caption"]


def build_stages(config: ImagesConfig | Mapping[str, Any]) -> list[StageFn]:
    """LoadImages, then the post stages (OCR, charts, labels) as configured."""
    config = ImagesConfig.coerce(config)
    return [LoadImagesFn(min_side=config.min_side, sidecar_captions=config.sidecar_captions),
            *post_stages(config)]


def image_refs(paths: Iterable[str]) -> list[dict[str, Any]]:
    """One input ref per image file (a local path or any fsspec URL; nothing is read)."""
    return list(iter_image_refs(paths))


def iter_image_refs(paths: Iterable[str]) -> Iterator[dict[str, Any]]:
    """`image_refs` one at a time, for a planner that streams millions of inputs."""
    for p in paths:
        yield input_ref("images", p if "://" in p else f"file://{p}", path=p)
