"""Synthetic charts with exact ground truth: the data table and the code that drew it.

`make_spec(rng)` draws a random chart specification (type, categories, series, value
range, style, titles); `plotting_code(spec)` writes the matplotlib script for it — a
standalone program a person can run — and `render(spec, fmt)` executes exactly that code,
so every picture is paired with the code that drew it and the table it shows (the
DeepSeek-VL "plots with the code that drew them" pairs for chart-to-table and
chart-to-code training). `synthetic_samples(n, seed)` yields them as Samples with
``meta["chart"]`` source="synthetic".
"""

from __future__ import annotations

import csv
import io
import random
from typing import Any, Iterator

from pipelines.core.sample import Sample

CHART_TYPES = ("bar", "horizontal_bar", "grouped_bar", "stacked_bar", "line", "scatter",
               "area", "pie")
STYLES = ("default", "ggplot", "seaborn-v0_8-whitegrid", "bmh", "fivethirtyeight", "classic",
          "grayscale")
LABEL_SETS = [
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    ["North", "South", "East", "West", "Central"],
    ["Q1", "Q2", "Q3", "Q4"],
    ["Apples", "Pears", "Plums", "Cherries", "Grapes", "Figs"],
    ["2019", "2020", "2021", "2022", "2023"],
    ["Alpha", "Beta", "Gamma", "Delta"],
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug"],
]
SERIES_NAMES = ["Revenue", "Cost", "Profit", "Team A", "Team B", "Team C", "2022", "2023"]
TITLES = ["Quarterly results", "Sales by region", "Weekly visitors", "Survey answers",
          "Energy use", "Market share", "Measurements", None]
AXIS_TITLES = [("Category", "Value"), ("Region", "Sales (k$)"), ("Day", "Visitors"),
               ("Month", "Temperature (°C)"), (None, "Count"), ("Group", None), (None, None)]
VALUE_RANGES = [(1, 10), (10, 100), (100, 1000), (0.1, 1.0), (1000, 50000), (-50, 50)]


def make_spec(rng: random.Random, chart_type: str | None = None) -> dict[str, Any]:
    """A random chart specification with its exact data table."""
    kind = chart_type or rng.choice(CHART_TYPES)
    labels = list(rng.choice(LABEL_SETS))
    if kind in ("grouped_bar", "stacked_bar", "area"):
        n_series = rng.randint(2, 3)
    elif kind in ("line", "scatter"):
        n_series = rng.randint(1, 3)
    else:
        n_series = 1
    lo, hi = rng.choice(VALUE_RANGES)
    if kind in ("stacked_bar", "area", "pie"):
        lo, hi = abs(lo) + (hi - lo) * 0.05, abs(hi)  # positive parts of a whole
    digits = 2 if hi <= 1 else 1 if hi <= 100 else 0
    names = rng.sample(SERIES_NAMES, n_series)
    numeric_x = kind in ("line", "area") and rng.random() < 0.4
    n_numeric = rng.randint(5, 12)
    series = []
    for name in names:
        if kind == "scatter":
            xs = sorted(round(rng.uniform(0, 100), 1) for _ in range(rng.randint(5, 15)))
            pts = [{"x": x, "y": round(rng.uniform(lo, hi), digits)} for x in xs]
        elif numeric_x:
            xs = list(range(n_numeric))
            pts = [{"x": x, "y": round(rng.uniform(lo, hi), digits)} for x in xs]
        else:
            pts = [{"x": lab, "y": round(rng.uniform(lo, hi), digits)} for lab in labels]
        series.append({"name": name if n_series > 1 or rng.random() < 0.3 else None,
                       "points": pts})
    x_label, y_label = rng.choice(AXIS_TITLES)
    if kind == "horizontal_bar":
        x_label, y_label = y_label, x_label
    return {"type": kind, "title": rng.choice(TITLES), "x_label": x_label, "y_label": y_label,
            "series": series, "style": rng.choice(STYLES),
            "size": rng.choice([(6.4, 4.8), (5, 3.5), (8, 4.5), (4, 4)]),
            "log_y": kind in ("line", "scatter") and lo >= 1 and rng.random() < 0.15,
            "legend": n_series > 1 or kind == "pie"}


