"""plotly.js (bundled with the plotly wheel), drawn in Chromium."""

from __future__ import annotations

from pipelines.charts.recognize import read_charts
from pipelines.charts.svg import scenes_from_svgs


def figure(spec: dict):
    import plotly.graph_objects as go

    kind = spec["type"]
    traces = []
    for s in spec["series"]:
        xs = [p["x"] for p in s["points"]]
        ys = [p["y"] for p in s["points"]]
        name = s["name"] or "value"
        if kind in ("bar", "bar_quantitative", "grouped_bar", "stacked_bar"):
            traces.append(go.Bar(x=xs, y=ys, name=name))
        elif kind in ("horizontal_bar", "horizontal_grouped_bar"):
            traces.append(go.Bar(x=ys, y=xs, name=name, orientation="h"))
        elif kind in ("line", "short_line"):
            traces.append(go.Scatter(x=xs, y=ys, name=name, mode="lines"))
        elif kind == "area":
            traces.append(go.Scatter(x=xs, y=ys, name=name, mode="lines", fill="tozeroy"))
        elif kind == "scatter":
            traces.append(go.Scatter(x=xs, y=ys, name=name, mode="markers"))
        elif kind == "point":
            traces.append(go.Scatter(x=xs, y=ys, name=name, mode="markers",
                                     marker={"symbol": "diamond-open", "size": 9}))
        elif kind == "bubble":
            traces.append(go.Scatter(x=xs, y=ys, name=name, mode="markers",
                                     marker={"size": [p["size"] * 4 for p in s["points"]]}))
        elif kind in ("pie", "donut"):
            traces.append(go.Pie(labels=xs, values=ys, name=name, sort=False,
                                 hole=0.45 if kind == "donut" else 0))
    fig = go.Figure(traces)
    fig.update_layout(title=spec["title"], xaxis_title=spec["x_label"],
                      yaxis_title=spec["y_label"], width=700, height=450,
                      barmode="stack" if kind == "stacked_bar" else "group",
                      showlegend=len(spec["series"]) > 1 or kind in ("pie", "donut"))
    return fig


def recover(spec: dict, renderer) -> list[dict]:
    svgs = renderer.plotly_svgs(figure(spec).to_json())
    return [c for _, scene in scenes_from_svgs(svgs) for c in read_charts(scene)]
