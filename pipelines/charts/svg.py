"""SVG markup → `Scene`: shapes flattened through every transform, texts with boxes.

Handles what chart libraries actually emit: matplotlib (paths, ``<use>`` of marker and
glyph definitions, text either as ``<text>`` with ``svg.fonttype='none'`` or as glyph
paths — then the string comes from the ``<!-- label -->`` comment matplotlib writes before
each text group, or failing that from the glyph ids, which end in the character's code
point), plotly.js and other D3-style output (``<path>`` with arcs, ``<text>`` placed by
``translate`` transforms), plus rect/line/polyline/polygon/circle/ellipse.
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET

from pipelines.charts.css import StyleSheets, computed_style, resolve_paint
from pipelines.charts.scene import Scene, Shape, Text, arc_points, cubic_points, quad_points

log = logging.getLogger(__name__)

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
NOT_RENDERED = {"defs", "clipPath", "mask", "symbol", "marker", "pattern", "style", "title",
                "desc", "metadata", "linearGradient", "radialGradient", "filter", "script"}
GLYPH_ID = re.compile(r"^#?[A-Za-z][\w.]*-([0-9a-fA-F]{2,6})$")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def multiply(m: Matrix, n: Matrix) -> Matrix:
    """m · n (apply n first, then m)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + c * b2, b * a2 + d * b2, a * c2 + c * d2, b * c2 + d * d2,
            a * e2 + c * f2 + e, b * e2 + d * f2 + f)


def apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = m
    return (a * x + c * y + e, b * x + d * y + f)


def parse_transform(value: str | None) -> Matrix:
    """The SVG transform list (matrix/translate/scale/rotate/skewX/skewY) as one matrix."""
    m = IDENTITY
    if not value:
        return m
    for name, args in re.findall(r"(\w+)\s*\(([^)]*)\)", value):
        nums = [float(v) for v in _NUMBER.findall(args)]
        if name == "matrix" and len(nums) == 6:
            t = tuple(nums)
        elif name == "translate":
            t = (1, 0, 0, 1, nums[0] if nums else 0, nums[1] if len(nums) > 1 else 0)
        elif name == "scale":
            sx = nums[0] if nums else 1
            t = (sx, 0, 0, nums[1] if len(nums) > 1 else sx, 0, 0)
        elif name == "rotate":
            ang = math.radians(nums[0] if nums else 0)
            cos_a, sin_a = math.cos(ang), math.sin(ang)
            t = (cos_a, sin_a, -sin_a, cos_a, 0, 0)
            if len(nums) == 3:
                cx, cy = nums[1], nums[2]
                t = multiply(multiply((1, 0, 0, 1, cx, cy), t), (1, 0, 0, 1, -cx, -cy))
        elif name == "skewX":
            t = (1, 0, math.tan(math.radians(nums[0])), 1, 0, 0)
        elif name == "skewY":
            t = (1, math.tan(math.radians(nums[0])), 0, 1, 0, 0)
        else:
            continue
        m = multiply(m, t)
    return m


