"""The one record every stage takes and yields, and its WebDataset encoding.

A `Sample` is immutable: stages return a new one (`with_meta`, `replace`). On disk a sample
is one WebDataset group: ``KEY.png|jpg`` (+ ``KEY.1.png`` ... for extra images), ``KEY.txt``,
``KEY.md``, ``KEY.html`` (always written, empty when absent) and ``KEY.json``; the members
and the JSON member's fields are defined, field by field, in `pipelines.core.schema`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from pipelines.core import schema

SCHEMA_VERSION = schema.SCHEMA_VERSION
TEXT_FIELDS = schema.TEXT_MEMBERS


def stable_key(source: str, locator: str) -> str:
    """A key that depends only on where a sample came from (no dots: WebDataset splits on them)."""
    return hashlib.sha256(f"{source}\n{locator}".encode()).hexdigest()[:32]


def derived_kind(locator: str, derived_from: str | None) -> str:
    """What a derived sample is, from the ``KIND=N`` tag its parent appended to the locator
    (``...#page=1&figure=0`` → "figure", ``URL#tile=2`` → "tile", ``URL#&code=0`` →
    "code"); "" for a sample made from an input itself, whose URL query is no tag."""
    if not derived_from:
        return ""
    tail = (locator or "").rsplit("&", 1)[-1].rsplit("#", 1)[-1]
    kind, equals, number = tail.partition("=")
    return kind if equals and number.isdigit() else ""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_extension(data: bytes) -> str:
    """File extension from the image's magic bytes (png, jpg, webp, gif), 'bin' otherwise."""
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return "bin"


def as_png(data: bytes) -> bytes:
    """`data` if it is a PNG, else the same pixels re-encoded as PNG (lossless from the
    decoded image). Pipelines store every image as PNG so that every sample of every run
    has the same image member (``png``), see `pipelines.core.schema`."""
    if image_extension(data) == "png":
        return data
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode not in ("RGB", "RGBA", "L", "LA", "I;16", "P", "1"):
            image = image.convert("RGB")  # CMYK / YCbCr JPEGs
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Sample:
    """One unit of training data flowing through the pipelines.

    key: stable id, ``stable_key(source, locator)``.
    source: which pipeline made it ("pdf", "web", "sft", "chart-synth", ...).
    locator: where exactly it came from (URL, ``sha256:<file>#page=3``, ...).
    image: the main image bytes (PNG or JPEG), or None for text-only samples.
    extra_images: further images (multi-image conversations), written as ``KEY.1.png``...
    text / markdown / html: payloads, written as .txt / .md / .html.
    meta: one sub-dict per stage that touched the sample (``meta["pdf"]``, ``meta["ocr"]``,
        ``meta["taxonomy"]``...) plus ``meta["lineage"]`` (input id, item id, task, tools).
    """

    key: str
    source: str
    locator: str
    image: bytes | None = None
    extra_images: tuple[bytes, ...] = ()
    text: str | None = None
    markdown: str | None = None
    html: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, source: str, locator: str, *, lineage: Mapping[str, Any] | None = None,
               **fields: Any) -> "Sample":
        """A new sample with its key derived from source + locator and lineage stamped."""
        meta = dict(fields.pop("meta", {}) or {})
        meta["lineage"] = {
            "source": source,
            "locator": locator,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(lineage or {}),
        }
        return cls(key=stable_key(source, locator), source=source, locator=locator,
                   meta=meta, **fields)

    # -- immutable updates -------------------------------------------------------------
    def with_meta(self, stage: str, value: Mapping[str, Any]) -> "Sample":
        """A copy whose ``meta[stage]`` is `value` (each stage owns its own sub-dict)."""
        return dataclasses.replace(self, meta={**self.meta, stage: dict(value)})

    def replace(self, **changes: Any) -> "Sample":
        return dataclasses.replace(self, **changes)

    def derive(self, locator: str, **fields: Any) -> "Sample":
        """A new sample cut out of this one (a figure of a page), inheriting its lineage.
        Its locator is the parent's with a ``KIND=N`` tag appended (``&figure=0``,
        ``#tile=2``, ``#&interleaved=0``...), which `derived_kind` reads back."""
        lineage = {**self.lineage, "derived_from": self.key}
        lineage.pop("created", None)
        meta = fields.pop("meta", {})
        return Sample.create(self.source, locator, lineage=lineage, meta=meta, **fields)

    @property
    def lineage(self) -> Mapping[str, Any]:
        return self.meta.get("lineage", {})

    @property
    def item_id(self) -> str:
        """The accounting unit this sample answers for (defaults to its own key)."""
        return self.lineage.get("item_id", self.key)

    @property
    def images(self) -> tuple[bytes, ...]:
        return ((self.image,) if self.image is not None else ()) + tuple(self.extra_images)

    # -- WebDataset encoding (the shape is defined and documented in core.schema) -------
    def to_wds(self) -> dict[str, Any]:
        """The WebDataset group: ``{"__key__": key, "png": bytes, "txt": bytes, ...,
        "json": bytes}``, normalised to the one shape of `pipelines.core.schema`."""
        group: dict[str, Any] = {"__key__": self.key}
        names = []
        for index, data in enumerate(self.images):
            ext = image_extension(data)
            name = ext if index == 0 else f"{index}.{ext}"
            group[name] = data
            names.append(name)
        for attr, ext in TEXT_FIELDS.items():
            # Always written (empty when absent, see schema.has_*): readers that infer
            # columns from the first samples would otherwise drop a later sample's member.
            group[ext] = (getattr(self, attr) or "").encode("utf-8")
        group["json"] = json.dumps(schema.encode_header(self, names), ensure_ascii=False,
                                   sort_keys=True).encode("utf-8")
        return group

    @classmethod
    def from_wds(cls, group: Mapping[str, Any]) -> "Sample":
        """Inverse of `to_wds`; accepts bytes or already-decoded values, and reads groups
        written with the old nested JSON member (schema 1) too."""
        header = schema.decode_header(group["json"])
        images = [_as_bytes(group[name]) for name in header["images"] if name in group]
        texts = {}
        for attr, ext in TEXT_FIELDS.items():
            real = header["texts"] is None or attr in header["texts"]
            if real and ext in group and group[ext] is not None:
                value = group[ext]
                texts[attr] = (value.decode("utf-8") if isinstance(value, (bytes, bytearray))
                               else value)
        return cls(
            key=header["key"],
            source=header["source"],
            locator=header["locator"],
            image=images[0] if images else None,
            extra_images=tuple(images[1:]),
            meta=header["meta"],
            **texts,
        )

    def size_bytes(self) -> int:
        return sum(len(v) for k, v in self.to_wds().items() if k != "__key__")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"expected raw image bytes, got {type(value).__name__}")
