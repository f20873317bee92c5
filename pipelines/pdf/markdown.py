"""A page's markdown from the text the renderer already extracted (one ``dict`` pass).

pymupdf4llm's ``to_markdown`` re-extracts the page (a new text page, links, annotations,
drawings, its own table search and quadratic drawing clustering: 0.38 s a page). This
module writes the same markdown conventions from the renderer's blocks instead:
headings by font size (pymupdf4llm's `IdentifyHeaders` rule), bold / italic / monospace /
strike-out spans, code blocks for all-monospace lines, bullets as ``-`` items, URI links
as ``[text](uri)``, and the page's tables (found once by the renderer) as markdown tables
placed before the first text below them. Text inside a table is not repeated.

Reading order is MuPDF's block order (the order of ``text``), not pymupdf4llm's column
detection, which would need another pass over the page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pymupdf

BOLD = pymupdf.mupdf.FZ_STEXT_BOLD
STRIKEOUT = pymupdf.mupdf.FZ_STEXT_STRIKEOUT
# pymupdf4llm's bullet characters; a line starting with one and a space is a list item.
BULLETS = tuple({*"*->o", *map(chr, (0xB6, 0xB7, 0x2020, 0x2021, 0x2022, 0x2212, 0x2219,
                                     0xF0A7, 0xF0B7, 0xFFFD)),
                 *map(chr, range(0x2010, 0x2016)), *map(chr, range(0x25A0, 0x2600))})


def starts_with_bullet(text: str) -> bool:
    """"• item" or a lone bullet (pymupdf4llm's rule)."""
    return text.startswith(BULLETS) and (len(text) == 1 or text[1] == " ")


class HeadingLevels:
    """Font size → heading level, from the character counts of the pages seen so far.

    pymupdf4llm's rule: the most frequent size (at least `body_limit`) is body text; up to
    six larger sizes are heading levels, largest first. pymupdf4llm counts the whole
    document before the first page (a second extraction of every page); here each page
    adds its counts as it is extracted, so a page is judged with the pages before it.
    """

    def __init__(self, body_limit: float = 12, max_levels: int = 6):
        self.sizes: Counter = Counter()
        self.default_body = body_limit
        self.max_levels = max_levels
        self.body_limit = body_limit
        self.levels: dict[int, int] = {}

    def add(self, blocks: Sequence[dict]) -> None:
        """Count one page's characters by rounded font size."""
        for block in blocks:
            for line in block.get("lines", ()):
                for span in line["spans"]:
                    chars = len(span["text"].strip())
                    if chars:
                        self.sizes[round(span["size"])] += chars
        ranked = sorted(self.sizes.items(), key=lambda item: (item[1], item[0]))
        body = max(self.default_body, ranked[-1][0]) if ranked else self.default_body
        headings = sorted((s for s in self.sizes if s > body), reverse=True)[:self.max_levels]
        self.levels = {size: level for level, size in enumerate(headings, start=1)}
        self.body_limit = min(self.levels) - 1 if self.levels else body

    def level(self, span: dict) -> int:
        """1..6 for a heading span, 0 for body text."""
        size = round(span["size"])
        return 0 if size <= self.body_limit else self.levels.get(size, 0)


def page_markdown(blocks: Sequence[dict], headings: HeadingLevels,
                  tables: Sequence[tuple[Sequence[float], str]] = (),
                  links: Sequence[dict] = ()) -> str:
    """Markdown of one page from its ``dict`` text blocks (page coordinates, unrotated).

    `tables` are ``(bbox, markdown)`` pairs; `links` are ``page.get_links()`` entries."""
    uris = [(pymupdf.Rect(link["from"]), link["uri"]) for link in links
            if link.get("kind") == pymupdf.LINK_URI and link.get("uri")]
    pending = sorted(((tuple(rect), md) for rect, md in tables), key=lambda t: (t[0][3], t[0][0]))
    visible = _visible_spans(blocks)
    out: list[str] = []
    prev_heading = None
    code = False
    prev_box = None
    for block in blocks:
        if block.get("type", 0) != 0:
            continue
        first_line = True
        for line in block.get("lines", ()):
            spans = _merge_spans([s for s in line["spans"] if visible(s) and s["text"].strip()])
            if not spans:
                continue
            box = line["bbox"]
            if any(_overlaps(box, rect) for rect, _ in tables):
                continue  # a table's text comes out as the table
            while pending and pending[0][0][3] <= box[1]:  # tables above this line
                out.append("\n" + pending.pop(0)[1] + "\n")
                prev_heading = None
            if prev_box is not None and box[3] - prev_box[3] > (box[3] - box[1]) * 1.5:
                out.append("\n")
            text = " ".join(s["text"] for s in spans).strip()
            bold = all(s["flags"] & pymupdf.TEXT_FONT_BOLD or s.get("char_flags", 0) & BOLD
                       for s in spans)
            italic = all(s["flags"] & pymupdf.TEXT_FONT_ITALIC for s in spans)
            mono = all(s["flags"] & pymupdf.TEXT_FONT_MONOSPACED for s in spans)
            strike = all(s.get("char_flags", 0) & STRIKEOUT for s in spans)
            levels = [lv for lv in (headings.level(s) for s in spans) if lv]
            if levels:
                prefix = "#" * min(levels) + " "
                for on, mark in ((mono, "`"), (italic, "_"), (bold, "**"), (strike, "~~")):
                    if on:
                        text = f"{mark}{text}{mark}"
                if prefix == prev_heading:  # one heading broken over several lines
                    while out and out[-1].endswith("\n"):
                        out[-1] = out[-1][:-1]
                    out.append(" " + text + "\n")
                else:
                    out.append(prefix + text + "\n")
                prev_heading = prefix
                prev_box = box
                continue
            prev_heading = None
            if mono:
                if not code:
                    out.append("```\n")
                    code = True
                out.append(text + "\n")
                prev_box = box
                continue
            if code:
                out.append("```\n")
                code = False
            if first_line:
                out.append("\n")
            elif starts_with_bullet(spans[0]["text"]) or spans[0]["flags"] & 1:
                out.append("\n")  # a list item or a superscript starts a new line
            first_line = False
            prev_box = box
            out.append(" ".join(_styled(s, uris) for s in spans) + "\n")
    if code:
        out.append("```\n")
    for _, md in pending:
        out.append("\n" + md + "\n")
    markdown = "".join(out)
    markdown = markdown.replace(" \n", "\n").replace("  ", " ").replace(" ,", ",")
    while "\n\n\n" in markdown:
        markdown = markdown.replace("\n\n\n", "\n\n")
    return markdown.replace("-\n", "").lstrip("\n")


def _styled(span: dict, uris: list) -> str:
    text = span["text"].strip()
    if uris:
        box = span["bbox"]
        for rect, uri in uris:
            cx, cy = (rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2
            if box[0] <= cx <= box[2] and box[1] <= cy <= box[3]:
                for c in "()\n":
                    uri = uri.replace(c, f"%{hex(ord(c))}")
                text = f"[{text}]({uri})"
                break
    flags, char_flags = span["flags"], span.get("char_flags", 0)
    marks = []
    if flags & pymupdf.TEXT_FONT_BOLD or char_flags & BOLD:
        marks.append("**")
    if flags & pymupdf.TEXT_FONT_ITALIC:
        marks.append("_")
    if char_flags & STRIKEOUT:
        marks.append("~~")
    if flags & pymupdf.TEXT_FONT_MONOSPACED:
        marks.append("`")
    text = "".join(marks) + text + "".join(reversed(marks))
    if starts_with_bullet(text):
        text = "- " + text[1:].lstrip()
    return text


def _merge_spans(spans: list[dict]) -> list[dict]:
    """Join neighbouring spans of one style (PDFs cut words into pieces), as pymupdf4llm
    does before writing, so that pieces are not separated by spaces."""
    out: list[dict] = []
    for span in sorted(spans, key=lambda s: s["bbox"][0]):
        if out:
            last = out[-1]
            if (last["bbox"][2] + span["size"] * 0.1 >= span["bbox"][0]
                    and (last["flags"], last.get("char_flags", 0) & ~2)
                    == (span["flags"], span.get("char_flags", 0) & ~2)):
                box = last["bbox"]
                out[-1] = {**last, "text": last["text"] + span["text"],
                           "bbox": (min(box[0], span["bbox"][0]), min(box[1], span["bbox"][1]),
                                    max(box[2], span["bbox"][2]), max(box[3], span["bbox"][3]))}
                continue
        out.append(span)
    return out


def _visible_spans(blocks: Sequence[dict]):
    """Invisible text (alpha 0) is left out unless all text is invisible (an OCR layer)."""
    alphas = {span.get("alpha", 255) for block in blocks for line in block.get("lines", ())
              for span in line["spans"]}
    if alphas and alphas <= {0}:
        return lambda span: True
    return lambda span: span.get("alpha", 255) != 0


def _overlaps(box: Sequence[float], rect: Sequence[float]) -> bool:
    return box[0] < rect[2] and box[2] > rect[0] and box[1] < rect[3] and box[3] > rect[1]


def table_rect(table: Any) -> tuple[float, float, float, float]:
    """A found table's area including its header (which may sit outside its bbox)."""
    rect = pymupdf.Rect(table.bbox)
    try:
        rect |= pymupdf.Rect(table.header.bbox)
    except (AttributeError, TypeError, ValueError):  # a table without header information
        pass
    return tuple(rect)
