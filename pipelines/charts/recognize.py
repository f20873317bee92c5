"""Read a chart out of a `Scene`: axes from tick labels, marks mapped through the scales.

Order of work: (1) numeric tick labels in a column (y axis) or a row (x axis), snapped to
the exact tick marks or gridlines next to them and fitted to a scale (`axes.py`);
(2) category labels along the other axis; (3) title, axis titles and the legend (a text
with a small coloured handle to its left, giving each series colour a name);
(4) the marks that remain — bars (filled rectangles on a common baseline), lines (open
strokes), markers (small closed shapes), areas (filled polygons), wedges (pie, no axes) —
grouped into series by colour and mapped to values. Nothing is guessed: a chart whose
axes cannot be fitted is returned with ``recovered=False`` and no series.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

from pipelines.charts.axes import AxisScale, fit_scale, parse_tick_value
from pipelines.charts.scene import Scene, Shape, Text, is_light

log = logging.getLogger(__name__)


@dataclass
class Axis:
    """One axis: numeric (a scale) or categorical (labels at positions)."""

    orient: str  # "x" or "y"
    labels: list[Text]
    positions: list[float]
    scale: AxisScale | None = None

    @property
    def categorical(self) -> bool:
        return self.scale is None

    def categories(self) -> list[tuple[float, str]]:
        return sorted(zip(self.positions, (t.text for t in self.labels)))

    def nearest_category(self, pos: float) -> str:
        return min(self.categories(), key=lambda c: abs(c[0] - pos))[1]

    def span(self) -> tuple[float, float]:
        return (min(self.positions), max(self.positions))


@dataclass
class Layout:
    x: Axis | None = None
    y: Axis | None = None
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None
    legend: dict[str, str] = field(default_factory=dict)  # colour -> series name
    used_texts: set[int] = field(default_factory=set)
    handles: set[int] = field(default_factory=set)  # ids of legend handle shapes


def _num(v: float) -> float:
    """A value rounded to 6 significant digits (geometry carries float noise)."""
    if v == 0 or not math.isfinite(v):
        return 0.0 if v == 0 else v
    return float(f"{v:.6g}")


def _segment(shape: Shape) -> tuple[str, float, float, float] | None:
    """('h', y, x0, x1) / ('v', x, y0, y1) for an axis-aligned straight stroke, else None."""
    pts = shape.points
    if len(shape.subpaths) != 1 or len(pts) < 2 or len(pts) > 3:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if max(ys) - min(ys) < 0.05 and max(xs) - min(xs) > 0.05:
        return ("h", ys[0], min(xs), max(xs))
    if max(xs) - min(xs) < 0.05 and max(ys) - min(ys) > 0.05:
        return ("v", xs[0], min(ys), max(ys))
    return None


def _cluster(items: list, key, tol: float) -> list[list]:
    items = sorted(items, key=key)
    groups: list[list] = []
    for it in items:
        if groups and abs(key(it) - key(groups[-1][-1])) <= tol:
            groups[-1].append(it)
        else:
            groups.append([it])
    return groups


class ChartReader:
    """Recognise the charts drawn in one Scene (one chart per scene for now)."""

    def __init__(self, scene: Scene):
        self.scene = _split_rules(scene)
        scene = self.scene
        self.segments = [(s, seg) for s in scene.shapes if (seg := _segment(s))]

    # -- axes ----------------------------------------------------------------------------
    def _snap(self, orient: str, label: Text, pos: float) -> float:
        """Move an approximate tick position onto the tick mark or gridline beside it."""
        return self._nearest_rule(orient, label, pos)[0]

    def _tick_x(self, label: Text) -> float:
        """Where an x label's tick is: under its middle, or at its text anchor when the label
        is start/end-anchored and a tick stands there, not under the middle (Vega flushes
        the end labels to the axis ends; Bokeh writes centred labels with a start anchor)."""
        center = _label_anchor_x(label)
        if label.anchor_x is None:
            return center
        d_center = self._nearest_rule("x", label, center)[1]
        d_anchor = self._nearest_rule("x", label, label.anchor_x)[1]
        if d_anchor is not None and (d_center is None or d_anchor < d_center):
            return label.anchor_x
        return center

    def _nearest_rule(self, orient: str, label: Text, pos: float) -> tuple[float, float | None]:
        """(snapped position, distance moved) — distance None when no rule is near."""
        want = "h" if orient == "y" else "v"
        tol = max(0.6 * label.size, 2.0)
        best, best_d, found = pos, tol, False
        for _, (kind, at, lo, hi) in self.segments:
            if kind != want:
                continue
            d = abs(at - pos)
            if d >= best_d:
                continue
            if orient == "y":  # tick to the right of the label, or a gridline passing it
                near = lo - 3 * label.size <= label.x1 <= hi + 0.5 * label.size or lo >= label.x1 - 1
                if not near or lo > label.x1 + 4 * label.size:
                    continue
            else:
                near = lo - 0.5 * label.size <= label.y0 <= hi + 3 * label.size or hi <= label.y0 + 1
                if not near or hi < label.y0 - 4 * label.size:
                    continue
            best, best_d, found = at, d, True
        return best, (best_d if found else None)

    def _numeric_axis(self, orient: str, texts: list[Text]) -> Axis | None:
        numeric = [(t, v) for t in texts if not t.vertical
                   and (v := parse_tick_value(t.text)) is not None]
        if orient == "y":  # a column of labels: right-aligned (or centred) at one x
            groups = _cluster(numeric, key=lambda tv: tv[0].x1, tol=3.0)
            groups += _cluster(numeric, key=lambda tv: tv[0].cx, tol=3.0)
        else:
            groups = _cluster(numeric, key=lambda tv: tv[0].cy, tol=3.0)
        best: Axis | None = None
        for group in groups:
            powers = all("^" in t.text or "⁰" in t.text or "¹" in t.text for t, _ in group)
            if len(group) < 3 and not powers:
                continue  # two numbers line up by chance in prose; axes have 3+ ticks
            if any(len(re.sub(r"\\mathdefault|[${}\\]", "", t.text)) > 14 for t, _ in group):
                continue
            labels = [t for t, _ in group]
            raw = [t.cy if orient == "y" else self._tick_x(t) for t in labels]
            if len({round(p, 1) for p in raw}) < len(raw):
                continue  # two labels at one position: not ticks along this axis
            positions = [self._snap(orient, t, p) for t, p in zip(labels, raw)]
            vals = [v for _, v in group]
            scale = fit_scale(list(zip(positions, vals)), prefer_log=powers)
            log_minor = scale is not None and scale.kind == "log" and scale.residual < 0.005 \
                and (len(group) >= 4 or powers)  # 1, 2, 3, 5, 10: log ticks with minor labels
            if scale is not None and not log_minor and not _evenly_stepped(positions, vals, scale.kind):
                continue  # page numbers, table cells: axis ticks step evenly
            if scale is None:
                vals = _expand_log_mantissas(positions, vals, orient)
                scale = fit_scale(list(zip(positions, vals))) if vals else None
                if scale is None or scale.kind != "log":
                    continue
            axis = Axis(orient, labels, positions, scale)
            if best is None or len(labels) > len(best.labels):
                best = axis
        return best

    def _category_axis(self, orient: str, texts: list[Text], edge: float,
                       other_span: tuple[float, float] | None) -> Axis | None:
        """Labels in a row under the plot (x) or a column left of it (y)."""
        if orient == "x":
            cand = [t for t in texts if t.cy >= edge + 2]
            rows = _cluster(cand, key=lambda t: t.y0, tol=max(3.0, 0.4 * _median_size(cand)))
            rows = [r for r in rows if len(r) >= 1 and not (len(r) == 1 and r[0].vertical)]
            if not rows:
                return None
            # The tick row is the fullest one near the axis (a legend label or the axis
            # title may sit lower or higher, alone).
            multi = [r for r in rows if len(r) >= 2]
            row = max(multi, key=lambda r: (len(r), -r[0].y0)) if multi else rows[0]
            if len(row) == 1 and len(rows) > 1 and other_span is None:
                return None
            row = self._split_on_ticks(row, edge)
            labels = sorted(row, key=lambda t: t.cx)
            positions = [self._snap("x", t, self._tick_x(t)) for t in labels]
        else:
            cand = [t for t in texts if t.x1 <= edge + 1 and not t.vertical]
            # Right edges of <text> boxes are estimates (no font metrics): allow about
            # one em of spread in a right-aligned column.
            cols = _cluster(cand, key=lambda t: t.x1, tol=max(4.0, _median_size(cand)))
            cols = [c for c in cols if len(c) >= 2] or [c for c in cols if c]
            if not cols:
                return None
            col = cols[-1]  # the column nearest the plot
            labels = sorted(col, key=lambda t: t.cy)
            positions = [self._snap("y", t, t.cy) for t in labels]
        if other_span is not None:
            lo, hi = other_span
            pad = 0.2 * (hi - lo) + 20
            keep = [(t, p) for t, p in zip(labels, positions) if lo - pad <= p <= hi + pad]
            if not keep:
                return None
            labels, positions = [k[0] for k in keep], [k[1] for k in keep]
        return Axis(orient, labels, positions, None)

    def _split_on_ticks(self, row: list[Text], edge: float) -> list[Text]:
        """Labels that collide on one baseline come out of PDFs as one span ("PlumsCherries");
        when a span with glyph boxes covers several x tick marks, cut it between them."""
        ticks = sorted(at for _, (kind, at, lo, hi) in self.segments
                       if kind == "v" and hi - lo < 12 and lo <= edge + 2 and hi >= edge - 2)
        out = []
        for text in row:
            inside = [x for x in ticks if text.x0 < x < text.x1]
            if len(inside) < 2 or not text.chars:
                out.append(text)
                continue
            cuts = [(a + b) / 2 for a, b in zip(inside, inside[1:])]
            chars = text.chars
            # Break candidates: glyphs overlapping (two labels collide), a gap, or a
            # lower→upper case step; each cut takes the candidate nearest to it.
            breaks = [i for i in range(1, len(chars))
                      if chars[i][1] < chars[i - 1][2] - 0.3 or chars[i][1] > chars[i - 1][2] + 0.05
                      or (chars[i - 1][0].islower() and chars[i][0].isupper())]
            pool = breaks or list(range(1, len(chars)))
            at = sorted({min(pool, key=lambda i: abs(chars[i][1] - c)) for c in cuts})
            bounds = [0, *at, len(chars)]
            pieces = [chars[a:b] for a, b in zip(bounds, bounds[1:])]
            for piece in pieces:
                string = "".join(c for c, _, _ in piece).strip()
                if string:
                    out.append(Text(string, min(p[1] for p in piece), text.y0,
                                    max(p[2] for p in piece), text.y1, size=text.size,
                                    rotation=text.rotation, chars=piece))
        return out

    def layout(self) -> Layout:
        texts = self.scene.texts
        lay = Layout()
        y_num = self._numeric_axis("y", texts)
        x_num = self._numeric_axis("x", texts)
        if x_num and y_num:
            # A row of numbers inside a y column is the column itself, not an x axis.
            if set(map(id, x_num.labels)) & set(map(id, y_num.labels)):
                x_num = None if len(x_num.labels) <= len(y_num.labels) else x_num
                y_num = y_num if x_num is None else None
        if x_num and y_num and min(t.cy for t in x_num.labels) < max(y_num.positions):
            x_num = None  # numbers above the lowest y tick are data labels, not the x axis
        lay.x, lay.y = x_num, y_num
        if y_num and not x_num:
            edge = max(y_num.positions)
            lay.x = self._category_axis("x", [t for t in texts if id(t) not in _ids(y_num.labels)
                                             and t.cx > min(l.x0 for l in y_num.labels)],
                                        edge, None)
        elif x_num and not y_num:
            edge = min(x_num.positions)  # labels of a category column end left of the plot
            lay.y = self._category_axis("y", [t for t in texts if id(t) not in _ids(x_num.labels)
                                             and t.y1 < min(l.y0 for l in x_num.labels) + 1],
                                        edge, None)
        for axis in (lay.x, lay.y):
            if axis:
                lay.used_texts |= _ids(axis.labels)
        self._legend(lay)  # first: a legend label may sit above the plot like a title
        self._titles(lay)
        return lay

    def _plot_box(self, lay: Layout) -> tuple[float, float, float, float]:
        """The data region: right of the y labels, above the x labels (page units)."""
        x0 = max(t.x1 for t in lay.y.labels) if lay.y else 0.0
        # Label centres, not tops: PDF spans carry the full line height above the glyphs.
        y1 = min(t.cy for t in lay.x.labels) - 2 if lay.x else self.scene.height
        ys = lay.y.positions if lay.y else []
        xs = lay.x.positions if lay.x else []
        y0 = min(ys) - 0.15 * (max(ys) - min(ys)) - 5 if ys else 0.0
        x1 = max(xs) + 0.15 * (max(xs) - min(xs)) + 5 if xs else self.scene.width
        return (x0, y0, x1, y1)

    def _titles(self, lay: Layout) -> None:
        rest = [t for t in self.scene.texts if id(t) not in lay.used_texts]
        if not rest:
            return
        top_tick = min(lay.y.positions) if lay.y else None
        x_row_bottom = max(t.y1 for t in lay.x.labels) if lay.x else None
        y_col_left = min(t.x0 for t in lay.y.labels) if lay.y else None
        # y title: a vertical text left of the y tick labels
        cands = [t for t in rest if t.vertical and (y_col_left is None or t.cx < y_col_left)]
        if cands:
            pick = min(cands, key=lambda t: t.cx if y_col_left is None else y_col_left - t.cx)
            lay.y_label = pick.text
            lay.used_texts.add(id(pick))
        # x title: below the x tick labels
        if x_row_bottom is not None:
            row_cy = max(t.cy for t in lay.x.labels)
            cands = [t for t in rest if not t.vertical and t.cy > row_cy + 0.6 * t.size
                     and id(t) not in lay.used_texts]
            if cands:
                pick = min(cands, key=lambda t: t.y0)
                lay.x_label = pick.text
                lay.used_texts.add(id(pick))
        # title: the largest text above the plot
        if top_tick is not None:
            cands = [t for t in rest if not t.vertical and t.cy < top_tick
                     and id(t) not in lay.used_texts]
            if cands:
                pick = max(cands, key=lambda t: (round(t.size, 1), -t.y0))
                if pick.size >= _median_size(self.scene.texts) * 1.05 or pick.y1 < top_tick - pick.size:
                    lay.title = pick.text
                    lay.used_texts.add(id(pick))
        # horizontal y title (plotly may place it above the axis) is left alone.

    def _legend(self, lay: Layout) -> None:
        rest = [t for t in self.scene.texts if id(t) not in lay.used_texts and not t.vertical]
        for text in rest:
            best, best_d = None, None
            for shape in self.scene.shapes:
                x0, y0, x1, y1 = shape.bbox
                if x1 > text.x0 + 1 or x1 < text.x0 - 2.5 * text.size:
                    continue
                if x1 - x0 > 3.5 * text.size or y1 - y0 > 1.6 * text.size:
                    continue
                if abs((y0 + y1) / 2 - text.cy) > 0.5 * text.size:
                    continue
                color = _mark_color(shape)
                if color is None or is_light(color):
                    continue
                d = text.x0 - x1
                if best_d is None or d < best_d:
                    best, best_d = shape, d
            if best is None:
                continue
            bx0, by0, bx1, by1 = best.bbox
            for shape in self.scene.shapes:  # the handle's line and marker share a colour
                if _mark_color(shape) != _mark_color(best):
                    continue
                x0, y0, x1, y1 = shape.bbox
                if x0 <= bx1 + 1 and x1 >= bx0 - 1 and y0 <= by1 + 1 and y1 >= by0 - 1 and \
                        x1 - x0 <= 4 * text.size and y1 - y0 <= 2 * text.size:
                    lay.handles.add(id(shape))
            lay.legend.setdefault(_mark_color(best), text.text)
            lay.used_texts.add(id(text))

    # -- marks ---------------------------------------------------------------------------
    def read(self) -> dict:
        wedges = self._disk_wedges()
        if wedges:  # a pie: its percentage labels must not pass for an axis
            lay = Layout()
            self._legend(lay)
            pie = self._pie(lay, wedges)
            if pie:
                return pie
        lay = self.layout()
        numeric_axes = [a for a in (lay.x, lay.y) if a and not a.categorical]
        if not numeric_axes:
            return self._chart("unknown", lay, [], recovered=False)
        box = self._plot_box(lay)
        legend_texts = [t for t in self.scene.texts if t.text in set(lay.legend.values())]
        max_frame = 0.6 * (box[2] - box[0])
        marks = [s for s in self.scene.shapes if id(s) not in lay.handles and self._inside(s, box)
                 and not (s.width < max_frame and _holds_text(s, legend_texts))]
        bars, lines, markers, areas = self._classify(marks, lay, box)
        if bars:
            chart = self._bars(bars, lay)
            bar_colors = {b.fill for b in bars}
            overlay = [ln for ln in lines if ln.stroke not in bar_colors]
            if overlay and lay.y is not None and not lay.y.categorical and \
                    self._on_categories(overlay, lay):
                # A line drawn over bars (a combo chart): its series, marked as lines.
                for series in self._lines(overlay, markers, lay)["series"]:
                    chart["series"].append({**series, "mark": "line"})
            return chart
        # Lines, areas and scatters plot values upwards: the y axis must be numeric, and
        # on a category x axis every vertex must stand on a category.
        if lay.y is None or lay.y.categorical:
            return self._chart("unknown", lay, [], recovered=False)
        if areas and self._on_categories(areas, lay):
            return self._areas(areas, lay)
        if lines and self._on_categories(lines, lay):
            return self._lines(lines, markers, lay)
        if markers and self._on_categories(markers, lay, centers=True):
            return self._scatter(markers, lay)
        return self._chart("unknown", lay, [], recovered=False)

    @staticmethod
    def _on_categories(shapes: list[Shape], lay: Layout, centers: bool = False) -> bool:
        if lay.x is None or not lay.x.categorical:
            return True
        pos = sorted(lay.x.positions)
        if len(pos) < 2:
            return False
        tol = 0.1 * min(b - a for a, b in zip(pos, pos[1:]))
        xs = [(s.bbox[0] + s.bbox[2]) / 2 for s in shapes] if centers else \
            [x for s in shapes for x, _ in s.points]
        return all(min(abs(x - p) for p in pos) <= tol for x in xs)

    def _inside(self, shape: Shape, box) -> bool:
        x0, y0, x1, y1 = shape.bbox
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        w, h = x1 - x0, y1 - y0
        if abs(w - h) <= 0.1 * max(w, h) and max(w, h) <= 0.2 * min(box[2] - box[0], box[3] - box[1]):
            # A bubble near an axis reaches past it (clipped there): its centre decides.
            return box[0] - 0.5 <= cx and cy <= box[3] + 0.5
        return box[0] - 0.5 <= cx and cy <= box[3] + 0.5 and x0 >= box[0] - 1 and y1 <= box[3] + 1

    def _classify(self, marks: list[Shape], lay: Layout, box):
        bw = max(1.0, box[2] - box[0])
        bh = max(1.0, box[3] - box[1])
        xs = lay.x.span() if lay.x else (box[0], box[2])
        ys = lay.y.span() if lay.y else (box[1], box[3])
        span_w = max(1.0, xs[1] - xs[0])
        span_h = max(1.0, ys[1] - ys[0])
        size = _median_size(self.scene.texts) or 10.0
        # Symbols are small next to the plot; bubbles grow to a fifth of it but stay round.
        mark_limit = max(2.2 * size, 0.2 * min(bw, bh))
        bars, lines, markers, areas = [], [], [], []
        for s in marks:
            seg = _segment(s)
            x0, y0, x1, y1 = s.bbox
            w, h = x1 - x0, y1 - y0
            symbol = (w <= 2.2 * size and h <= 2.2 * size) or (
                w <= mark_limit and h <= mark_limit and abs(w - h) <= 0.1 * max(w, h))
            if seg is None and _is_frame(s, bw, bh):
                continue  # axis domain lines and plot frames (D3's "M0.5,6V0.5H580.5V6")
            if seg is not None and s.fill is None or (seg is not None and len(s.points) == 2):
                kind, _, lo, hi = seg
                length = hi - lo
                gray = _is_gray(s.stroke or s.fill)
                if length < 0.9 * size:
                    continue  # tick marks
                if gray and length >= 0.6 * (span_w if kind == "h" else span_h):
                    continue  # gridlines, spines, zero lines
                if s.stroke and not is_light(s.stroke) and not gray:
                    lines.append(s)  # straight gray/black rules are frames, not data
                continue
            if s.is_rect():
                covers = x0 <= xs[0] + 0.5 and x1 >= xs[1] - 0.5 and y0 <= ys[0] + 0.5 and \
                    y1 >= ys[1] - 0.5 and (xs[1] > xs[0] or ys[1] > ys[0])
                if is_light(s.fill) or covers:
                    continue  # backgrounds (they span every tick), legend frames
                bars.append(s)
                continue
            if s.fill is not None and not is_light(s.fill) and s.closed or (
                    s.fill is not None and not is_light(s.fill) and s.stroke is None):
                if symbol and len(s.subpaths) <= 2:
                    markers.append(s)
                elif len(s.points) >= 4:
                    areas.append(s)
                continue
            if s.fill is not None and not is_light(s.fill) and symbol:
                markers.append(s)
                continue
            if s.stroke is not None and s.fill is None and symbol and _closed_outline(s) and \
                    not is_light(s.stroke):
                markers.append(s)  # hollow symbols: stroked outlines of circles, squares...
                continue
            if s.stroke is not None and not is_light(s.stroke) and s.fill is None and len(s.points) >= 2:
                lines.append(s)
            elif s.stroke is not None and s.fill is not None and is_light(s.fill) and \
                    w <= 2.2 * size and h <= 2.2 * size:
                markers.append(s)  # hollow markers
        # Markers sitting on a line's vertices belong to that line.
        bars = [b for b in bars if not self._is_marker_square(b, size, lay)]
        return bars, lines, markers, areas

    def _is_marker_square(self, rect: Shape, size: float, lay: Layout) -> bool:
        x0, y0, x1, y1 = rect.bbox
        if x1 - x0 > 1.5 * size or y1 - y0 > 1.5 * size or abs((x1 - x0) - (y1 - y0)) > 0.5:
            return False
        base = self._baseline(lay.y) if lay.y and not lay.y.categorical else None
        return base is None or (abs(y1 - base) > 0.5 and abs(y0 - base) > 0.5)

    @staticmethod
    def _baseline(axis: Axis) -> float | None:
        scale = axis.scale
        if scale is None:
            return None
        if scale.kind == "log":
            return None
        return scale.position(0.0)

    def _bars(self, bars: list[Shape], lay: Layout) -> dict:
        vertical = lay.y is not None and not lay.y.categorical and (lay.x is None or lay.x.categorical
                                                                   or self._bars_vertical(bars, lay))
        val_axis = lay.y if vertical else lay.x
        cat_axis = lay.x if vertical else lay.y
        base = self._baseline(val_axis)
        tick_slots = cat_axis is not None and not cat_axis.categorical and \
            self._bars_on_ticks(bars, cat_axis, vertical)
        per_series: dict[str, list] = defaultdict(list)
        by_slot: dict[str, list] = defaultdict(list)
        for bar in bars:
            x0, y0, x1, y1 = bar.bbox
            if vertical:
                far, near, center = y0, y1, (x0 + x1) / 2
            else:
                far, near, center = x1, x0, (y0 + y1) / 2
            v_far, v_near = val_axis.scale.value(far), val_axis.scale.value(near)
            if val_axis.scale.kind == "log" or base is None:
                value = v_far
            elif abs(near - base) < 0.75:
                # The bar's length, not its far edge alone: D3, Vega and ECharts draw axes
                # half a pixel off the marks (crisp 1px rules), which a small bar feels.
                value = v_far - v_near
            elif abs(far - base) < 0.75:
                value = v_near - v_far  # a negative bar hangs from the baseline
            else:
                value = v_far - v_near  # a stacked segment
            if cat_axis is not None and (cat_axis.categorical or tick_slots):
                label = cat_axis.nearest_category(center)
            elif cat_axis is not None:
                label = _num(cat_axis.scale.value(center))
            else:
                label = _num(center)
            color = bar.fill
            per_series[color].append((center, label, value))
            by_slot[label].append((color, center, near))
        stacked = any(len({c for c, _, _ in v}) > 1 and
                      max(x for _, x, _ in v) - min(x for _, x, _ in v) < 0.5 for v in by_slot.values())
        grouped = not stacked and any(len(v) > 1 for v in by_slot.values())
        if not grouped and not stacked and len(per_series) > 1:
            # One bar per category in several colours is still one series.
            merged = [item for items in per_series.values() for item in items]
            per_series = {next(iter(per_series)): merged}
        kind = "stacked_bar" if stacked else "grouped_bar" if grouped else "bar"
        if not vertical:
            kind = "horizontal_" + kind if kind != "bar" else "horizontal_bar"
        series = []
        for index, (color, items) in enumerate(per_series.items()):
            items.sort(key=lambda it: it[0] if vertical else -it[0])
            series.append({"name": lay.legend.get(color) or (f"series {index + 1}" if len(per_series) > 1 else None),
                           "color": color,
                           "points": [{"x": lab, "y": _num(val)} for _, lab, val in items]})
        return self._chart(kind, lay, series, recovered=True)

    @staticmethod
    def _bars_on_ticks(bars: list[Shape], axis: Axis, vertical: bool) -> bool:
        """Bars (or groups of bars) standing on numeric ticks (years): read the tick labels."""
        pos = sorted(axis.positions)
        if len(pos) < 2:
            return False
        step = min(b - a for a, b in zip(pos, pos[1:]))
        # One series stands centred on its ticks; a group of bars of several colours
        # spreads around its tick. (Bars between ticks stand on a value, not a tick.)
        reach = 0.15 if len({b.fill for b in bars}) == 1 else 0.5
        hit = set()
        for bar in bars:
            x0, y0, x1, y1 = bar.bbox
            center = (x0 + x1) / 2 if vertical else (y0 + y1) / 2
            nearest = min(range(len(pos)), key=lambda i: abs(pos[i] - center))
            if abs(pos[nearest] - center) > reach * step:
                return False
            hit.add(nearest)
        return len(hit) >= 0.6 * len(pos)

    def _bars_vertical(self, bars, lay) -> bool:
        # Bars of one chart share their thickness; their length carries the value.
        widths = {round(b.width, 1) for b in bars}
        heights = {round(b.height, 1) for b in bars}
        if len(widths) == 1 and len(heights) > 1:
            return True
        if len(heights) == 1 and len(widths) > 1:
            return False
        # Both axes numeric (years under the bars): bars stand on the ticks they label.
        on_x = self._bars_on_ticks(bars, lay.x, True)
        on_y = self._bars_on_ticks(bars, lay.y, False)
        if on_x != on_y:
            return on_x
        base_y = self._baseline(lay.y)
        if base_y is None:
            return True
        return sum(abs(b.bbox[3] - base_y) < 0.75 or abs(b.bbox[1] - base_y) < 0.75
                   for b in bars) >= len(bars) / 2

    def _map_x(self, lay: Layout, x: float):
        if lay.x is None:
            return _num(x)
        if lay.x.categorical:
            return lay.x.nearest_category(x)
        return _num(lay.x.scale.value(x))

    def _map_y(self, lay: Layout, y: float):
        if lay.y is None:
            return _num(y)
        if lay.y.categorical:
            return lay.y.nearest_category(y)
        return _num(lay.y.scale.value(y))

    def _lines(self, lines: list[Shape], markers: list[Shape], lay: Layout) -> dict:
        series = []
        by_color: dict[str, list[Shape]] = defaultdict(list)
        for line in lines:
            by_color[line.stroke].append(line)
        for index, (color, shapes) in enumerate(by_color.items()):
            pts = sorted({(round(x, 3), round(y, 3)) for s in shapes for x, y in s.points})
            series.append({"name": lay.legend.get(color) or (f"series {index + 1}" if len(by_color) > 1 else None),
                           "color": color,
                           "points": [{"x": self._map_x(lay, x), "y": self._map_y(lay, y)} for x, y in pts]})
        return self._chart("line", lay, series, recovered=True)

    def _scatter(self, markers: list[Shape], lay: Layout) -> dict:
        by_color: dict[str, list[Shape]] = defaultdict(list)
        for m in markers:
            by_color[_mark_color(m)].append(m)
        series = []
        for index, (color, shapes) in enumerate(by_color.items()):
            centers = sorted(_symbol_center(s) for s in shapes)
            series.append({"name": lay.legend.get(color) or (f"series {index + 1}" if len(by_color) > 1 else None),
                           "color": color,
                           "points": [{"x": self._map_x(lay, x), "y": self._map_y(lay, y)} for x, y in centers]})
        return self._chart("scatter", lay, series, recovered=True)

    def _areas(self, areas: list[Shape], lay: Layout) -> dict:
        series = []
        for index, shape in enumerate(sorted(areas, key=lambda s: -s.bbox[3])):
            columns: dict[float, list[float]] = defaultdict(list)
            for x, y in shape.points:
                columns[round(x, 2)].append(y)
            points = []
            for x in sorted(columns):
                ys = columns[x]
                top, bottom = self._map_y(lay, min(ys)), self._map_y(lay, max(ys))
                value = top - bottom if len(ys) > 1 and max(ys) - min(ys) > 0.05 else top
                if len(ys) > 1 and max(ys) - min(ys) <= 0.05:
                    base = self._baseline(lay.y) if lay.y else None
                    value = 0.0 if base is not None and abs(min(ys) - base) < 0.75 else top
                points.append({"x": self._map_x(lay, x), "y": _num(value)})
            series.append({"name": lay.legend.get(shape.fill) or (f"series {index + 1}" if len(areas) > 1 else None),
                           "color": shape.fill, "points": points})
        return self._chart("area", lay, series, recovered=True)

    def _disk_wedges(self) -> list[Shape]:
        """Filled curved shapes that together tile a disk (pie wedges), else []."""
        size = _median_size(self.scene.texts) or 10.0
        wedges = [s for s in self.scene.shapes if s.fill and not is_light(s.fill)
                  and len(s.points) >= 6 and not s.is_rect() and max(s.width, s.height) > 3 * size]
        if not wedges:
            return []
        xs = [p[0] for s in wedges for p in s.points]
        ys = [p[1] for s in wedges for p in s.points]
        w, h = max(xs) - min(xs), max(ys) - min(ys)
        if w <= 0 or h <= 0 or abs(w - h) > 0.1 * max(w, h):
            return []
        # A disk has no corners: every outline point lies within the radius of the centre
        # (stacked areas in a square plot fill a similar share of their box, but reach
        # its corners).
        cx, cy, radius = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(w, h) / 2
        if any(math.hypot(x - cx, y - cy) > 1.08 * radius for x, y in zip(xs, ys)):
            return []
        disk = math.pi * w * h / 4
        total = sum(s.area() for s in wedges)
        # Exploded wedges make the box larger than the disk; allow some slack.
        return wedges if 0.6 * disk <= total <= 1.05 * disk else []

    def _pie(self, lay: Layout, wedges: list[Shape]) -> dict | None:
        wedges = [s for s in wedges if id(s) not in lay.handles]
        if len(wedges) < 2:
            return None  # one filled disk is a dot or a logo, not a pie
        total = sum(s.area() for s in wedges)
        if total <= 0:
            return None
        xs = [p[0] for s in wedges for p in s.points]
        ys = [p[1] for s in wedges for p in s.points]
        center = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
        top = min(ys)
        above = [t for t in self.scene.texts if id(t) not in lay.used_texts and t.y1 <= top]
        if above and lay.title is None:
            pick = max(above, key=lambda t: (round(t.size, 1), -t.y0))
            if pick.size >= 1.1 * _median_size(self.scene.texts):  # not a wedge label
                lay.title = pick.text
                lay.used_texts.add(id(pick))
        # Wedge labels; percentages printed inside wedges (autopct) are not names.
        free = [t for t in self.scene.texts if id(t) not in lay.used_texts and
                not t.text.strip().endswith("%")]
        radius = max(max(xs) - min(xs), max(ys) - min(ys)) / 2 or 1.0
        names = _wedge_names(wedges, free, center, radius)
        points = []
        for index, wedge in enumerate(wedges):
            name = lay.legend.get(wedge.fill) or names.get(index)
            points.append({"x": name, "y": _num(100.0 * wedge.area() / total)})
        series = [{"name": None, "points": points}]
        chart = self._chart("pie", lay, series, recovered=True)
        chart["y_unit"] = "percent of total"
        # A donut's wedges leave the centre open: the hole's share of the radius.
        inner = min(math.hypot(x - center[0], y - center[1]) for s in wedges for x, y in s.points)
        chart["hole"] = _num(inner / radius) if inner > 0.15 * radius else 0.0
        return chart

    def _chart(self, kind: str, lay: Layout, series: list, recovered: bool) -> dict:
        return {"type": kind, "title": lay.title, "x_label": lay.x_label, "y_label": lay.y_label,
                "x_scale": _scale_name(lay.x), "y_scale": _scale_name(lay.y),
                "series": series, "recovered": recovered and bool(series)}


def _split_rules(scene: Scene) -> Scene:
    """One stroke holding many straight segments (Bokeh and Chart.js draw all ticks or all
    gridlines of an axis as one path) → one shape per segment, so each reads as a rule."""
    shapes = []
    for shape in scene.shapes:
        if shape.fill is None and len(shape.subpaths) > 1 and all(
                len(sub) == 2 for sub in shape.subpaths):
            shapes.extend(Shape([sub], fill=None, stroke=shape.stroke,
                                stroke_width=shape.stroke_width, hint=shape.hint)
                          for sub in shape.subpaths)
        else:
            shapes.append(shape)
    return Scene(scene.width, scene.height, scene.texts, shapes)


def _is_frame(shape: Shape, box_w: float, box_h: float) -> bool:
    """A gray or black outline of axis-aligned runs as long as the plot: an axis domain
    line with its end ticks, or the frame around the plot."""
    color = shape.stroke if shape.fill is None or is_light(shape.fill) else None
    if color is None or not _is_gray(color) or shape.fill is not None and not is_light(shape.fill):
        return False
    for sub in shape.subpaths:
        for (ax, ay), (bx, by) in zip(sub, sub[1:]):
            if abs(ax - bx) > 0.05 and abs(ay - by) > 0.05:
                return False
    return shape.width >= 0.6 * box_w or shape.height >= 0.6 * box_h


def _wedge_names(wedges: list[Shape], texts: list[Text], center, radius: float) -> dict[int, str]:
    """Each wedge's label: texts are given out one each, best match first, by angle and by
    standing on the ring where the labels are (an axis title further out loses)."""
    if not texts:
        return {}
    dists = sorted(math.hypot(t.cx - center[0], t.cy - center[1]) / radius for t in texts)
    ring = dists[len(dists) // 2]
    pairs = []
    for w, wedge in enumerate(wedges):
        wx = sum(p[0] for p in wedge.points) / len(wedge.points)
        wy = sum(p[1] for p in wedge.points) / len(wedge.points)
        ang = math.atan2(wy - center[1], wx - center[0])
        for k, t in enumerate(texts):
            d = math.hypot(t.cx - center[0], t.cy - center[1]) / radius
            score = abs(_angle_diff(math.atan2(t.cy - center[1], t.cx - center[0]), ang)) \
                + 2 * abs(d - ring)
            pairs.append((score, w, k))
    names: dict[int, str] = {}
    taken: set[int] = set()
    for _, w, k in sorted(pairs):
        if w not in names and k not in taken:
            names[w] = texts[k].text
            taken.add(k)
    return names


def _symbol_center(shape: Shape) -> tuple[float, float]:
    """Where a symbol stands: the centroid of a polygon's corners (D3 centres a triangle
    on its centroid, not its box), the box centre of a curved outline."""
    pts = list(dict.fromkeys((round(x, 3), round(y, 3)) for x, y in shape.points))
    if 3 <= len(pts) <= 8:
        return (sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts))
    x0, y0, x1, y1 = shape.bbox
    return ((x0 + x1) / 2, (y0 + y1) / 2)


def _closed_outline(shape: Shape) -> bool:
    """Closed (Z) or ending where it started: the outline of a symbol, not a polyline."""
    if shape.closed:
        return True
    pts = shape.points
    return len(pts) >= 3 and math.hypot(pts[0][0] - pts[-1][0], pts[0][1] - pts[-1][1]) < 0.5


def _holds_text(shape: Shape, texts: list[Text]) -> bool:
    """A legend frame: a shape drawn around a legend label."""
    if shape.fill is None or shape.is_rect():  # bars under a legend are data; frames are round
        return False
    x0, y0, x1, y1 = shape.bbox
    return any(x0 <= t.cx <= x1 and y0 <= t.cy <= y1 and (x1 - x0) > (t.x1 - t.x0) for t in texts)


def _evenly_stepped(positions: list[float], values: list[float], kind: str) -> bool:
    """Tick values step by one constant (linear) or one ratio (log), as axes do."""
    ordered = [v for _, v in sorted(zip(positions, values))]
    if kind == "log":
        ordered = [math.log10(v) for v in ordered]
    diffs = [abs(b - a) for a, b in zip(ordered, ordered[1:])]
    step = sorted(diffs)[len(diffs) // 2]
    return step > 0 and all(abs(d - step) <= 0.02 * step for d in diffs)


def _expand_log_mantissas(positions: list[float], values: list[float], orient: str
                          ) -> list[float] | None:
    """Log axes labelled "1 2 5 10 2 5 100 ..." (plotly): minor labels show only the
    mantissa; multiply each by the decade of the power-of-ten label below it."""
    def is_decade(v: float) -> bool:
        return v > 0 and abs(math.log10(v) - round(math.log10(v))) < 1e-9

    decades = [v for v in values if is_decade(v)]
    if not decades or len(decades) == len(values) or any(v <= 0 for v in values):
        return None
    # Values grow upwards on a y axis (smaller y) and rightwards on an x axis.
    order = sorted(range(len(values)), key=lambda i: -positions[i] if orient == "y" else positions[i])
    first = next(values[i] for i in order if is_decade(values[i]))
    decade = first / 10
    out = [0.0] * len(values)
    for i in order:
        v = values[i]
        if is_decade(v) and v >= decade * 10 - 1e-9:
            decade = v
            out[i] = v
        elif 1 <= v < 10:
            out[i] = v * decade
        else:
            return None
    return out


def _scale_name(axis: Axis | None) -> str | None:
    if axis is None:
        return None
    return "category" if axis.categorical else axis.scale.kind


def _angle_diff(a: float, b: float) -> float:
    return (a - b + math.pi) % (2 * math.pi) - math.pi


def _label_anchor_x(t: Text) -> float:
    # Rotated labels hang from their right end (matplotlib ha="right", plotly -45°).
    if 10 < abs(t.rotation) < 80:
        return t.x1 if t.rotation > 0 else t.x0
    return t.cx


def _ids(texts) -> set[int]:
    return {id(t) for t in texts}


def _median_size(texts: list[Text]) -> float:
    sizes = sorted(t.size for t in texts)
    return sizes[len(sizes) // 2] if sizes else 0.0


def _mark_color(shape: Shape) -> str | None:
    return shape.fill if shape.fill and not is_light(shape.fill) else shape.stroke


def _is_gray(color: str | None) -> bool:
    if color is None:
        return True
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return max(r, g, b) - min(r, g, b) <= 12


def read_charts(scene: Scene) -> list[dict]:
    """The charts in a scene (empty when it holds nothing chart-like)."""
    if not scene.shapes:
        return []
    chart = ChartReader(scene).read()
    if chart["type"] == "unknown" and not chart["series"]:
        return []
    return [chart]
