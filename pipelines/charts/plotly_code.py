"""The plotly family of synthetic charts: a chart spec as a standalone plotly script.

`plotly_code(spec)` writes a Python program (plotly.graph_objects) that builds ``fig`` for
the same spec `pipelines.charts.synthetic.make_spec` draws with matplotlib, so each spec
can be drawn by either library and paired with the exact code that drew it. `figure_json`
runs that code and returns the figure as plotly JSON, which plotly.js draws in the browser
(`pipelines.charts.synth_pipeline.PlotlyPainter`).
"""

from __future__ import annotations

import hashlib
from typing import Any

# matplotlib style -> the plotly template that plays its part (a spec keeps one "look")
TEMPLATES = {"default": "plotly", "ggplot": "ggplot2", "seaborn-v0_8-whitegrid": "seaborn",
             "bmh": "simple_white", "fivethirtyeight": "presentation", "classic": "none",
             "grayscale": "plotly_white"}


def template_for(spec: dict[str, Any]) -> str:
    """The plotly template for the spec's style (a stable pick for unknown styles)."""
    style = spec.get("style", "default")
    if style in TEMPLATES:
        return TEMPLATES[style]
    options = sorted(set(TEMPLATES.values()))
    return options[int(hashlib.sha256(style.encode()).hexdigest(), 16) % len(options)]


def plotly_code(spec: dict[str, Any]) -> str:
    """A standalone plotly script that builds ``fig`` for `spec` (the ground-truth code)."""
    kind = spec["type"]
    series = spec["series"]
    width, height = (round(v * 100) for v in spec["size"])
    lines = ["import plotly.graph_objects as go", "", "fig = go.Figure()"]

    def name(s: dict[str, Any]) -> str:
        return repr(s["name"])

    for s in series:
        xs = [p["x"] for p in s["points"]]
        ys = [p["y"] for p in s["points"]]
        if kind in ("bar", "grouped_bar", "stacked_bar"):
            lines.append(f"fig.add_trace(go.Bar(x={xs!r}, y={ys!r}, name={name(s)}))")
        elif kind == "horizontal_bar":
            lines.append(f"fig.add_trace(go.Bar(x={ys!r}, y={xs!r}, orientation='h', "
                         f"name={name(s)}))")
        elif kind == "line":
            lines.append(f"fig.add_trace(go.Scatter(x={xs!r}, y={ys!r}, mode='lines+markers', "
                         f"name={name(s)}))")
        elif kind == "scatter":
            lines.append(f"fig.add_trace(go.Scatter(x={xs!r}, y={ys!r}, mode='markers', "
                         f"name={name(s)}))")
        elif kind == "area":
            lines.append(f"fig.add_trace(go.Scatter(x={xs!r}, y={ys!r}, stackgroup='one', "
                         f"mode='lines', name={name(s)}))")
        elif kind == "pie":
            lines.append(f"fig.add_trace(go.Pie(labels={xs!r}, values={ys!r}, name={name(s)}, "
                         "sort=False))")
        else:
            raise ValueError(f"no plotly drawing for chart type {kind!r}")
    layout = [f"template={template_for(spec)!r}", f"width={width}", f"height={height}",
              f"showlegend={bool(spec.get('legend'))}"]
    if kind == "grouped_bar":
        layout.append("barmode='group'")
    if kind == "stacked_bar":
        layout.append("barmode='stack'")
    if spec.get("title"):
        layout.append(f"title={{'text': {spec['title']!r}}}")
    if kind != "pie":
        if spec.get("x_label"):
            layout.append(f"xaxis_title={spec['x_label']!r}")
        if spec.get("y_label"):
            layout.append(f"yaxis_title={spec['y_label']!r}")
        if spec.get("log_y"):
            layout.append("yaxis_type='log'")
    lines.append("fig.update_layout(" + ", ".join(layout) + ")")
    return "\n".join(lines) + "\n"


def figure_json(code: str) -> str:
    """Run a `plotly_code` script and return its ``fig`` as plotly JSON."""
    namespace: dict[str, Any] = {}
    exec(compile(code, "<plotly chart>", "exec"), namespace)  # noqa: S102 (our own generated code only)
    return namespace["fig"].to_json()


def figure_size(spec: dict[str, Any]) -> tuple[int, int]:
    """The figure's (width, height) in CSS pixels, as the code sets them."""
    width, height = (round(v * 100) for v in spec["size"])
    return width, height
