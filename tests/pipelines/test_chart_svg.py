"""Chart recovery from matplotlib SVG output (text as glyph paths and as <text>)."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from pipelines.charts.recognize import read_charts  # noqa: E402
from pipelines.charts.svg import parse_path, parse_svg, parse_transform  # noqa: E402


def svg_of(draw, fonttype="path", style="default") -> bytes:
    with matplotlib.rc_context({"svg.fonttype": fonttype}), plt.style.context(style):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        draw(ax)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg")
        plt.close(fig)
    return buffer.getvalue()


def values(series):
    return {p["x"]: p["y"] for p in series["points"]}


@pytest.mark.parametrize("fonttype", ["path", "none"])
def test_bar_chart_values_titles_and_axis(fonttype):
    def draw(ax):
        ax.bar(["Apples", "Pears", "Plums"], [28, 55.5, 43.25])
        ax.set_title("Fruit sold")
        ax.set_xlabel("Fruit")
        ax.set_ylabel("Boxes")

    [chart] = read_charts(parse_svg(svg_of(draw, fonttype)))
    assert chart["type"] == "bar"
    assert (chart["title"], chart["x_label"], chart["y_label"]) == ("Fruit sold", "Fruit", "Boxes")
    assert chart["y_scale"] == "linear" and chart["recovered"]
    assert values(chart["series"][0]) == pytest.approx({"Apples": 28, "Pears": 55.5, "Plums": 43.25},
                                                        rel=1e-4)


def test_grouped_bars_get_series_names_from_the_legend():
    def draw(ax):
        ax.bar([0 - 0.2, 1 - 0.2, 2 - 0.2], [3, 5, 2], 0.4, label="2022")
        ax.bar([0 + 0.2, 1 + 0.2, 2 + 0.2], [4, 1, 6], 0.4, label="2023")
        ax.set_xticks([0, 1, 2], ["N", "S", "E"])
        ax.legend()

    [chart] = read_charts(parse_svg(svg_of(draw, style="ggplot")))
    assert chart["type"] == "grouped_bar"
    by_name = {s["name"]: values(s) for s in chart["series"]}
    assert by_name["2022"] == pytest.approx({"N": 3, "S": 5, "E": 2}, rel=1e-4)
    assert by_name["2023"] == pytest.approx({"N": 4, "S": 1, "E": 6}, rel=1e-4)


def test_stacked_and_negative_bars():
    def draw(ax):
        ax.bar(["a", "b"], [10, 20], label="low")
        ax.bar(["a", "b"], [5, 7], bottom=[10, 20], label="high")
        ax.legend()

    [chart] = read_charts(parse_svg(svg_of(draw)))
    assert chart["type"] == "stacked_bar"
    by_name = {s["name"]: values(s) for s in chart["series"]}
    assert by_name == {"low": pytest.approx({"a": 10, "b": 20}, rel=1e-4),
                       "high": pytest.approx({"a": 5, "b": 7}, rel=1e-4)}

    [neg] = read_charts(parse_svg(svg_of(lambda ax: ax.bar(["x", "y", "z"], [-4, 6, -1.5]))))
    assert values(neg["series"][0]) == pytest.approx({"x": -4, "y": 6, "z": -1.5}, rel=1e-4)


def test_horizontal_bars():
    [chart] = read_charts(parse_svg(svg_of(lambda ax: ax.barh(["Q1", "Q2", "Q3"], [0.2, 0.9, 0.45]))))
    assert chart["type"] == "horizontal_bar"
    assert values(chart["series"][0]) == pytest.approx({"Q1": 0.2, "Q2": 0.9, "Q3": 0.45}, rel=1e-4)


def test_line_chart_on_a_log_axis():
    def draw(ax):
        ax.plot([1, 2, 3, 4], [3, 40, 200, 9000], marker="o")
        ax.set_yscale("log")

    [chart] = read_charts(parse_svg(svg_of(draw)))
    assert chart["type"] == "line" and chart["y_scale"] == "log"
    pts = chart["series"][0]["points"]
    assert [p["x"] for p in pts] == pytest.approx([1, 2, 3, 4], abs=1e-3)
    assert [p["y"] for p in pts] == pytest.approx([3, 40, 200, 9000], rel=1e-3)


def test_scatter_series_by_colour():
    def draw(ax):
        ax.scatter([1, 5, 9], [2, 8, 4], label="a")
        ax.scatter([2, 6], [7, 1], label="b")
        ax.legend()

    [chart] = read_charts(parse_svg(svg_of(draw, fonttype="none")))
    assert chart["type"] == "scatter"
    by_name = {s["name"]: [v for p in sorted(s["points"], key=lambda p: p["x"])
                           for v in (p["x"], p["y"])] for s in chart["series"]}
    assert by_name["a"] == pytest.approx([1, 2, 5, 8, 9, 4], abs=1e-3)
    assert by_name["b"] == pytest.approx([2, 7, 6, 1], abs=1e-3)


def test_pie_shares():
    def draw(ax):
        ax.pie([1, 2, 3, 4], labels=["w", "x", "y", "z"])

    [chart] = read_charts(parse_svg(svg_of(draw)))
    assert chart["type"] == "pie"
    assert values(chart["series"][0]) == pytest.approx({"w": 10, "x": 20, "y": 30, "z": 40}, abs=0.5)


def test_svg_without_a_chart_gives_nothing():
    markup = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><circle cx="10" cy="10" r="5"/></svg>'
    assert read_charts(parse_svg(markup)) == []


def test_path_and_transform_parsing():
    subpaths, closed = parse_path("M0,0 h10 v10 H0 Z M 20 20 a5,5 0 0 1 10,0")
    assert closed and subpaths[0] == [(0, 0), (10, 0), (10, 10), (0, 10)]
    arc = subpaths[1]
    assert arc[-1] == pytest.approx((30, 20)) and min(y for _, y in arc) == pytest.approx(15, abs=0.1)
    m = parse_transform("translate(10 5) scale(2)")
    assert (m[0], m[3], m[4], m[5]) == (2, 2, 10, 5)


def test_browser_serialised_svg_with_undeclared_prefixes_and_entities_parses():
    # outerHTML from a page: no xmlns, xlink: prefix undeclared, an HTML entity in text
    markup = ('<svg viewBox="0 0 10 10"><defs><path id="p" d="M0 0L5 5"/></defs>'
              '<use xlink:href="#p" style="stroke: #000"></use><text x="1" y="9">a&nbsp;b</text></svg>')
    scene = parse_svg(markup)
    assert [t.text for t in scene.texts] == ["a b"]
    assert scene.shapes and scene.shapes[0].points[-1] == (5, 5)


def test_unparsable_svg_is_a_value_error():
    with pytest.raises(ValueError):
        parse_svg("<svg><g></svg>")


def test_line_over_bars_is_kept_as_a_line_series():
    def draw(ax):
        ax.bar(["a", "b", "c"], [10, 20, 15], label="units")
        ax.plot(["a", "b", "c"], [12, 18, 25], color="black", marker="o", label="target")
        ax.legend()

    [chart] = read_charts(parse_svg(svg_of(draw, style="ggplot")))
    assert chart["type"] == "bar"
    by_name = {s["name"]: (s.get("mark"), values(s)) for s in chart["series"]}
    assert by_name["units"] == (None, pytest.approx({"a": 10, "b": 20, "c": 15}, rel=1e-4))
    assert by_name["target"] == ("line", pytest.approx({"a": 12, "b": 18, "c": 25}, rel=1e-4))