def parse_path(d: str) -> tuple[list[list[tuple[float, float]]], bool]:
    """SVG path data → subpaths of points (curves flattened) and whether any was closed."""
    tokens = re.findall(r"[MmLlHhVvCcSsQqTtAaZz]|" + _NUMBER.pattern, d or "")
    subpaths: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    closed = False
    x = y = 0.0
    start = (0.0, 0.0)
    last_ctrl = None
    cmd = None
    i = 0

    def nums(k):
        nonlocal i
        vals = [float(v) for v in tokens[i:i + k]]  # ValueError on "NaN": path error
        if len(vals) < k:
            raise ValueError("path data ends inside a command")
        i += k
        return vals

    try:
        while i < len(tokens):
            tok = tokens[i]
            if tok.isalpha():
                cmd = tok
                i += 1
                if cmd in "Zz":
                    closed = True
                    if current:
                        subpaths.append(current)
                    current = []
                    x, y = start
                    continue
            if cmd is None:
                break
            rel = cmd.islower()
            c = cmd.upper()
            if c == "M":
                px, py = nums(2)
                x, y = (x + px, y + py) if rel else (px, py)
                if current:
                    subpaths.append(current)
                current = [(x, y)]
                start = (x, y)
                cmd = "l" if rel else "L"  # further pairs are implicit lineto
            elif c == "L":
                px, py = nums(2)
                x, y = (x + px, y + py) if rel else (px, py)
                current.append((x, y))
            elif c == "H":
                (px,) = nums(1)
                x = x + px if rel else px
                current.append((x, y))
            elif c == "V":
                (py,) = nums(1)
                y = y + py if rel else py
                current.append((x, y))
            elif c in "CS":
                if c == "C":
                    v = nums(6)
                    pts = [(v[0], v[1]), (v[2], v[3]), (v[4], v[5])]
                else:
                    v = nums(4)
                    ctrl1 = (2 * x - last_ctrl[0], 2 * y - last_ctrl[1]) if last_ctrl else (x, y)
                    pts = [None, (v[0], v[1]), (v[2], v[3])]
                if rel:
                    pts = [None if p is None else (x + p[0], y + p[1]) for p in pts]
                if c == "S":
                    pts[0] = ctrl1
                if not current:
                    current = [(x, y)]
                current.extend(cubic_points((x, y), pts[0], pts[1], pts[2]))
                last_ctrl = pts[1]
                x, y = pts[2]
                continue
            elif c in "QT":
                if c == "Q":
                    v = nums(4)
                    ctrl, end = (v[0], v[1]), (v[2], v[3])
                    if rel:
                        ctrl, end = (x + ctrl[0], y + ctrl[1]), (x + end[0], y + end[1])
                else:
                    v = nums(2)
                    end = (x + v[0], y + v[1]) if rel else (v[0], v[1])
                    ctrl = (2 * x - last_ctrl[0], 2 * y - last_ctrl[1]) if last_ctrl else (x, y)
                if not current:
                    current = [(x, y)]
                current.extend(quad_points((x, y), ctrl, end))
                last_ctrl = ctrl
                x, y = end
                continue
            elif c == "A":
                v = nums(7)
                end = (x + v[5], y + v[6]) if rel else (v[5], v[6])
                if not current:
                    current = [(x, y)]
                current.extend(arc_points((x, y), v[0], v[1], v[2], int(v[3]), int(v[4]), end))
                x, y = end
            else:
                i += 1
            last_ctrl = None
    except ValueError:
        # SVG renders a path up to its first error (Chart.js via svgcanvas writes "NaN"
        # for a zero-radius arc): keep what came before it.
        log.debug("path data error after %d tokens", i)
    if current:
        subpaths.append(current)
    return [s for s in subpaths if s], closed


def _font_size(value: str | None, default: float = 10.0) -> float:
    if not value:
        return default
    match = _NUMBER.search(value)
    if not match:
        return default
    size = float(match.group())
    return size * 1.333 if value.strip().endswith("pt") else size


