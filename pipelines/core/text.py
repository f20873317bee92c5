"""The text a sample carries, as layers with an origin and a trust, and the one rule that
says which of them is trustworthy (`trusted_text`).

Stages write text in their own sub-dict of ``meta``; this module reads it back as
`TextLayer`s so no consumer has to know where each stage keeps it:

=============  =====================================  ============================================
origin         read from                              trust
=============  =====================================  ============================================
``pdf_text``   ``meta["pdf"]["lines"]``               ``exact`` (``doubtful`` when the page is
                                                      flagged ``needs_ocr``: garbled or almost none)
``dom``        ``meta["web"]["lines"]``               ``exact`` (the browser's own rendered text)
``ocr``        ``meta["ocr"]["lines"]``               ``recognised`` (``doubtful`` when a line is
                                                      flagged ``low_confidence``)
``caption``    ``meta["pdf"]["caption"]``,            ``paired`` (describes the image, does not
               ``meta["image"]["caption"]``,          transcribe it; image files' captions come
               ``meta["web"]["caption"]``             from sidecar files or a caption table, web
                                                      pictures' from figcaption or alt text)
=============  =====================================  ============================================

Trust, best first: ``exact`` > ``recognised`` > ``doubtful`` > ``paired``. Among layers of
equal trust the origin order above decides. `trusted_text` is what every consumer asks
(OCR ground truth and OCR policy, SFT answers, labeling rules), each with the lowest trust
it accepts.

Coordinates: a `TextLine` box is ``[x0, y0, x1, y1]`` in **pixels of the sample's own image**
(y down). The stages' sub-dicts keep their historical units, listed here so nobody has to
guess: ``meta["pdf"]`` boxes (words, lines, spans, a figure's ``box``) and drawings are
0..1 of the image (``drawings_units: "normalised"``); in PDF points are ``page_size_pt``
and a span's font ``size``; a drawing's stroke ``width`` is in image px. ``meta["web"]``
lines/words/svg ``box`` are 0..1 of the image (an svg's ``page_box`` is CSS px of the whole
page). ``meta["ocr"]`` and ``meta["chart"]`` boxes are 0..1 of the image.

`IMAGE_PLACEHOLDER` is how a sample's text marks where each of its images stands
(interleaved documents, SFT prompts): the i-th placeholder is the i-th image. It is the
DeepSeek-VL tokenizer's image token, which the model's collator expands into the image's
token block at that place (``model.tokenizer.IMAGE_TOKEN`` must stay equal to it).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<image_placeholder>"
# Images an interleaved document holds at most: six 576-token blocks and the text around
# them fill the paper's 4096-token sequence; the trainer's collator keeps as many
# (model.collate.MAX_IMAGES_PER_SAMPLE, which the model package cannot import from here).
MAX_DOCUMENT_IMAGES = 6

EXACT, RECOGNISED, DOUBTFUL, PAIRED = "exact", "recognised", "doubtful", "paired"
TRUST_ORDER = (EXACT, RECOGNISED, DOUBTFUL, PAIRED)  # best first
ORIGINS = ("pdf_text", "dom", "ocr", "caption")  # tie-break among equal trust
# The meta sub-dict each origin is read from (a layer read elsewhere names its own).
SECTION = {"pdf_text": "pdf", "dom": "web", "ocr": "ocr", "caption": "pdf"}
# Sections that may hold a ``caption``, in the order they are looked at.
CAPTION_SECTIONS = ("pdf", "image", "web")


@dataclass(frozen=True)
class TextLine:
    """One line of text; `box` in image pixels (None: no geometry, or the image size is unknown)."""

    text: str
    box: tuple[float, float, float, float] | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "box": list(self.box) if self.box else None,
                "confidence": self.confidence}


@dataclass(frozen=True)
class TextLayer:
    """The text of one origin: its lines (reading order as the stage wrote them), trust and
    the image size the boxes refer to (0 x 0 when unknown).

    `section_lines` are the lines exactly as the stage stored them (boxes 0..1), for
    consumers that compare with other normalised data (OCR metrics).
    """

    origin: str
    trust: str
    lines: tuple[TextLine, ...]
    width: int = 0
    height: int = 0
    section_lines: tuple[Mapping[str, Any], ...] = ()
    from_section: str = ""

    @property
    def section(self) -> str:
        """The meta sub-dict this layer was read from ("pdf", "web", "ocr", "image")."""
        return self.from_section or SECTION[self.origin]

    @property
    def text(self) -> str:
        """Non-empty lines, stripped, joined by newlines."""
        return "\n".join(line.text.strip() for line in self.lines if line.text.strip())

    def to_dict(self) -> dict[str, Any]:
        """The layer as written in the JSON member's ``text_layers`` (see `core.schema`)."""
        return {"origin": self.origin, "trust": self.trust, "text": self.text,
                "width": self.width, "height": self.height,
                "lines": [line.to_dict() for line in self.lines]}


