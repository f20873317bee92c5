"""Charts drawn by a web charting library (plotly.js, bundled with the plotly package)
rendered in real Chromium, read back from the SVG the browser produced."""

import os

import pytest

go = pytest.importorskip("plotly.graph_objects", reason="plotly is in the dev extra")

from pipelines.charts.recognize import read_charts  # noqa: E402
from pipelines.charts.render_html import SvgRenderer  # noqa: E402
from pipelines.charts.stage import ExtractChartsFn  # noqa: E402
from pipelines.charts.svg import scenes_from_svgs  # noqa: E402
from pipelines.core.chromium import CHROMIUM_PATH  # noqa: E402
from pipelines.core.sample import Sample  # noqa: E402

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM_PATH), reason="needs Debian chromium")]


@pytest.fixture(scope="module")
def renderer():
    with SvgRenderer() as r:
        yield r


def recover(renderer, fig):
    svgs = renderer.plotly_svgs(fig.to_json())
    return [c for _, scene in scenes_from_svgs(svgs) for c in read_charts(scene)]


def test_plotly_grouped_bars(renderer):
    fig = go.Figure([go.Bar(x=["A", "B", "C"], y=[28, 55, 43], name="2022"),
                     go.Bar(x=["A", "B", "C"], y=[5, 15, 25], name="2023")])
    fig.update_layout(title="Sales", xaxis_title="Shop", yaxis_title="Units", width=700, height=450)
    [chart] = recover(renderer, fig)
    assert chart["type"] == "grouped_bar"
    assert (chart["title"], chart["x_label"], chart["y_label"]) == ("Sales", "Shop", "Units")
    by_name = {s["name"]: {p["x"]: p["y"] for p in s["points"]} for s in chart["series"]}
    assert by_name["2022"] == pytest.approx({"A": 28, "B": 55, "C": 43}, rel=0.01)
    assert by_name["2023"] == pytest.approx({"A": 5, "B": 15, "C": 25}, rel=0.01)


def test_plotly_line_and_log_axis(renderer):
    # (plotly.js drops points that are collinear on screen from a line without markers,
    # so the data avoids three log-collinear points in a row)
    fig = go.Figure([go.Scatter(x=[1, 2, 3, 4, 5], y=[2, 40, 450, 80, 9000], mode="lines")])
    fig.update_yaxes(type="log")
    fig.update_layout(width=700, height=450)
    [chart] = recover(renderer, fig)
    assert chart["type"] == "line" and chart["y_scale"] == "log"
    pts = sorted(chart["series"][0]["points"], key=lambda p: p["x"])
    assert [p["x"] for p in pts] == pytest.approx([1, 2, 3, 4, 5], rel=0.01)
    assert [p["y"] for p in pts] == pytest.approx([2, 40, 450, 80, 9000], rel=0.02)


def test_plotly_horizontal_bars_and_pie(renderer):
    fig = go.Figure([go.Bar(x=[3.5, 7, 1.25], y=["x", "y", "z"], orientation="h")])
    fig.update_layout(width=700, height=450)
    [chart] = recover(renderer, fig)
    assert chart["type"] == "horizontal_bar"
    assert {p["x"]: p["y"] for p in chart["series"][0]["points"]} == pytest.approx(
        {"x": 3.5, "y": 7, "z": 1.25}, rel=0.01)

    pie = go.Figure([go.Pie(labels=["a", "b", "c"], values=[50, 30, 20], sort=False)])
    pie.update_layout(width=700, height=450)
    [chart] = recover(renderer, pie)
    assert chart["type"] == "pie"
    assert {p["x"]: p["y"] for p in chart["series"][0]["points"]} == pytest.approx(
        {"a": 50, "b": 30, "c": 20}, abs=0.5)


def test_stage_reads_web_svgs_from_a_rendered_page(renderer):
    """The web pipeline's meta["web"]["svgs"] shape, from a full plotly HTML page."""
    fig = go.Figure([go.Bar(x=["Mon", "Tue"], y=[4, 9])])
    fig.update_layout(width=600, height=400)
    svgs = renderer.svgs(fig.to_html(include_plotlyjs=True, full_html=True),
                         wait_selector=".main-svg")
    width, height = renderer.viewport["width"], renderer.viewport["height"]
    placed = [{"box": [b[0] / width, b[1] / height, b[2] / width, b[3] / height],
               "page_box": b, "markup": s["markup"]} for s in svgs for b in [s["box"]]]
    sample = Sample.create("web", "http://127.0.0.1/chart", meta={"web": {"svgs": placed}})
    [out] = ExtractChartsFn(raster=False).run_local([sample])
    [chart] = out.meta["chart"]["charts"]
    assert chart["source"] == "svg" and chart["recovered"]
    assert {p["x"]: p["y"] for p in chart["series"][0]["points"]} == pytest.approx(
        {"Mon": 4, "Tue": 9}, rel=0.01)
    assert 0 <= chart["box"][0] < chart["box"][2] <= 1
