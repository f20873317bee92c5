"""Text runs with glyph edges from a ``rawdict`` extraction: what a chart reader needs to
place tick labels, titles and legends.

PyMuPDF joins far-apart labels of one baseline (a row of category ticks) into one span, so
spans are split again where the gap between two glyphs is wider than a space. Shared by
the renderer (which stores the runs in ``meta["pdf"]["spans"]``) and the chart stage's
direct reading of a PDF file (`pipelines.charts.pdf_vector`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass
class TextRun:
    """One label-sized run of a span, in unrotated page points."""

    text: str
    bbox: tuple[float, float, float, float]
    size: float  # font size, points
    direction: tuple[float, float]  # the line's writing direction (PyMuPDF's "dir")
    chars: list[tuple[str, tuple[float, float, float, float]]]  # glyph and its box


def text_runs(blocks: Sequence[dict]) -> Iterator[TextRun]:
    """The runs of every span of ``rawdict`` blocks (spans with ``chars``)."""
    for block in blocks:
        for line in block.get("lines", ()):
            dx, dy = line.get("dir", (1.0, 0.0))
            horizontal = abs(dy) < 1e-3
            for span in line.get("spans", ()):
                size = float(span.get("size", 10.0))
                for run in split_runs(span.get("chars", ()), size, horizontal):
                    string = " ".join("".join(c["c"] for c in run).split())
                    if not string:
                        continue
                    boxes = [c["bbox"] for c in run if c["c"].strip()]
                    x0 = min(b[0] for b in boxes)
                    x1 = max(b[2] for b in boxes)
                    y0 = min(b[1] for b in boxes)
                    y1 = max(b[3] for b in boxes)
                    if horizontal:  # keep the span's full line height: centred on the tick
                        y0, y1 = span["bbox"][1], span["bbox"][3]
                    yield TextRun(string, (x0, y0, x1, y1), size, (dx, dy),
                                  [(c["c"], tuple(c["bbox"])) for c in run])


def split_runs(chars: Sequence[dict], size: float, horizontal: bool) -> list[list[dict]]:
    """Cut a span's glyphs where labels part: glyph advance boxes of one word touch and a
    space separates words of one label; a gap with no space, or a very wide one, is the
    gap between two labels."""
    runs: list[list[dict]] = []
    prev_end = None
    spaced = False
    for ch in chars:
        x0, _, x1, _ = ch["bbox"]
        blank = not ch["c"].strip()
        if horizontal and not blank and prev_end is not None and runs:
            gap = x0 - prev_end
            if (not spaced and gap > 0.15 * size) or gap > 0.7 * size:
                runs.append([])
        if not runs:
            runs.append([])
        runs[-1].append(ch)
        if blank:
            spaced = True
        else:
            prev_end, spaced = x1, False
    return [r for r in runs if any(c["c"].strip() for c in r)]
