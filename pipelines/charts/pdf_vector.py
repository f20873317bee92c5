"""PDF vector charts → `Scene`: drawings plus the text runs of the labels.

Two sources give the same parts: the PDF renderer's meta (``meta["pdf"]["drawings"]`` and
``["spans"]``, normalised to the sample's image: `scenes_from_meta`, what the pipeline's
chart stage reads) and, for ``vlforge chart FILE.pdf``, a page opened directly
(`scenes_from_page`: `page.get_drawings()` and a ``rawdict`` extraction). Drawings are
clustered into regions (a page may hold a chart among body text) on a grid
(`pipelines.core.clusters`, no pairwise loop); each region with enough marks becomes a
Scene holding the text near it. Scene coordinates are points of the page (or crop).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from pipelines.charts.pdf_spans import text_runs
from pipelines.charts.scene import Scene, Shape, Text, cubic_points, rgb_tuple_color
from pipelines.core.clusters import cluster_boxes

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
    """Text runs with boxes; rotation from the line direction (y-down: up = 90°); spans
    split where labels part (`pipelines.charts.pdf_spans`)."""
    texts = []
    for run in text_runs(page.get_text("rawdict").get("blocks", [])):
        dx, dy = run.direction
        horizontal = abs(dy) < 1e-3
        chars = [(c, b[0], b[2]) for c, b in run.chars] if horizontal else None
        texts.append(Text(run.text, *run.bbox, size=run.size,
                          rotation=-math.degrees(math.atan2(dy, dx)), chars=chars))
    return _merge_spans(texts)


def texts_from_meta(spans: list[dict], width: float, height: float) -> list[Text]:
    """`Text`s from the renderer's ``meta["pdf"]["spans"]`` (normalised boxes and glyph
    edges), in a `width` x `height` point space."""
    texts = []
    for span in spans:
        x0, y0, x1, y1 = span["box"]
        chars = [(g[0], g[1] * width, g[2] * width) for g in span.get("glyphs") or []] or None
        texts.append(Text(span["text"], x0 * width, y0 * height, x1 * width, y1 * height,
                          size=float(span.get("size") or 10.0),
                          rotation=float(span.get("rotation") or 0.0), chars=chars))
    return _merge_spans(texts)


def shape_from_meta(d: dict, width: float, height: float) -> Shape | None:
    """One renderer meta drawing (normalised) → Shape in a `width` x `height` space."""
    subpaths: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for item in d.get("items", []):
        op, v = item[0], [float(x) for x in item[1:]]
        pts = [(v[i] * width, v[i + 1] * height) for i in range(0, len(v) - 1, 2)]
        if op == "re":
            (x0, y0), (x1, y1) = pts[0], pts[1]
            if current:
                subpaths.append(current)
                current = []
            subpaths.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        elif op == "qu":
            if current:
                subpaths.append(current)
                current = []
            subpaths.append(pts)
        elif op in ("l", "c"):
            if not current or current[-1] != pts[0]:
                if current:
                    subpaths.append(current)
                current = [pts[0]]
            current.extend([pts[1]] if op == "l" else cubic_points(*pts[:4]))
    if current:
        subpaths.append(current)
    if not subpaths:
        return None
    kind = d.get("type") or ""
    fill = rgb_tuple_color(d.get("fill")) if "f" in kind and d.get("fill") else None
    stroke = rgb_tuple_color(d.get("stroke")) if "s" in kind and d.get("stroke") else None
    if fill is None and stroke is None:
        return None
    closed = bool(d.get("closed")) or any(it[0] in ("re", "qu") for it in d.get("items", []))
    return Shape(subpaths, fill=fill, stroke=stroke, stroke_width=float(d.get("width") or 1.0),
                 closed=closed or fill is not None)


def _merge_spans(texts: list[Text]) -> list[Text]:
    """Join superscripts to their base: mathtext tick labels (10², matplotlib's log axes)
    come as a base span and a smaller raised span right after it."""
    merged: set[int] = set()
    # Only runs ending in "10" can be a base: looking for them first keeps this linear
    # on pages full of numbers.
    bases = [t for t in texts if t.text.endswith("10") and not t.vertical]
    for small in texts:
        if small.vertical or not re.fullmatch(r"[−\-+]?\d{1,3}", small.text):
            continue  # exponents are short integers
        for base in bases:
            if base is small or id(base) in merged:
                continue
            if small.size < 0.85 * base.size and \
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
    return scenes_from_parts(shapes, texts_from_page(page), float(page.rect.width),
                             float(page.rect.height))


def scenes_from_meta(pdf: dict) -> list[tuple[list[float], Scene]]:
    """Chart-candidate regions from the renderer's meta of a page or a figure crop:
    ``(box normalised to the sample's image, Scene)`` pairs. The scene is in points of the
    page (or crop), from the image size and dpi; without ``spans`` (runs written before
    the renderer stored them) the text comes from the ``lines``."""
    drawings = pdf.get("drawings") or []
    if len(drawings) < MIN_REGION_SHAPES:
        return []
    to_points = 72.0 / float(pdf.get("dpi") or 72.0)
    width = float(pdf.get("width") or 1000) * to_points
    height = float(pdf.get("height") or 1000) * to_points
    shapes = [s for d in drawings if (s := shape_from_meta(d, width, height)) is not None]
    if len(shapes) < MIN_REGION_SHAPES:
        return []
    if pdf.get("spans"):
        texts = texts_from_meta(pdf["spans"], width, height)
    else:
        texts = texts_from_meta([{**line, "size": _line_size(line, width, height),
                                  "rotation": 90.0 if _line_vertical(line, width, height)
                                  else 0.0} for line in pdf.get("lines") or []],
                                width, height)
    return [([box[0] / width, box[1] / height, box[2] / width, box[3] / height], scene)
            for box, scene in scenes_from_parts(shapes, texts, width, height)]


def _line_vertical(line: dict, width: float, height: float) -> bool:
    x0, y0, x1, y1 = line["box"]
    return (y1 - y0) * height > 2.5 * (x1 - x0) * width and len(line["text"]) > 2


def _line_size(line: dict, width: float, height: float) -> float:
    x0, y0, x1, y1 = line["box"]
    size = (x1 - x0) * width if _line_vertical(line, width, height) else (y1 - y0) * height * 0.8
    return max(size, 1.0)


def scenes_from_parts(shapes: list[Shape], texts: list[Text], width: float,
                      height: float) -> list[tuple[list[float], Scene]]:
    """Regions of `shapes` with enough marks, each a Scene with the texts near it."""
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
        out.append((box, Scene(width, height, near, members)))
    return out


def _cluster_regions(boxes: list[tuple[float, float, float, float]], gap: float = 12.0):
    """Union of drawing boxes that touch (within `gap`, transitively), as region boxes."""
    return [list(r) for r in cluster_boxes(boxes, gap, gap, min_size=False)]


def _within(inner, outer, tol: float = 0.5) -> bool:
    return inner[0] >= outer[0] - tol and inner[1] >= outer[1] - tol and \
        inner[2] <= outer[2] + tol and inner[3] <= outer[3] + tol
