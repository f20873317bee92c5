"""`vlforge charts synth`: a real Beam run whose saved code redraws the saved data.

Each sample's code is run again in a fresh Python process; the data is recovered from
what it draws (plotly: the figure's traces; matplotlib: the SVG it saves, read back by the
chart reader) and compared with the sample's data table.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from pipelines.charts.recognize import read_charts
from pipelines.charts.svg import parse_svg
from pipelines.cli import main as vlforge
from pipelines.core.audit import audit_run
from pipelines.core.run_dir import RunDir

MATPLOTLIB_RERUN = """
import sys, matplotlib
matplotlib.use('Agg')
namespace = {}
exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), namespace)
with matplotlib.rc_context({'svg.fonttype': 'none', 'axes.formatter.useoffset': False}):
    namespace['fig'].savefig(sys.argv[2], format='svg')
"""
PLOTLY_RERUN = """
import sys
namespace = {}
exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), namespace)
sys.stdout.write(namespace['fig'].to_json())
"""


def table_of(sample) -> dict[str, list[tuple[str, float]]]:
    """{series column: [(x, y), ...]} from the sample's saved CSV table."""
    rows = list(csv.reader(io.StringIO(sample.meta["chart"]["charts"][0]["table_csv"])))
    head, body = rows[0], rows[1:]
    return {name: [(row[0], float(row[i + 1])) for row in body if row[i + 1] != ""]
            for i, name in enumerate(head[1:])}


def rerun(code: str, script: str, tmp_path, *args: str) -> str:
    path = tmp_path / "chart.py"
    path.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", script, str(path), *args], check=True,
                          capture_output=True, text=True, timeout=120)
    return done.stdout


def plotly_data(fig_json: str, kind: str) -> list[list[tuple[str, float]]]:
    series = []
    for trace in json.loads(fig_json)["data"]:
        if kind == "pie":
            xs, ys = trace["labels"], trace["values"]
        elif kind == "horizontal_bar":
            xs, ys = trace["y"], trace["x"]
        else:
            xs, ys = trace["x"], trace["y"]
        series.append([(str(x), float(y)) for x, y in zip(xs, ys, strict=True)])
    return series


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synth") / "run")
    code = vlforge(["charts", "synth", "--n", "10", "--out", out, "--seed", "3",
                    "--chart-types", "bar", "horizontal_bar", "grouped_bar", "line",
                    "scatter", "pie"])
    assert code == 0
    return RunDir(out).require_complete()


@pytest.mark.slow
def test_synth_run_is_a_complete_run_of_both_families(synth_run):
    assert audit_run(synth_run.url).ok
    samples = list(synth_run.iter_samples())
    assert len(samples) == 10
    families = [s.meta["synth"]["family"] for s in samples]
    assert families.count("matplotlib") == families.count("plotly") == 5
    for sample in samples:
        assert sample.image.startswith(b"\x89PNG")
        chart = sample.meta["chart"]["charts"][0]
        assert sample.text == chart["code"] and sample.markdown.startswith("| x |")
        assert sample.meta["taxonomy"]["leaf"] == "conversion.image_to_code.chart_to_code"


@pytest.mark.slow
def test_plotly_code_redraws_the_same_data(synth_run, tmp_path):
    samples = [s for s in synth_run.iter_samples() if s.meta["synth"]["family"] == "plotly"]
    assert samples
    for sample in samples:
        kind = sample.meta["chart"]["charts"][0]["type"]
        drawn = plotly_data(rerun(sample.text, PLOTLY_RERUN, tmp_path), kind)
        table = table_of(sample)
        expected = [[(str(x), y) for x, y in points] for points in table.values()]
        assert drawn == expected, sample.key


@pytest.mark.slow
def test_matplotlib_code_redraws_the_same_data(synth_run, tmp_path):
    samples = [s for s in synth_run.iter_samples() if s.meta["synth"]["family"] == "matplotlib"]
    assert samples
    for sample in samples:
        svg = tmp_path / "chart.svg"
        rerun(sample.text, MATPLOTLIB_RERUN, tmp_path, str(svg))
        [chart] = read_charts(parse_svg(svg.read_bytes()))
        truth = [y for points in table_of(sample).values() for _, y in points]
        got = [p["y"] for s in chart["series"] for p in s["points"]]
        if chart["type"] == "pie":  # the reader gives each slice's share of the whole
            truth = [100 * y / sum(truth) for y in truth]
        close = sum(any(abs(g - t) <= 0.02 * abs(t) + 1e-9 for g in got) for t in truth)
        assert close >= 0.9 * len(truth), (sample.key, chart["type"], truth, got)
