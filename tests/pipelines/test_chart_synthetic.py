"""Synthetic charts: the stored code redraws the chart, the table matches the data, and
the vector reader recovers it."""

import random

import pytest

from pipelines.charts.recognize import read_charts
from pipelines.charts.svg import parse_svg
from pipelines.charts.synthetic import CHART_TYPES, make_spec, plotting_code, render, table_csv


@pytest.mark.parametrize("kind", CHART_TYPES)
def test_each_type_renders_and_is_recovered(kind):
    spec = make_spec(random.Random(11), kind)
    assert spec["type"] == kind
    [chart] = read_charts(parse_svg(render(spec, "svg")))
    truth = [p["y"] for s in spec["series"] for p in s["points"]]
    got = [p["y"] for s in chart["series"] for p in s["points"]]
    assert len(got) >= len(truth) * 0.9
    if kind != "pie":  # pie shares are percentages of the whole
        close = sum(any(abs(g - t) <= 0.02 * abs(t) for g in got) for t in truth)
        assert close >= 0.9 * len(truth)


def test_code_is_standalone_and_draws_the_same_picture():
    spec = make_spec(random.Random(5), "grouped_bar")
    code = plotting_code(spec)
    namespace = {}
    import matplotlib
    import matplotlib.pyplot as plt

    # The stored code runs by itself; its plt.style.use() must not leak into later tests
    # (a leaked "classic" style made the raster test's chart unreadable to OCR).
    with matplotlib.rc_context():
        exec(compile(code, "<chart>", "exec"), namespace)
    assert namespace["fig"].axes and "ax.bar(" in code

    plt.close(namespace["fig"])
    assert render(spec, "png")[:4] == b"\x89PNG"


def test_table_csv_has_a_column_per_series_and_a_row_per_x():
    spec = make_spec(random.Random(2), "stacked_bar")
    rows = table_csv(spec).strip().splitlines()
    assert len(rows) == 1 + len(spec["series"][0]["points"])
    assert len(rows[0].split(",")) == 1 + len(spec["series"])


def test_specs_vary_in_style_labels_and_ranges():
    rng = random.Random(0)
    specs = [make_spec(rng) for _ in range(40)]
    assert len({s["style"] for s in specs}) >= 4
    assert len({s["type"] for s in specs}) >= 6
    assert len({s["series"][0]["points"][0]["x"] for s in specs}) >= 4
