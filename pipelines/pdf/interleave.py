"""Interleaved documents and caption pairs from what the renderer already extracted.

Runs inside the renderer process (`pipelines.pdf.render`), on the page's one text
extraction (its ``dict`` blocks) and the figure crops the renderer cut: no text is
extracted again and PyMuPDF is not imported here.

- **Interleaved documents** (the record contract of `pipelines.core.text`): a page's text
  blocks in reading order with one `IMAGE_PLACEHOLDER` at each figure's place, the figure
  crops as the images (the first is the sample's ``image``, the rest ``extra_images``).
  A figure's place: before the first text block, in reading order, of its own column
  (horizontally overlapping it) that lies below the figure's middle; after the column's
  last block when none does; by height among all blocks when no block shares its column.
  Text blocks inside a figure (axis labels, legends) are part of the image, not the text.
  PDF and fixed-layout pages give one document per page with figures; reflowable books
  (EPUB, FB2, MOBI) one per chapter (`ChapterDocuments`), in parts of at most
  ``max_chapter_pages`` pages. Chapters are MuPDF's: an EPUB's spine items; a FB2 book
  is one chapter to it, so its documents are runs of ``max_chapter_pages`` pages.
- **Caption pairs**: a figure whose nearby caption is labelled ("Figure 3: ...") and whose
  text after the label passes `caption_problem` (`caption_pair`).

Images past ``max_document_images`` keep their text but lose their placeholder; they and
the renderer's rejected candidates (tiny, decorative...) are listed in the document's
meta with a reason (``images_dropped``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.core.caption_quality import EMPTY, caption_problem, normalise
from pipelines.core.text import IMAGE_PLACEHOLDER

Box = Sequence[float]  # [x0, y0, x1, y1], 0..1 of the rendered page image

# "Figure 3:", "Fig. 2.1.", "Table S4 -", "Plate IV"; a number is required, so that body
# text mentioning a figure ("Figure shows...") is no label.
CAPTION_LABEL = re.compile(
    r"^\s*(?:fig(?:ure)?|tab(?:le)?|chart|plate|exhibit|graph|diagram|illustration|photo|"
    r"map|scheme)s?\.?\s*(?:[A-Z]?\d+(?:[.\-]\d+)*[a-z]?|[IVXLC]+)\b\s*[:.\-\u2013\u2014)]?\s*",
    re.IGNORECASE)
UNLABELLED = "unlabelled"  # the text next to a figure is not a caption of it
OVER_LIMIT = "over_limit"  # past max_document_images


@dataclass
class Figure:
    """One image of a document: the crop (PNG), its page and box, what it was found as."""

    image: bytes
    page: int
    box: list[float]
    source: str  # "image" (an embedded raster) or "vector" (clustered drawings)

    def describe(self, reason: str | None = None) -> dict[str, Any]:
        out = {"page": self.page, "box": list(self.box), "source": self.source}
        if reason:
            out["reason"] = reason
        return out


@dataclass
class InterleavedDocument:
    """Text blocks and figures in reading order, over one page or several (a chapter)."""

    segments: list[str | Figure] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)  # rejected candidates

    @property
    def figures(self) -> list[Figure]:
        return [s for s in self.segments if isinstance(s, Figure)]

    def extend(self, other: InterleavedDocument) -> None:
        self.segments += other.segments
        self.pages += other.pages
        self.dropped += other.dropped

    def has_text(self) -> bool:
        return any(isinstance(s, str) and s.strip() for s in self.segments)

    def part(self, max_images: int, meta: dict[str, Any]) -> dict[str, Any] | None:
        """The renderer's derived part (kind "interleaved"), or None without a figure."""
        figures = self.figures
        if not figures:
            return None
        kept, over = figures[:max_images], figures[max_images:]
        over_ids = {id(f) for f in over}
        pieces = []
        for segment in self.segments:
            if isinstance(segment, Figure):
                if id(segment) not in over_ids:
                    pieces.append(IMAGE_PLACEHOLDER)
            elif segment.strip():
                pieces.append(segment.strip())
        dropped = self.dropped + [f.describe(OVER_LIMIT) for f in over]
        return {"kind": "interleaved", "image": kept[0].image,
                "extra_images": [f.image for f in kept[1:]], "text": "\n\n".join(pieces),
                "markdown": None,
                "meta": {**meta, "kind": "interleaved", "pages": list(self.pages),
                         "images": len(kept), "figures": [f.describe() for f in kept],
                         "images_dropped": dropped}}