def table_csv(spec: dict[str, Any]) -> str:
    """The data table as CSV: one row per x, one column per series."""
    xs: list = []
    for s in spec["series"]:
        for p in s["points"]:
            if p["x"] not in xs:
                xs.append(p["x"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["x"] + [s["name"] or "value" for s in spec["series"]])
    lookup = [{p["x"]: p["y"] for p in s["points"]} for s in spec["series"]]
    for x in xs:
        writer.writerow([x] + [row.get(x, "") for row in lookup])
    return out.getvalue()


def plotting_code(spec: dict[str, Any]) -> str:
    """A standalone matplotlib script that draws `spec` (run as-is: it is the ground truth)."""
    kind = spec["type"]
    lines = ["import matplotlib",
             "matplotlib.use('Agg')",
             "import matplotlib.pyplot as plt",
             "import numpy as np",
             "",
             f"plt.style.use({spec['style']!r})",
             f"fig, ax = plt.subplots(figsize={tuple(spec['size'])!r})"]
    series = spec["series"]
    labels = [p["x"] for p in series[0]["points"]]

    def name(s):
        return repr(s["name"])

    if kind in ("bar", "horizontal_bar"):
        s = series[0]
        values = [p["y"] for p in s["points"]]
        fn = "bar" if kind == "bar" else "barh"
        lines.append(f"ax.{fn}({labels!r}, {values!r}, label={name(s)})")
    elif kind == "grouped_bar":
        lines.append(f"x = np.arange({len(labels)})")
        lines.append(f"width = {0.8 / len(series):.4f}")
        for i, s in enumerate(series):
            values = [p["y"] for p in s["points"]]
            offset = (i - (len(series) - 1) / 2)
            lines.append(f"ax.bar(x + ({offset}) * width, {values!r}, width, label={name(s)})")
        lines.append(f"ax.set_xticks(x, {labels!r})")
    elif kind == "stacked_bar":
        lines.append(f"bottom = np.zeros({len(labels)})")
        for s in series:
            values = [p["y"] for p in s["points"]]
            lines.append(f"ax.bar({labels!r}, {values!r}, bottom=bottom, label={name(s)})")
            lines.append(f"bottom += np.array({values!r})")
    elif kind == "line":
        for s in series:
            xs = [p["x"] for p in s["points"]]
            ys = [p["y"] for p in s["points"]]
            lines.append(f"ax.plot({xs!r}, {ys!r}, marker='o', label={name(s)})")
    elif kind == "scatter":
        for s in series:
            xs = [p["x"] for p in s["points"]]
            ys = [p["y"] for p in s["points"]]
            lines.append(f"ax.scatter({xs!r}, {ys!r}, label={name(s)})")
    elif kind == "area":
        xs = [p["x"] for p in series[0]["points"]]
        stacks = [[p["y"] for p in s["points"]] for s in series]
        names = [s["name"] for s in series]
        lines.append(f"ax.stackplot({xs!r}, {stacks!r}, labels={names!r})")
    elif kind == "pie":
        s = series[0]
        values = [p["y"] for p in s["points"]]
        lines.append(f"ax.pie({values!r}, labels={labels!r})")
    if spec.get("log_y"):
        lines.append("ax.set_yscale('log')")
    if spec.get("title"):
        lines.append(f"ax.set_title({spec['title']!r})")
    if spec.get("x_label") and kind != "pie":
        lines.append(f"ax.set_xlabel({spec['x_label']!r})")
    if spec.get("y_label") and kind != "pie":
        lines.append(f"ax.set_ylabel({spec['y_label']!r})")
    if spec.get("legend") and kind != "pie":
        lines.append("ax.legend()")
    lines.append("fig.tight_layout()")
    return "\n".join(lines) + "\n"


def render(spec: dict[str, Any], fmt: str = "png", svg_text: bool = False, dpi: int = 100) -> bytes:
    """Run the spec's plotting code and return the figure as png/svg/pdf bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    code = plotting_code(spec)
    namespace: dict[str, Any] = {}
    with matplotlib.rc_context({"svg.fonttype": "none" if svg_text else "path",
                                "svg.hashsalt": "vlforge", "axes.formatter.useoffset": False}):
        exec(compile(code, "<chart>", "exec"), namespace)  # our own generated code only
        fig = namespace["fig"]
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format=fmt, dpi=dpi)
        finally:
            plt.close(fig)
    return buffer.getvalue()


def synthetic_samples(n: int, seed: int = 0, chart_types: tuple[str, ...] | None = None
                      ) -> Iterator[Sample]:
    """`n` chart images with their table and code in ``meta["chart"]`` (source="synthetic")."""
    rng = random.Random(seed)
    for index in range(n):
        spec = make_spec(rng, rng.choice(chart_types) if chart_types else None)
        image = render(spec, "png")
        chart = {"type": spec["type"], "title": spec["title"], "x_label": spec["x_label"],
                 "y_label": spec["y_label"], "series": spec["series"], "source": "synthetic",
                 "recovered": True, "box": [0.0, 0.0, 1.0, 1.0], "code": plotting_code(spec),
                 "table_csv": table_csv(spec)}
        yield Sample.create("chart-synth", f"synthetic:{seed}:{index}", image=image,
                            lineage={"seed": seed, "index": index},
                            meta={"chart": {"charts": [chart]}})
