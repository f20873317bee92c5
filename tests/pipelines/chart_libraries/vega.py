"""Vega-Lite through Altair, exported to SVG by vl-convert (Vega's own renderer, no browser)."""

from __future__ import annotations

from pipelines.charts.recognize import read_charts
from pipelines.charts.svg import parse_svg

from .spec import rows

KINDS = ("bar", "bar_quantitative", "horizontal_bar", "grouped_bar", "horizontal_grouped_bar",
         "stacked_bar", "line", "short_line", "area", "scatter", "point", "bubble", "pie",
         "donut")


def chart(spec: dict):
    """The Altair chart for a spec (the way Altair's gallery writes each kind)."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame(rows(spec))
    kind = spec["type"]
    many = len(spec["series"]) > 1
    xt, yt = spec["x_label"] or "x", spec["y_label"] or "y"
    color = {"color": alt.Color("series:N", title=None)} if many else {}
    nominal = alt.X("x:N", title=xt, sort=None)
    if kind == "bar":
        c = alt.Chart(df).mark_bar().encode(nominal, alt.Y("y:Q", title=yt))
    elif kind == "bar_quantitative":
        c = alt.Chart(df).mark_bar(size=20).encode(alt.X("x:Q", title=xt, scale=alt.Scale(zero=False, padding=20)),
                                                   alt.Y("y:Q", title=yt))
    elif kind == "horizontal_bar":
        c = alt.Chart(df).mark_bar().encode(alt.Y("x:N", title=xt, sort=None), alt.X("y:Q", title=yt))
    elif kind == "grouped_bar":
        c = alt.Chart(df).mark_bar().encode(nominal, alt.Y("y:Q", title=yt),
                                            alt.XOffset("series:N"), **color)
    elif kind == "horizontal_grouped_bar":
        c = alt.Chart(df).mark_bar().encode(alt.Y("x:N", title=xt, sort=None), alt.X("y:Q", title=yt),
                                            alt.YOffset("series:N"), **color)
    elif kind == "stacked_bar":
        c = alt.Chart(df).mark_bar().encode(nominal, alt.Y("sum(y):Q", title=yt), **color)
    elif kind in ("line", "short_line"):
        c = alt.Chart(df).mark_line().encode(alt.X("x:Q", title=xt, scale=alt.Scale(zero=False)),
                                             alt.Y("y:Q", title=yt), **color)
    elif kind == "area":
        c = alt.Chart(df).mark_area().encode(alt.X("x:Q", title=xt, scale=alt.Scale(zero=False)),
                                             alt.Y("y:Q", title=yt))
    elif kind == "scatter":
        c = alt.Chart(df).mark_circle(size=60).encode(alt.X("x:Q", title=xt), alt.Y("y:Q", title=yt), **color)
    elif kind == "point":
        c = alt.Chart(df).mark_point().encode(alt.X("x:Q", title=xt), alt.Y("y:Q", title=yt), **color)
    elif kind == "bubble":
        c = alt.Chart(df).mark_circle().encode(alt.X("x:Q", title=xt), alt.Y("y:Q", title=yt),
                                               alt.Size("size:Q", legend=None))
    elif kind in ("pie", "donut"):
        arc = alt.Chart(df).mark_arc(innerRadius=60 if kind == "donut" else 0)
        c = arc.encode(alt.Theta("y:Q"), alt.Color("x:N", sort=None, title=None))
    else:
        raise ValueError(kind)
    return c.properties(title=spec["title"] or "", width=400, height=260)


def svg(spec: dict) -> str:
    """SVG markup exactly as vl-convert writes it."""
    import vl_convert

    return vl_convert.vegalite_to_svg(chart(spec).to_json())


def recover(spec: dict, renderer=None) -> list[dict]:
    return read_charts(parse_svg(svg(spec)))
