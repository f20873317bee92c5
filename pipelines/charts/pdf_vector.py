"""PDF vector charts → `Scene`: PyMuPDF drawings plus the text spans of the labels.

`page.get_drawings()` gives every path with its items (lines, curves, rects, quads) and
colours in page points (y down), `page.get_text("dict")` gives text spans with boxes and
direction. Drawings are clustered into regions (a page may hold a chart among body text);
each region with enough marks becomes a Scene holding the spans near it.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from pipelines.charts.scene import Scene, Shape, Text, cubic_points, rgb_tuple_color

log = logging.getLogger(__name__)

MIN_REGION_SHAPES = 4
MIN_REGION_SIDE = 40.0  # points


def shape_from_drawing(path: dict[str, Any]) -> Shape | None:
    """One PyMuPDF drawing dict → Shape (curves flattened, rects/quads as closed polygons)."""
    subpaths: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    closed = bool(path.get("closePath"))
    for item in path.get("items", ()):
        op = item[0]
        if op == "l":
            p1, p2 = (item[1].x, item[1].y), (item[2].x, item[2].y)
            if not current or current[-1] != p1:
                if current:
                    subpaths.append(current)
                current = [p1]
            current.append(p2)
        elif op == "c":
            p0 = (item[1].x, item[1].y)
            if not current or current[-1] != p0:
                if current:
                    subpaths.append(current)
                current = [p0]
            current.extend(cubic_points(p0, (item[2].x, item[2].y), (item[3].x, item[3].y),
                                        (item[4].x, item[4].y)))
        elif op == "re":
            r = item[1]
            if current:
                subpaths.append(current)
                current = []
            subpaths.append([(r.x0, r.y0), (r.x1, r.y0), (r.x1, r.y1), (r.x0, r.y1)])
            closed = True
        elif op == "qu":
            q = item[1]
            if current:
                subpaths.append(current)
                current = []
            subpaths.append([(q.ul.x, q.ul.y), (q.ur.x, q.ur.y), (q.lr.x, q.lr.y), (q.ll.x, q.ll.y)])
            closed = True
    if current:
        subpaths.append(current)
    if not subpaths:
        return None
    kind = path.get("type") or ""
    fill = rgb_tuple_color(path.get("fill")) if "f" in kind else None
    if fill is not None and (path.get("fill_opacity") or 1.0) == 0:
        fill = None
    stroke = rgb_tuple_color(path.get("color")) if "s" in kind else None
    if fill is None and stroke is None:
        return None
    return Shape(subpaths, fill=fill, stroke=stroke, stroke_width=float(path.get("width") or 1.0),
                 closed=closed or fill is not None)


def texts_from_page(page) -> list[Text]:
    """Text runs with boxes; rotation from the line direction (y-down: up = 90°).

    PyMuPDF joins far-apart labels of one baseline (a row of category ticks) into one
    span, so spans are split again where the gap between two characters is wider than
    a space."""
    texts = []
    for block in page.get_text("rawdict").get("blocks", []):
        for line in block.get("lines", []):
            dx, dy = line.get("dir", (1.0, 0.0))
            rotation = -math.degrees(math.atan2(dy, dx))
            horizontal = abs(dy) < 1e-3
            for span in line.get("spans", []):
                size = float(span.get("size", 10.0))
                for run in _split_runs(span.get("chars", []), size, horizontal):
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
                    chars = [(c["c"], c["bbox"][0], c["bbox"][2]) for c in run] if horizontal else None
                    texts.append(Text(string, x0, y0, x1, y1, size=size, rotation=rotation,
                                      chars=chars))
    return _merge_spans(texts)


def _split_runs(chars: list[dict], size: float, horizontal: bool) -> list[list[dict]]:
    # Glyph advance boxes of one word touch; a space char separates words of one label.
    # A gap with no space char between, or a very wide one, is the gap between labels.
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


def _merge_spans(texts: list[Text]) -> list[Text]:
    """Join superscripts to their base: mathtext tick labels (10², matplotlib's log axes)
    come as a base span and a smaller raised span right after it."""
    merged: set[int] = set()
    for small in texts:
        if small.vertical or not re.fullmatch(r"[−\-+]?\d{1,3}", small.text):
            continue  # exponents are short integers
        for base in texts:
            if base is small or base.vertical or id(base) in merged:
                continue
            if base.text.endswith("10") and small.size < 0.85 * base.size and \
                    0 <= small.x0 - base.x1 < 1.5 and \
                    small.cy < base.cy and small.y1 > base.y0:
                base.text = f"{base.text}^{{{small.text}}}"
                base.x1 = max(base.x1, small.x1)
                merged.add(id(small))
                break
    return [t for t in texts if id(t) not in merged]


def scenes_from_page(page, drawings: list[dict] | None = None) -> list[tuple[list[float], Scene]]:
    """Chart-candidate regions of a PDF page: ``(box in page points, Scene)`` pairs."""
    drawings = page.get_drawings() if drawings is None else drawings
    shapes = [s for d in drawings if (s := shape_from_drawing(d)) is not None]
    if len(shapes) < MIN_REGION_SHAPES:
        return []
    texts = texts_from_page(page)
    regions = _cluster_regions([s.bbox for s in shapes])
    out = []
    for box in regions:
        if box[2] - box[0] < MIN_REGION_SIDE or box[3] - box[1] < MIN_REGION_SIDE:
            continue
        members = [s for s in shapes if _within(s.bbox, box)]
        if len(members) < MIN_REGION_SHAPES:
            continue
        pad = 60.0  # tick labels and titles sit outside the drawn frame
        outer = [box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad]
        near = [t for t in texts if outer[0] <= t.cx <= outer[2] and outer[1] <= t.cy <= outer[3]]
        out.append((box, Scene(float(page.rect.width), float(page.rect.height), near, members)))
    return out


def _cluster_regions(boxes: list[tuple[float, float, float, float]], gap: float = 12.0):
    """Union of drawing boxes that touch (within `gap`), as region boxes; page-size
    backgrounds are left out so they do not glue a whole page into one region."""
    regions: list[list[float]] = []
    for b in sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True):
        merged = False
        for r in regions:
            if b[0] <= r[2] + gap and b[2] >= r[0] - gap and b[1] <= r[3] + gap and b[3] >= r[1] - gap:
                r[0], r[1] = min(r[0], b[0]), min(r[1], b[1])
                r[2], r[3] = max(r[2], b[2]), max(r[3], b[3])
                merged = True
                break
        if not merged:
            regions.append(list(b))
    changed = True
    while changed:  # regions that grew into each other are one
        changed = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if b[0] <= a[2] + gap and b[2] >= a[0] - gap and b[1] <= a[3] + gap and b[3] >= a[1] - gap:
                    regions[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del regions[j]
                    changed = True
                    break
            if changed:
                break
    return regions


def _within(inner, outer, tol: float = 0.5) -> bool:
    return inner[0] >= outer[0] - tol and inner[1] >= outer[1] - tol and \
        inner[2] <= outer[2] + tol and inner[3] <= outer[3] + tol