class _Walker:
    def __init__(self, root: ET.Element):
        self.sheets = StyleSheets(root)  # <style> rules, matched once per document
        self.ids = {el.get("id"): el for el in root.iter() if el.get("id")}
        self.in_glyph_run = False  # inside a text drawn as glyph outlines: keep the outlines

    def walk(self, el: ET.Element, m: Matrix, style: dict[str, str], out_shapes, out_texts,
             depth: int = 0) -> None:
        tag = _local(el.tag)
        if tag in NOT_RENDERED or depth > 60:
            return
        props = computed_style(el, style, self.sheets)
        if props.get("display") == "none" or props.get("visibility") == "hidden":
            return
        if _safe_float(props.get("opacity"), 1) == 0:
            return
        m = multiply(m, parse_transform(el.get("transform")))
        if tag in ("g", "svg", "a", "switch"):
            if tag == "svg" and depth > 0:
                m = multiply(m, (1, 0, 0, 1, _safe_float(el.get("x"), 0), _safe_float(el.get("y"), 0)))
            comment = _leading_comment(el)
            if not self.in_glyph_run and (comment is not None or _only_glyph_uses(el)):
                self._glyph_text(el, m, props, comment, out_texts)
                return
            for child in el:
                self.walk(child, m, props, out_shapes, out_texts, depth + 1)
        elif tag == "use":
            href = el.get("{http://www.w3.org/1999/xlink}href") or el.get("href") or ""
            target = self.ids.get(href.lstrip("#"))
            if target is None:
                return
            offset = (1, 0, 0, 1, _safe_float(el.get("x"), 0), _safe_float(el.get("y"), 0))
            self._render_target(target, multiply(m, offset), props, out_shapes, out_texts, depth)
        elif tag == "text":
            if _paint(props, "fill") is None and _paint(props, "stroke") is None:
                return  # an unpainted copy (Bokeh writes each label twice, once invisible)
            text = self._text(el, m, props)
            if text is not None:
                out_texts.append(text)
        else:
            shape = self._shape(el, tag, m, props)
            if shape is not None:
                out_shapes.append(shape)

    def _render_target(self, target, m, props, out_shapes, out_texts, depth):
        # A referenced definition renders as if it stood here; its own style wins.
        tag = _local(target.tag)
        if tag in ("symbol", "g"):
            own = computed_style(target, props, self.sheets)
            for child in target:
                self.walk(child, multiply(m, parse_transform(target.get("transform"))),
                          own, out_shapes, out_texts, depth + 1)
        else:
            self.walk(target, m, props, out_shapes, out_texts, depth + 1)

    def _shape(self, el, tag, m, props) -> Shape | None:
        closed = False
        if tag == "path":
            subpaths, closed = parse_path(el.get("d", ""))
        elif tag == "rect":
            x, y = _safe_float(el.get("x"), 0), _safe_float(el.get("y"), 0)
            w, h = _safe_float(el.get("width"), 0), _safe_float(el.get("height"), 0)
            if w <= 0 or h <= 0:
                return None
            subpaths, closed = [[(x, y), (x + w, y), (x + w, y + h), (x, y + h)]], True
        elif tag == "line":
            subpaths = [[(_safe_float(el.get("x1"), 0), _safe_float(el.get("y1"), 0)),
                         (_safe_float(el.get("x2"), 0), _safe_float(el.get("y2"), 0))]]
        elif tag in ("polyline", "polygon"):
            vals = [float(v) for v in _NUMBER.findall(el.get("points", ""))]
            subpaths = [list(zip(vals[0::2], vals[1::2]))]
            closed = tag == "polygon"
        elif tag in ("circle", "ellipse"):
            cx, cy = _safe_float(el.get("cx"), 0), _safe_float(el.get("cy"), 0)
            rx = _safe_float(el.get("r") or el.get("rx"), 0)
            ry = _safe_float(el.get("r") or el.get("ry"), 0)
            if rx <= 0 or ry <= 0:
                return None
            subpaths = [[(cx + rx * math.cos(t * math.pi / 8), cy + ry * math.sin(t * math.pi / 8))
                         for t in range(16)]]
            closed = True
        else:
            return None
        subpaths = [[apply(m, x, y) for x, y in sub] for sub in subpaths if sub]
        if not subpaths:
            return None
        fill = _paint(props, "fill")
        stroke = _paint(props, "stroke")
        width = _font_size(props.get("stroke-width"), 1.0) * math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
        if stroke is not None and width <= 0:
            stroke = None
        if fill is None and stroke is None:
            return None
        hint = el.get("class") or el.get("id") or ""
        return Shape(subpaths, fill=fill, stroke=stroke, stroke_width=width, closed=closed,
                     hint=hint)

    def _text(self, el, m, props) -> Text | None:
        string = " ".join("".join(el.itertext()).split())
        if not string:
            return None
        size = _font_size(props.get("font-size"), 10.0)
        x = _safe_float((el.get("x") or "0").replace(",", " ").split()[0] if el.get("x") else 0, 0)
        y = _safe_float((el.get("y") or "0").replace(",", " ").split()[0] if el.get("y") else 0, 0)
        for child in el:  # plotly/D3 put the position on the first tspan sometimes
            if _local(child.tag) == "tspan" and el.get("x") is None and child.get("x"):
                x = _safe_float(child.get("x"), 0)
                y = _safe_float(child.get("y"), y)
            break
        width = 0.58 * size * len(string)
        anchor = props.get("text-anchor", "start")
        left = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
        # Local box around the glyphs: cap height centred ~0.35 em above the baseline.
        corners = [(left, y - 0.85 * size), (left + width, y - 0.85 * size),
                   (left, y + 0.15 * size), (left + width, y + 0.15 * size)]
        pts = [apply(m, px, py) for px, py in corners]
        rotation = math.degrees(math.atan2(m[1], m[0]))
        scale = math.hypot(m[0], m[1])
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        # Vega flushes the first and last axis labels (anchor start/end) to the axis ends:
        # the tick is at the anchor point, not under the label's middle.
        anchor_x = apply(m, x, y)[0] if anchor in ("start", "end") and abs(rotation) < 1 else None
        return Text(string, min(xs), min(ys), max(xs), max(ys), size=size * scale,
                    rotation=-rotation, anchor_x=anchor_x)

    def _glyph_text(self, el, m, props, comment, out_texts) -> None:
        shapes: list[Shape] = []
        texts: list[Text] = []
        glyph_chars = []
        for child in el.iter():
            if _local(child.tag) == "use":
                href = child.get("{http://www.w3.org/1999/xlink}href") or child.get("href") or ""
                match = GLYPH_ID.match(href)
                glyph_chars.append(chr(int(match.group(1), 16)) if match else "")
        self.in_glyph_run = True
        try:
            for child in el:
                if isinstance(child.tag, str):
                    self.walk(child, m, props, shapes, texts, 1)
        finally:
            self.in_glyph_run = False
        string = comment if comment is not None else "".join(glyph_chars)
        string = " ".join(string.split())
        if texts and comment is None:  # a plain group that happened to hold text elements
            out_texts.extend(texts)
            return
        pts = [p for s in shapes for p in s.points]
        if texts and not pts:
            # mathtext with svg.fonttype='none': <text>/<tspan> pieces; the comment holds
            # the whole label, the pieces give its box.
            pts = [(t.x0, t.y0) for t in texts] + [(t.x1, t.y1) for t in texts]
            if string:
                box = (min(p[0] for p in pts), min(p[1] for p in pts),
                       max(p[0] for p in pts), max(p[1] for p in pts))
                out_texts.append(Text(string, *box, size=max(t.size for t in texts),
                                      rotation=texts[0].rotation))
            return
        if not string or not pts:
            return
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        inner = _first_group_matrix(el, m)
        rotation = -math.degrees(math.atan2(inner[1], inner[0]))
        box = (min(xs), min(ys), max(xs), max(ys))
        size = (box[2] - box[0]) if abs(abs(rotation) - 90) < 20 else (box[3] - box[1])
        out_texts.append(Text(string, *box, size=max(size, 1.0) * 1.2, rotation=rotation))


