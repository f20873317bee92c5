"""Random chart specifications with exact data, drawable by every charting library here.

A spec is ``{"type", "title", "x_label", "y_label", "series": [{"name", "points":
[{"x", "y"[, "size"]}]}]}``; ``x`` is a category label (str) or a number. The same spec
goes to each library's adapter, so a library's column in the accuracy table differs only
in how the library draws.
"""

from __future__ import annotations

import random
from typing import Any

KINDS = ("bar", "bar_quantitative", "horizontal_bar", "grouped_bar", "horizontal_grouped_bar",
         "stacked_bar", "line", "short_line", "area", "scatter", "point", "bubble", "pie",
         "donut")
LABEL_SETS = [["Mon", "Tue", "Wed", "Thu", "Fri"], ["North", "South", "East", "West"],
              ["Q1", "Q2", "Q3", "Q4"], ["Apples", "Pears", "Plums", "Cherries", "Grapes"],
              ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"]]
SERIES_NAMES = ["Revenue", "Cost", "Profit", "Team A", "Team B"]
VALUE_RANGES = [(1, 10), (10, 100), (100, 1000), (1000, 50000)]
TITLES = ["Quarterly results", "Sales by region", "Weekly visitors", None]


def make_spec(rng: random.Random, kind: str) -> dict[str, Any]:
    """A random `kind` chart with its data table."""
    lo, hi = rng.choice(VALUE_RANGES)
    lo = lo + (hi - lo) * 0.05
    digits = 1 if hi <= 100 else 0
    labels = list(rng.choice(LABEL_SETS))
    n_series = {"grouped_bar": 2, "horizontal_grouped_bar": 2, "stacked_bar": 2,
                "line": rng.randint(1, 2), "scatter": rng.randint(1, 2)}.get(kind, 1)
    if kind in ("grouped_bar", "horizontal_grouped_bar", "stacked_bar"):
        n_series = rng.randint(2, 3)
    names = rng.sample(SERIES_NAMES, n_series)

    def value() -> float:
        return round(rng.uniform(lo, hi), digits)

    # One x grid for every series of a chart (lines share their x values).
    n_x = rng.randint(2, 3) if kind == "short_line" else rng.randint(5, 9)
    start = rng.choice([0, 1, 2000, 2010])
    series = []
    for name in names:
        if kind in ("scatter", "point", "bubble"):
            xs = sorted(rng.sample(range(1, 100), rng.randint(6, 12)))
            pts = [{"x": float(x), "y": value()} for x in xs]
            if kind == "bubble":
                for p in pts:
                    p["size"] = round(rng.uniform(1, 10), 1)
        elif kind in ("short_line", "line", "area", "bar_quantitative"):
            pts = [{"x": float(start + i), "y": value()} for i in range(n_x)]
        else:
            pts = [{"x": lab, "y": value()} for lab in labels]
        series.append({"name": name if n_series > 1 else None, "points": pts})
    return {"type": kind, "title": rng.choice(TITLES), "x_label": rng.choice(["Category", None]),
            "y_label": rng.choice(["Value", None]), "series": series}


def rows(spec: dict) -> list[dict]:
    """The spec as a long table: one row per point with its series name (pandas-ready)."""
    return [{"series": s["name"] or "value", **p} for s in spec["series"] for p in s["points"]]