def block_text(block: dict[str, Any]) -> str:
    """A ``dict`` text block's text: its lines joined by newlines."""
    return "\n".join("".join(span["text"] for span in line["spans"])
                     for line in block.get("lines", ())).strip()


def page_document(text_blocks: Sequence[tuple[Box, str]], figures: Sequence[Figure],
                  page: int, dropped: Sequence[dict[str, Any]] = ()) -> InterleavedDocument:
    """One page's blocks (in reading order, normalised boxes) with its figures placed."""
    inside = [b for b in text_blocks if b[1].strip() and not any(_centre_in(b[0], f.box)
                                                                 for f in figures)]
    places = [(_place(f.box, [b for b, _ in inside]), f.box[1], f.box[0], n)
              for n, f in enumerate(figures)]
    at: dict[int, list[Figure]] = {}
    for position, _, _, n in sorted(places):
        at.setdefault(position, []).append(figures[n])
    segments: list[str | Figure] = []
    for index in range(len(inside) + 1):
        segments += at.get(index, [])
        if index < len(inside):
            segments.append(inside[index][1])
    return InterleavedDocument(segments, [page], list(dropped))


def _place(figure: Box, blocks: Sequence[Box]) -> int:
    """Index of the block the figure goes before (len(blocks): after the last)."""
    middle = (figure[1] + figure[3]) / 2
    column = [i for i, b in enumerate(blocks) if min(b[2], figure[2]) - max(b[0], figure[0]) > 0]
    below = [i for i in column if (blocks[i][1] + blocks[i][3]) / 2 >= middle]
    if below:
        return below[0]
    if column:
        return column[-1] + 1
    after = [i for i, b in enumerate(blocks) if (b[1] + b[3]) / 2 >= middle]
    return after[0] if after else len(blocks)


def _centre_in(box: Box, outer: Box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def caption_pair(caption: str | None) -> tuple[str | None, str | None]:
    """(caption text, None) for a usable figure caption, else (None, why not).

    The label ("Figure 3:") is cut off: it names the figure's place in its document, not
    what the picture shows. Reasons: `caption_problem`'s (``empty``, ``file_name``,
    ``boilerplate``) on the text after the label, or ``unlabelled`` (the nearest text is
    body text, not a caption)."""
    caption = normalise(caption or "")
    if not caption:
        return None, EMPTY
    label = CAPTION_LABEL.match(caption)
    if not label:
        return None, UNLABELLED
    body = caption[label.end():].strip()
    problem = caption_problem(body)
    return (None, problem) if problem else (body, None)


class ChapterDocuments:
    """Collects a reflowable book's pages into one interleaved document per chapter.

    `chapter_pages` are the page counts of the chapters (pages numbered through the book,
    as the converted PDF has them). `add` takes each page's document in page order and
    returns the finished document (and its chapter, part) at a chapter's last page, or
    when `max_pages` pages are held; only `max_images` images' bytes are ever kept.
    """

    def __init__(self, chapter_pages: Sequence[int], max_pages: int, max_images: int):
        self.max_pages, self.max_images = max_pages, max_images
        self.chapter_of: list[tuple[int, bool]] = []  # page -> (chapter, last page of it)
        for chapter, count in enumerate(chapter_pages):
            self.chapter_of += [(chapter, i == count - 1) for i in range(count)]
        self.current = InterleavedDocument()
        self.chapter, self.part = -1, 0
        self.images = 0

    def add(self, page: int, document: InterleavedDocument
            ) -> tuple[InterleavedDocument, int, int] | None:
        chapter, last = self.chapter_of[page] if page < len(self.chapter_of) else (-1, True)
        if chapter != self.chapter:  # a new chapter (pages arrive in order)
            self.current, self.chapter, self.part, self.images = (InterleavedDocument(),
                                                                  chapter, 0, 0)
        for segment in document.segments:
            if isinstance(segment, Figure):
                self.images += 1
                if self.images > self.max_images:  # its place is kept, not its pixels
                    segment.image = b""
        self.current.extend(document)
        if not last and len(self.current.pages) < self.max_pages:
            return None
        done, part = self.current, self.part
        self.current, self.part, self.images = InterleavedDocument(), self.part + 1, 0
        return done, chapter, part