def _first_group_matrix(el, m):
    for child in el:
        if _local(child.tag) == "g":
            return multiply(m, parse_transform(child.get("transform")))
    return m


def _leading_comment(el: ET.Element) -> str | None:
    for child in el:
        if child.tag is ET.Comment:
            return (child.text or "").strip()
        return None
    return None


def _only_glyph_uses(el: ET.Element) -> bool:
    uses = [c for c in el.iter() if _local(c.tag) == "use"]
    if not uses:
        return False
    hrefs = [c.get("{http://www.w3.org/1999/xlink}href") or c.get("href") or "" for c in uses]
    shapes = [c for c in el.iter() if _local(c.tag) in ("path", "rect", "text")]
    # Glyph runs are groups of uses only (defs of glyph outlines are not drawn themselves).
    return all(GLYPH_ID.match(h) for h in hrefs) and all(
        _is_in_defs(el, s) for s in shapes)


def _is_in_defs(group: ET.Element, target: ET.Element) -> bool:
    for defs in group.iter():
        if _local(defs.tag) == "defs" and any(t is target for t in defs.iter()):
            return True
    return False


def _paint(props: dict[str, str], which: str) -> str | None:
    """The computed fill or stroke as '#rrggbb', None where nothing is painted."""
    paint = resolve_paint(props.get(which), props)
    if paint is None:
        return None
    color, alpha = paint
    return None if alpha * _safe_float(props.get(which + "-opacity"), 1) <= 0 else color


def _safe_float(value, default: float) -> float:
    try:
        match = _NUMBER.search(str(value))
        return float(match.group()) if match else default
    except (TypeError, ValueError):
        return default


def _xml_from_html(markup: str) -> str:
    import html.entities

    def entity(match: re.Match) -> str:
        name = match.group(1)
        if name in ("amp", "lt", "gt", "quot", "apos"):
            return match.group(0)
        char = html.entities.html5.get(name + ";")
        return char if char else match.group(0)

    markup = re.sub(r"&([A-Za-z][A-Za-z0-9]*);", entity, markup)
    head_end = markup.find(">")
    head = markup[:head_end]
    extra = ""
    if "xlink:" in markup and "xmlns:xlink" not in head:
        extra += ' xmlns:xlink="http://www.w3.org/1999/xlink"'
    if "xmlns=" not in head:
        extra += ' xmlns="http://www.w3.org/2000/svg"'
    if extra and head.startswith("<svg"):
        markup = "<svg" + extra + markup[4:]
    return markup


