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
                    # per-glyph work in list comprehensions and C builtins: a chart page's
                    # runs hold every character of its text (~100,000 on the corpus)
                    texts = [c["c"] for c in run]
                    string = " ".join("".join(texts).split())
                    if not string:
                        continue
                    bboxes = [c["bbox"] for c in run]
                    x0s, y0s, x1s, y1s = zip(*[b for t, b in zip(texts, bboxes) if t.strip()])
                    x0, y0, x1, y1 = min(x0s), min(y0s), max(x1s), max(y1s)
                    if horizontal:  # keep the span's full line height: centred on the tick
                        y0, y1 = span["bbox"][1], span["bbox"][3]
                    yield TextRun(string, (x0, y0, x1, y1), size, (dx, dy),
                                  list(zip(texts, map(tuple, bboxes))))


def split_runs(chars: Sequence[dict], size: float, horizontal: bool) -> list[list[dict]]:
    """Cut a span's glyphs where labels part: glyph advance boxes of one word touch and a
    space separates words of one label; a gap with no space, or a very wide one, is the
    gap between two labels."""
    runs: list[list[dict]] = []
    texted: list[bool] = []  # whether each run holds a glyph that is not blank
    prev_end = None
    spaced = False
    narrow, wide = 0.15 * size, 0.7 * size
    for ch in chars:
        blank = not ch["c"].strip()
        if horizontal and not blank and prev_end is not None and runs:
            gap = ch["bbox"][0] - prev_end
            if (not spaced and gap > narrow) or gap > wide:
                runs.append([])
                texted.append(False)
        if not runs:
            runs.append([])
            texted.append(False)
        runs[-1].append(ch)
        if blank:
            spaced = True
        else:
            prev_end, spaced = ch["bbox"][2], False
            texted[-1] = True
    return [r for r, t in zip(runs, texted) if t]
