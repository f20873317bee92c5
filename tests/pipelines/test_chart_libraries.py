"""Charts drawn by the real charting libraries, read back: one test per failure class of
issue 16 (path symbols, bars on a quantitative axis, horizontal grouped bars, 2–3 point
lines, CSS-styled marks), each with a library that draws it that way."""

import os
import random

import pytest

from pipelines.charts.css import css_color
from pipelines.charts.recognize import read_charts
from pipelines.charts.render_html import SvgRenderer
from pipelines.charts.svg import scenes_from_svgs
from pipelines.core.chromium import CHROMIUM_PATH
from tests.pipelines.chart_libraries import LIBRARIES, make_spec, web_js

pytest.importorskip("vl_convert", reason="vl-convert-python is in the dev extra")

needs_browser = [pytest.mark.browser,
                 pytest.mark.skipif(not os.path.exists(CHROMIUM_PATH), reason="needs Debian chromium")]


def values_within(spec, charts, rel=0.02) -> float:
    """Share of the spec's values read back within `rel` (series matched by best fit)."""
    from bench.chart_accuracy import match_accuracy

    total, _, good = match_accuracy(spec, charts)
    assert total
    return good / total


def check(library: str, kind: str, renderer=None, seeds=range(3)) -> None:
    lib = LIBRARIES[library]
    for seed in seeds:
        spec = make_spec(random.Random(f"{kind}-{seed}"), kind)
        charts = lib.recover(spec, renderer)
        assert charts and charts[0]["recovered"], (library, kind, seed)
        assert values_within(spec, charts) >= 0.95, (library, kind, seed, charts[0]["series"])


@pytest.fixture(scope="module")
def renderer():
    with SvgRenderer() as r:
        yield r


# -- without a browser: Vega-Lite (vl-convert) and matplotlib/seaborn --------------------
@pytest.mark.parametrize("kind", ["scatter", "point", "bubble"])
def test_vega_path_symbols_are_markers(kind):
    """Vega draws every point as a <path> symbol (circle arcs, hollow for mark_point)."""
    check("altair", kind)


@pytest.mark.parametrize("kind", ["short_line", "line", "horizontal_grouped_bar", "pie", "donut"])
def test_vega_short_lines_grouped_bars_and_arcs(kind):
    check("altair", kind)


@pytest.mark.slow
@pytest.mark.parametrize("library", ["matplotlib", "seaborn"])
@pytest.mark.parametrize("kind", ["point", "bubble", "short_line", "horizontal_grouped_bar"])
def test_matplotlib_and_seaborn(library, kind):
    check(library, kind)


def test_css_colour_syntaxes():
    assert css_color("steelblue") == ("#4682b4", 1.0)
    assert css_color("hsl(120 50% 50%)")[0] == "#40bf40"
    assert css_color("oklch(0.6279 0.2577 29.23)")[0] == "#ff0000"
    assert css_color("lab(100 0 0)")[0] == "#ffffff"
    assert css_color("#0000ff80") == ("#0000ff", pytest.approx(0.5, abs=0.01))
    assert css_color("transparent") is None and css_color("none") is None


# -- in Chromium: D3, ECharts, Bokeh, Chart.js, plotly.js ---------------------------------
WEB_CASES = [(lib, kind) for lib in ("d3", "echarts", "chartjs")
             for kind in ("bar_quantitative", "short_line", "point", "scatter", "bubble")] + [
    ("chartjs", "pie"),  # svgcanvas writes NaN into zero-radius arcs: read up to the error
]


@pytest.mark.parametrize("library,kind", WEB_CASES)
def test_web_libraries(renderer, library, kind):
    if not web_js.available(library):
        pytest.skip("npm packages missing: make install puts them in tests/js")
    check(library, kind, renderer)


test_web_libraries = pytest.mark.slow(pytest.mark.browser(test_web_libraries))


@pytest.mark.slow
@pytest.mark.parametrize("library,kind", [
    ("bokeh", "horizontal_grouped_bar"), ("bokeh", "scatter"), ("bokeh", "bubble"),
    ("bokeh", "short_line"),  # centred x labels written with a start anchor
    ("bokeh", "pie"), ("bokeh", "line"),  # all ticks of an axis in one <path>
    ("plotly", "horizontal_grouped_bar"), ("plotly", "point"), ("plotly", "short_line"),
    ("plotly", "bar_quantitative")])
def test_bokeh_and_plotly(renderer, library, kind):
    check(library, kind, renderer)


test_bokeh_and_plotly = pytest.mark.browser(test_bokeh_and_plotly)


@pytest.mark.browser
def test_d3_css_class_rules_named_colours_currentcolor_and_hsl(renderer):
    """D3 styles its marks with a <style> element: `.mark { fill: currentColor }`, colour
    per series class (`steelblue`, `hsl(...)`). Exported as-is (no computed styles), the
    cascade alone must give each series its colour, and two colours mean two series."""
    if not web_js.available("d3"):
        pytest.skip("npm packages missing: make install puts them in tests/js")
    spec = make_spec(random.Random("css"), "grouped_bar")
    [svg] = web_js.svgs("d3", spec, renderer)
    assert "<style>" in svg["markup"] and "currentColor" in svg["markup"]
    charts = web_js.recover("d3", spec, renderer)
    colours = {s["color"] for s in charts[0]["series"]}
    assert {"#4682b4", css_color("hsl(28, 90%, 55%)")[0]} <= colours
    assert values_within(spec, charts) >= 0.95
    # The browser's computed styles give the same reading.
    again = web_js.recover("d3", spec, renderer, computed_styles=True)
    assert {s["color"] for s in again[0]["series"]} == colours


@pytest.mark.parametrize("library", ["altair", "matplotlib"])
def test_donut_has_a_hole_and_pie_has_none(library):
    for kind, open_centre in (("pie", False), ("donut", True)):
        spec = make_spec(random.Random(kind), kind)
        [chart] = LIBRARIES[library].recover(spec, None)
        assert chart["type"] == "pie"
        assert (chart["hole"] > 0.2) is open_centre, (library, kind, chart["hole"])


@pytest.mark.browser
def test_page_stylesheet_reaches_the_svg_through_computed_styles(renderer):
    """The same D3 chart styled from the HTML page's stylesheet (the <style> moved into
    <head>): its SVG markup alone has no colours, the browser's computed styles do."""
    if not web_js.available("d3"):
        pytest.skip("npm packages missing: make install puts them in tests/js")
    spec = make_spec(random.Random("page-css"), "grouped_bar")
    move_style = """(spec) => { document.querySelectorAll('head style').forEach(s => s.remove());
        window.drawChart(spec);
        document.head.appendChild(document.querySelector('#c svg style')); }"""

    def read(computed):
        found = web_js.svgs("d3", spec, renderer, computed_styles=computed, draw=move_style)
        assert "<style>" not in found[0]["markup"]
        return [c for _, scene in scenes_from_svgs(found) for c in read_charts(scene)]

    bare = read(False)  # every bar falls back to the initial fill: black, one "series"
    assert not bare or {s["color"] for s in bare[0]["series"]} <= {"#000000"}
    charts = read(True)
    assert {"#4682b4", css_color("hsl(28, 90%, 55%)")[0]} <= {s["color"] for s in charts[0]["series"]}
    assert values_within(spec, charts) >= 0.95