def parse_svg(markup: str | bytes) -> Scene:
    """Parse SVG markup (a whole document or one ``<svg>`` element) into a Scene."""
    if isinstance(markup, bytes):
        markup = markup.decode("utf-8", "replace")
    markup = re.sub(r"<!DOCTYPE[^>]*>", "", markup, count=1)
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    try:
        root = ET.fromstring(markup.strip(), parser=parser)
    except ET.ParseError:
        # A browser's outerHTML is HTML serialisation: undeclared xlink:/xml: prefixes,
        # HTML named entities. Repair those and try once more.
        parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
        try:
            root = ET.fromstring(_xml_from_html(markup.strip()), parser=parser)
        except ET.ParseError as exc:  # callers handle ValueError for every bad input
            raise ValueError(f"not valid SVG markup: {exc}") from exc
    if _local(root.tag) != "svg":
        found = next((el for el in root.iter() if _local(el.tag) == "svg"), None)
        if found is None:
            raise ValueError("no <svg> element in markup")
        root = found
    width = _safe_float(root.get("width"), 0)
    height = _safe_float(root.get("height"), 0)
    m = IDENTITY
    view_box = [float(v) for v in _NUMBER.findall(root.get("viewBox") or "")]
    if len(view_box) == 4:
        # Stay in viewBox units (matplotlib: points); only the origin is moved.
        m = (1, 0, 0, 1, -view_box[0], -view_box[1])
        width, height = view_box[2], view_box[3]
    walker = _Walker(root)
    shapes: list[Shape] = []
    texts: list[Text] = []
    for child in root:
        walker.walk(child, m, {}, shapes, texts, 1)
    if not width or not height:
        pts = [p for s in shapes for p in s.points] or [(1.0, 1.0)]
        width = width or max(p[0] for p in pts)
        height = height or max(p[1] for p in pts)
    return Scene(width=width, height=height, texts=texts, shapes=shapes)


def scenes_from_svgs(svgs: list[dict]) -> list[tuple[list[float], Scene]]:
    """Scenes from page SVGs (``{"markup", "box"}``, box in page px), layered ones merged.

    Libraries such as plotly.js stack several ``<svg>`` layers over one chart (marks in
    one, legend and titles in another); SVGs whose boxes coincide are one chart.
    Returns ``(box, scene)`` pairs with scene coordinates in page pixels minus box origin.
    """
    groups: list[tuple[list[float], list[dict]]] = []
    for svg in svgs:
        box = [float(v) for v in svg.get("box") or [0, 0, 0, 0]]
        if box[2] <= 0 or box[3] <= 0:
            continue  # off-screen helpers (plotly's measuring svg)
        for gbox, members in groups:
            if _overlap(gbox, box) > 0.8:
                members.append(svg)
                break
        else:
            groups.append((box, [svg]))
    out = []
    for gbox, members in groups:
        merged: Scene | None = None
        for svg in members:
            try:
                scene = parse_svg(svg["markup"])
            except (ET.ParseError, ValueError) as exc:
                log.info("unparsable svg skipped: %s", exc)
                continue
            box = [float(v) for v in svg.get("box") or gbox]
            sx = (box[2] - box[0]) / scene.width if scene.width and box[2] > box[0] else 1.0
            sy = (box[3] - box[1]) / scene.height if scene.height and box[3] > box[1] else 1.0
            dx, dy = box[0] - gbox[0], box[1] - gbox[1]
            if (sx, sy, dx, dy) != (1.0, 1.0, 0.0, 0.0):
                _transform_scene(scene, sx, sy, dx, dy)
            if merged is None:
                merged = Scene(gbox[2] - gbox[0], gbox[3] - gbox[1], [], [])
            merged.texts.extend(scene.texts)
            merged.shapes.extend(scene.shapes)
        if merged is not None:
            out.append((gbox, merged))
    return out


def _transform_scene(scene: Scene, sx: float, sy: float, dx: float, dy: float) -> None:
    for shape in scene.shapes:
        shape.subpaths = [[(x * sx + dx, y * sy + dy) for x, y in sub] for sub in shape.subpaths]
    for t in scene.texts:
        t.x0, t.x1 = t.x0 * sx + dx, t.x1 * sx + dx
        t.y0, t.y1 = t.y0 * sy + dy, t.y1 * sy + dy
        t.size *= sy


def _overlap(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
