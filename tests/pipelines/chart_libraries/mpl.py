"""matplotlib and seaborn, through matplotlib's SVG backend (text as <text> elements)."""

from __future__ import annotations

import io

from pipelines.charts.recognize import read_charts
from pipelines.charts.svg import parse_svg

from .spec import rows

#: seaborn has no pie, donut, area or stacked-bar function: those cells are not drawn.
SEABORN_KINDS = ("bar", "horizontal_bar", "grouped_bar", "horizontal_grouped_bar", "line",
                 "short_line", "scatter", "point", "bubble")


def _finish(fig, ax, spec) -> str:
    if spec["title"]:
        ax.set_title(spec["title"])
    ax.set_xlabel(spec["x_label"] or "")
    ax.set_ylabel(spec["y_label"] or "")
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def matplotlib_svg(spec: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        kind, series = spec["type"], spec["series"]
        labels = [p["x"] for p in series[0]["points"]]
        n = len(series)
        for i, s in enumerate(series):
            xs = [p["x"] for p in s["points"]]
            ys = [p["y"] for p in s["points"]]
            name = s["name"]
            if kind in ("bar", "bar_quantitative"):
                ax.bar(xs, ys, width=0.6, label=name)
            elif kind == "horizontal_bar":
                ax.barh(xs, ys, label=name)
            elif kind in ("grouped_bar", "horizontal_grouped_bar"):
                w = 0.8 / n
                pos = [j - 0.4 + w * (i + 0.5) for j in range(len(xs))]
                (ax.bar if kind == "grouped_bar" else ax.barh)(pos, ys, w, label=name)
            elif kind == "stacked_bar":
                bottom = [sum(t["points"][j]["y"] for t in series[:i]) for j in range(len(xs))]
                ax.bar(xs, ys, bottom=bottom, label=name)
            elif kind in ("line", "short_line"):
                ax.plot(xs, ys, label=name)
            elif kind == "area":
                ax.fill_between(xs, ys, label=name)
            elif kind == "scatter":
                ax.scatter(xs, ys, label=name)
            elif kind == "point":
                ax.scatter(xs, ys, marker="s", facecolors="none", edgecolors=f"C{i}", label=name)
            elif kind == "bubble":
                ax.scatter(xs, ys, s=[p["size"] * 30 for p in s["points"]], alpha=0.6, label=name)
            elif kind in ("pie", "donut"):
                ax.pie(ys, labels=xs, wedgeprops={"width": 0.4} if kind == "donut" else None)
        if kind in ("grouped_bar", "horizontal_grouped_bar"):
            (ax.set_xticks if kind == "grouped_bar" else ax.set_yticks)(range(len(labels)), labels)
        if n > 1:
            ax.legend()
        return _finish(fig, ax, spec)


def seaborn_svg(spec: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    df = pd.DataFrame(rows(spec))
    kind = spec["type"]
    many = len(spec["series"]) > 1
    with plt.rc_context({"svg.fonttype": "none"}), sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        hue = {"hue": "series"} if many else {}
        if kind in ("bar", "grouped_bar"):
            sns.barplot(df, x="x", y="y", ax=ax, errorbar=None, **hue)
        elif kind in ("horizontal_bar", "horizontal_grouped_bar"):
            sns.barplot(df, x="y", y="x", orient="h", ax=ax, errorbar=None, **hue)
        elif kind in ("line", "short_line"):
            sns.lineplot(df, x="x", y="y", ax=ax, errorbar=None, **hue)
        elif kind == "scatter":
            sns.scatterplot(df, x="x", y="y", ax=ax, **hue)
        elif kind == "point":
            sns.scatterplot(df, x="x", y="y", ax=ax, marker="D", **hue)
        elif kind == "bubble":
            sns.scatterplot(df, x="x", y="y", size="size", sizes=(30, 300), ax=ax, legend=False)
        else:
            raise ValueError(f"seaborn draws no {kind}")
        return _finish(fig, ax, spec)


def recover_matplotlib(spec: dict, renderer=None) -> list[dict]:
    return read_charts(parse_svg(matplotlib_svg(spec)))


def recover_seaborn(spec: dict, renderer=None) -> list[dict]:
    return read_charts(parse_svg(seaborn_svg(spec)))
