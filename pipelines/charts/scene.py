"""The vector primitives a chart is read from, whatever file they came from.

SVG markup (`svg.py`) and PDF drawings (`pdf_vector.py`) are both reduced to a `Scene`:
texts with boxes, and shapes flattened to polylines, all in one y-down coordinate space.
The recogniser (`recognize.py`) only ever sees a Scene, so every source gets the same
axis fitting and mark reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Text:
    """A run of text: its string, its box, font size and rotation (degrees, 0 = upright)."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float = 10.0
    rotation: float = 0.0
    chars: list | None = None  # [(char, x0, x1)] when the source gives glyph boxes (PDF)
    anchor_x: float | None = None  # x of the text-anchor point (start/end-anchored SVG text)

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def vertical(self) -> bool:
        return abs(abs(self.rotation) - 90) < 20


@dataclass
class Shape:
    """A drawn path flattened to subpaths of points; fill/stroke as '#rrggbb' or None."""

    subpaths: list[list[tuple[float, float]]]
    fill: str | None = None
    stroke: str | None = None
    stroke_width: float = 1.0
    closed: bool = False
    hint: str = ""  # an id or class from the source (``patch_3``, ``js-line``), may be empty

    @property
    def points(self) -> list[tuple[float, float]]:
        return [p for sub in self.subpaths for p in sub]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def width(self) -> float:
        b = self.bbox
        return b[2] - b[0]

    @property
    def height(self) -> float:
        b = self.bbox
        return b[3] - b[1]

    def is_rect(self, tol: float = 0.05) -> bool:
        """Filled, one subpath, every point on a corner of its box (bars, backgrounds)."""
        if self.fill is None or len(self.subpaths) != 1 or not 4 <= len(self.subpaths[0]) <= 6:
            return False
        x0, y0, x1, y1 = self.bbox
        if x1 - x0 <= tol or y1 - y0 <= tol:
            return False
        for x, y in self.subpaths[0]:
            if min(abs(x - x0), abs(x - x1)) > tol or min(abs(y - y0), abs(y - y1)) > tol:
                return False
        return True

    def area(self) -> float:
        """Shoelace area summed over subpaths (pie wedges: share = area / total)."""
        total = 0.0
        for sub in self.subpaths:
            n = len(sub)
            s = 0.0
            for i in range(n):
                x0, y0 = sub[i]
                x1, y1 = sub[(i + 1) % n]
                s += x0 * y1 - x1 * y0
            total += abs(s) / 2
        return total


@dataclass
class Scene:
    """Everything drawn in one chart source (an SVG, a PDF page region)."""

    width: float
    height: float
    texts: list[Text] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)


# -- colours -------------------------------------------------------------------------------
def parse_color(value: str | None) -> str | None:
    """Any CSS colour (names, hex, rgb(), hsl(), lab(), ...) → '#rrggbb'; None for none,
    transparent or fully transparent colours (parsing by tinycss2, see css.py)."""
    from pipelines.charts.css import css_color

    parsed = css_color(value)
    return parsed[0] if parsed else None


def rgb_tuple_color(rgb) -> str | None:
    """PyMuPDF's (r, g, b) floats in 0..1 → '#rrggbb'."""
    if rgb is None:
        return None
    if len(rgb) == 1:
        rgb = (rgb[0],) * 3
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgb[:3])


def is_light(color: str | None, threshold: float = 0.93) -> bool:
    """White-ish colours: backgrounds, legend frames and seaborn/plotly gridlines."""
    if color is None:
        return True
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return min(r, g, b) >= threshold


# -- curves --------------------------------------------------------------------------------
def cubic_points(p0, p1, p2, p3, steps: int = 12) -> list[tuple[float, float]]:
    """Points along a cubic Bézier (excluding p0), for areas and boxes of curved paths."""
    out = []
    for i in range(1, steps + 1):
        t = i / steps
        u = 1 - t
        out.append((u ** 3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t ** 3 * p3[0],
                    u ** 3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t ** 3 * p3[1]))
    return out


def quad_points(p0, p1, p2, steps: int = 6) -> list[tuple[float, float]]:
    out = []
    for i in range(1, steps + 1):
        t = i / steps
        u = 1 - t
        out.append((u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0],
                    u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1]))
    return out


def arc_points(p0, rx, ry, phi_deg, large, sweep, p1, steps_per_quarter: int = 24):
    """SVG elliptical arc from p0 to p1 flattened to points (SVG spec, appendix F.6)."""
    if rx == 0 or ry == 0 or p0 == p1:
        return [p1]
    phi = math.radians(phi_deg)
    cos_p, sin_p = math.cos(phi), math.sin(phi)
    dx, dy = (p0[0] - p1[0]) / 2, (p0[1] - p1[1]) / 2
    x1p = cos_p * dx + sin_p * dy
    y1p = -sin_p * dx + cos_p * dy
    rx, ry = abs(rx), abs(ry)
    lam = x1p ** 2 / rx ** 2 + y1p ** 2 / ry ** 2
    if lam > 1:
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx ** 2 * ry ** 2 - rx ** 2 * y1p ** 2 - ry ** 2 * x1p ** 2
    den = rx ** 2 * y1p ** 2 + ry ** 2 * x1p ** 2
    coef = math.sqrt(max(0.0, num / den)) if den else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    cx = cos_p * cxp - sin_p * cyp + (p0[0] + p1[0]) / 2
    cy = sin_p * cxp + cos_p * cyp + (p0[1] + p1[1]) / 2

    def angle(ux, uy, vx, vy):
        a = math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)
        return a

    theta1 = angle(1, 0, (x1p - cxp) / rx, (y1p - cyp) / ry)
    dtheta = angle((x1p - cxp) / rx, (y1p - cyp) / ry, (-x1p - cxp) / rx, (-y1p - cyp) / ry)
    if not sweep and dtheta > 0:
        dtheta -= 2 * math.pi
    elif sweep and dtheta < 0:
        dtheta += 2 * math.pi
    steps = max(6, int(abs(dtheta) / (math.pi / 2) * steps_per_quarter) + 1)
    out = []
    for i in range(1, steps + 1):
        t = theta1 + dtheta * i / steps
        x, y = rx * math.cos(t), ry * math.sin(t)
        out.append((cos_p * x - sin_p * y + cx, sin_p * x + cos_p * y + cy))
    out[-1] = p1
    return out
