"""Bokeh with its SVG output backend, BokehJS inlined from the wheel, drawn in Chromium."""

from __future__ import annotations

from itertools import accumulate
from math import cos, pi, sin

from pipelines.charts.recognize import read_charts
from pipelines.charts.svg import scenes_from_svgs

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c"]


def document(spec: dict) -> str:
    """A standalone HTML page (resources inline: no network) drawing the spec."""
    from bokeh.embed import file_html
    from bokeh.models import ColumnDataSource, FactorRange
    from bokeh.plotting import figure
    from bokeh.resources import INLINE
    from bokeh.transform import dodge

    kind, series = spec["type"], spec["series"]
    labels = [p["x"] for p in series[0]["points"]]
    opts = {"width": 640, "height": 400, "title": spec["title"] or "", "output_backend": "svg",
            "toolbar_location": None}
    many = len(series) > 1
    if kind in ("bar", "grouped_bar", "stacked_bar"):
        p = figure(x_range=FactorRange(*labels), **opts)
    elif kind in ("horizontal_bar", "horizontal_grouped_bar"):
        p = figure(y_range=FactorRange(*reversed(labels)), **opts)
    elif kind in ("pie", "donut"):
        p = figure(x_range=(-1.4, 1.4), y_range=(-1.4, 1.4), **{**opts, "width": 500})
    else:
        p = figure(**opts)
    n = len(series)
    for i, s in enumerate(series):
        xs = [q["x"] for q in s["points"]]
        ys = [q["y"] for q in s["points"]]
        color = PALETTE[i % 3]
        legend = {"legend_label": s["name"]} if many else {}
        src = ColumnDataSource({"x": xs, "y": ys})
        if kind == "bar":
            p.vbar(x="x", top="y", width=0.7, source=src, color=color)
        elif kind == "bar_quantitative":
            p.vbar(x="x", top="y", width=0.6, source=src, color=color)
        elif kind == "horizontal_bar":
            p.hbar(y="x", right="y", height=0.7, source=src, color=color)
        elif kind == "grouped_bar":
            w = 0.8 / n
            p.vbar(x=dodge("x", -0.4 + w * (i + 0.5), range=p.x_range), top="y", width=w,
                   source=src, color=color, **legend)
        elif kind == "horizontal_grouped_bar":
            w = 0.8 / n
            p.hbar(y=dodge("x", -0.4 + w * (i + 0.5), range=p.y_range), right="y", height=w,
                   source=src, color=color, **legend)
        elif kind == "stacked_bar":
            bottom = [sum(t["points"][j]["y"] for t in series[:i]) for j in range(len(xs))]
            p.vbar(x=xs, bottom=bottom, top=[b + y for b, y in zip(bottom, ys)], width=0.7,
                   color=color, **legend)
        elif kind in ("line", "short_line"):
            p.line("x", "y", source=src, color=color, line_width=2, **legend)
        elif kind == "area":
            p.varea(x="x", y1=0, y2="y", source=src, color=color)
        elif kind == "scatter":
            p.scatter("x", "y", source=src, size=9, color=color, **legend)
        elif kind == "point":
            p.scatter("x", "y", source=src, size=10, marker="square", fill_color=None,
                      line_color=color, **legend)
        elif kind == "bubble":
            p.scatter(xs, ys, size=[q["size"] * 4 for q in s["points"]], color=color, alpha=0.6)
        elif kind in ("pie", "donut"):
            total = sum(ys)
            ends = [2 * pi * v / total for v in accumulate(ys)]
            starts = [0.0] + ends[:-1]
            colors = [f"#{(37 * k * 997) % 0xffffff:06x}" for k in range(1, len(xs) + 1)]
            data = ColumnDataSource({"x": xs, "start": starts, "end": ends, "color": colors})
            if kind == "pie":
                p.wedge(x=0, y=0, radius=1, start_angle="start", end_angle="end",
                        color="color", source=data)
            else:
                p.annular_wedge(x=0, y=0, inner_radius=0.5, outer_radius=1, start_angle="start",
                                end_angle="end", color="color", source=data)
            # Bokeh 3.9's SVG backend draws no Legend annotation at all (no text, no
            # swatch, no DOM), so the wedges are named by text glyphs beside them.
            mids = [(a + b) / 2 for a, b in zip(starts, ends)]
            p.text(x=[1.1 * cos(m) for m in mids], y=[1.1 * sin(m) for m in mids], text=xs,
                   text_align="center", text_baseline="middle", text_font_size="11px")
            p.axis.visible = False
            p.grid.visible = False
    if kind not in ("pie", "donut"):
        p.xaxis.axis_label = spec["x_label"]
        p.yaxis.axis_label = spec["y_label"]
        if kind in ("bar", "bar_quantitative", "grouped_bar", "stacked_bar"):
            p.y_range.start = 0
        if kind in ("horizontal_bar", "horizontal_grouped_bar"):
            p.x_range.start = 0
    return file_html(p, INLINE, "chart")


def recover(spec: dict, renderer) -> list[dict]:
    svgs = renderer.svgs(document(spec), wait_selector=None)
    return [c for _, scene in scenes_from_svgs(svgs) for c in read_charts(scene)]