def at_least(trust: str, minimum: str) -> bool:
    """True when `trust` is `minimum` or better."""
    return TRUST_ORDER.index(trust) <= TRUST_ORDER.index(minimum)


def text_layers(sample: Any = None, *, meta: Mapping[str, Any] | None = None,
                image_size: tuple[int, int] | None = None) -> list[TextLayer]:
    """Every text layer of `sample` (or of a bare `meta`), best trust first.

    The image size (for pixel boxes) comes from `image_size`, else the sample's image
    header, else the section's own ``width``/``height``.
    """
    meta = sample.meta if meta is None else meta
    if image_size is None and sample is not None and getattr(sample, "image", None):
        image_size = image_dimensions(sample.image)
    layers = []
    pdf = meta.get("pdf") or {}
    if pdf.get("lines"):
        layers.append(_layer("pdf_text", DOUBTFUL if pdf.get("needs_ocr") else EXACT,
                             pdf["lines"], image_size or _size(pdf)))
    web = meta.get("web") or {}
    if web.get("lines"):
        layers.append(_layer("dom", EXACT, web["lines"], image_size or _size(web)))
    ocr = meta.get("ocr") or {}
    if ocr.get("lines"):
        doubtful = any(line.get("low_confidence") for line in ocr["lines"])
        layers.append(_layer("ocr", DOUBTFUL if doubtful else RECOGNISED, ocr["lines"],
                             image_size or (0, 0)))
    for name in CAPTION_SECTIONS:  # the first section with a caption gives the layer
        caption = str((meta.get(name) or {}).get("caption") or "").strip()
        if caption:
            layers.append(TextLayer("caption", PAIRED, (TextLine(caption),),
                                    *(image_size or (0, 0)), from_section=name))
            break
    return sorted(layers, key=lambda layer: (TRUST_ORDER.index(layer.trust),
                                             ORIGINS.index(layer.origin)))


def trusted_text(sample: Any = None, minimum: str = RECOGNISED, *,
                 meta: Mapping[str, Any] | None = None,
                 image_size: tuple[int, int] | None = None,
                 layers: Sequence[TextLayer] | None = None) -> TextLayer | None:
    """The most trustworthy text layer whose trust is `minimum` or better, or None.

    ``minimum=EXACT``: ground truth only (the PDF text layer, DOM text) — what OCR is
    measured against and what makes OCR unnecessary. ``RECOGNISED`` (default): also OCR
    without low-confidence lines — what an SFT answer or a transcription label may use.
    """
    if layers is None:  # callers that already built them pass `layers`
        layers = text_layers(sample, meta=meta, image_size=image_size)
    for layer in layers:
        if at_least(layer.trust, minimum):
            return layer
    return None


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an encoded image's header (no pixel decoding), or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":  # every pipeline's PNGs
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _size(section: Mapping[str, Any]) -> tuple[int, int]:
    try:
        return int(section.get("width") or 0), int(section.get("height") or 0)
    except (TypeError, ValueError):
        return 0, 0


def _layer(origin: str, trust: str, lines: Sequence[Mapping[str, Any]],
           size: tuple[int, int]) -> TextLayer:
    width, height = size
    out = []
    for line in lines:
        box = line.get("box")
        px = None
        if box and len(box) == 4 and width and height:
            px = (round(box[0] * width, 2), round(box[1] * height, 2),
                  round(box[2] * width, 2), round(box[3] * height, 2))
        confidence = line.get("confidence")
        out.append(TextLine(str(line.get("text", "")), px,
                            float(confidence) if confidence is not None else None))
    return TextLayer(origin, trust, tuple(out), width, height, tuple(lines))
