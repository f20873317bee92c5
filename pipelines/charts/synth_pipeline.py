"""The "synth" pipeline: synthetic charts with the code that drew them and their table.

``vlforge charts synth --n N --out RUN`` plans N inputs (chart i of a seed), and the
`DrawChartsFn` stage draws each with a real plotting library — matplotlib (the script of
`pipelines.charts.synthetic.plotting_code`, run as-is) or plotly (`plotly_code`, drawn by
plotly.js in Chromium) — through the same runner, tasks, shards and manifest as every
other pipeline. Each sample holds:

- the chart image (PNG);
- ``.txt``: the code that drew it (chart → code, the paper's "plots with the code that
  drew them" web-code data);
- ``.md``: its data table as markdown (chart → table);
- ``meta["chart"]["charts"][0]``: type, titles, series, ``code``, ``table_csv``,
  ``family``; ``meta["synth"]``: family, seed, index, spec;
- a taxonomy label (Conversion / Image to Code / Chart to Code), known by construction.

Chart i's spec is seeded by (seed, i) alone, so a resumed or retried run redraws exactly
the charts it lost.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.charts.plotly_code import figure_json, figure_size, plotly_code
from pipelines.charts.synth_config import SynthConfig
from pipelines.charts.synthetic import make_spec, plotting_code, render, table_csv
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.stage import Record, StageFn

log = logging.getLogger(__name__)

PIPELINE = "synth"
LEAF_CHART_TO_CODE = "conversion.image_to_code.chart_to_code"


def synth_refs(n: int, config: SynthConfig) -> list[dict[str, Any]]:
    """One input per chart: chart i is drawn by families[i % len(families)]."""
    refs = []
    for index in range(n):
        family = config.families[index % len(config.families)]
        refs.append(input_ref(PIPELINE, f"synthetic:{family}:{config.seed}:{index}",
                              family=family, seed=config.seed, index=index))
    return refs


def chart_spec(seed: int, index: int, chart_types: list[str]) -> dict[str, Any]:
    """The spec of chart `index` of `seed` (independent of every other chart)."""
    rng = random.Random(f"vlforge-synth/{seed}/{index}")
    return make_spec(rng, rng.choice(chart_types))


def table_markdown(spec: dict[str, Any]) -> str:
    """The data table as a markdown table (same rows and columns as `table_csv`)."""
    rows = list(csv.reader(io.StringIO(table_csv(spec))))
    head, body = rows[0], rows[1:]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


class PlotlyPainter:
    """plotly.js in one Chromium page: a figure's JSON in, a PNG of the plot out."""

    def __init__(self) -> None:
        self._pw = self._browser = self._page = None

    def png(self, fig_json: str, width: int, height: int) -> bytes:
        if self._page is None:
            self._open()
        self._page.set_viewport_size({"width": width, "height": height})
        self._page.evaluate("""async (spec) => { const f = JSON.parse(spec);
            const div = document.getElementById('c');
            Plotly.purge(div);
            await Plotly.newPlot(div, f.data, f.layout || {}, {staticPlot: true}); }""",
                            fig_json)
        return self._page.locator("#c").screenshot(type="png")

    def _open(self) -> None:
        from playwright.sync_api import sync_playwright
        from plotly.offline import get_plotlyjs

        from pipelines.core.chromium import CHROMIUM_ARGS, CHROMIUM_PATH

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        self._page = self._browser.new_page()
        self._page.set_content("<html><body style='margin:0'><div id='c'></div></body></html>")
        self._page.add_script_tag(content=get_plotlyjs())  # 4 MB, loaded once per worker

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._pw is not None:
            self._pw.stop()
        self._pw = self._browser = self._page = None


class DrawChartsFn(StageFn):
    """Seed (family, seed, index) → the drawn chart with its code and table."""

    stage = "DrawCharts"

    def __init__(self, chart_types: list[str], dpi: int = 100):
        self.chart_types = list(chart_types)
        self.dpi = dpi

    def open(self) -> None:
        self.painter = PlotlyPainter()  # Chromium starts on the first plotly chart only

    def close(self) -> None:
        self.painter.close()

    def process_sample(self, seed: Sample) -> Iterable[Record]:
        ref = seed.lineage["input_ref"]
        family = ref["family"]
        spec = chart_spec(int(ref["seed"]), int(ref["index"]), self.chart_types)
        if family == "matplotlib":
            code = plotting_code(spec)
            image = render(spec, "png", dpi=self.dpi)
        elif family == "plotly":
            code = plotly_code(spec)
            image = self.painter.png(figure_json(code), *figure_size(spec))
        else:
            raise ValueError(f"unknown chart family {family!r}")
        chart = {"type": spec["type"], "title": spec["title"], "x_label": spec["x_label"],
                 "y_label": spec["y_label"], "series": spec["series"], "source": "synthetic",
                 "recovered": True, "box": [0.0, 0.0, 1.0, 1.0], "code": code,
                 "table_csv": table_csv(spec), "family": family}
        yield (seed.replace(image=image, text=code, markdown=table_markdown(spec))
               .with_meta("chart", {"charts": [chart]})
               .with_meta("synth", {"family": family, "seed": int(ref["seed"]),
                                    "index": int(ref["index"]), "spec": spec})
               .with_meta("taxonomy", {"leaf": LEAF_CHART_TO_CODE, "confidence": 1.0,
                                       "reason": "synthetic chart drawn by its code"}))


def build_stages(config: SynthConfig | Mapping[str, Any]) -> list[StageFn]:
    """DrawCharts (no post stages: the chart, its text and its label are known)."""
    config = SynthConfig.coerce(config)
    return [DrawChartsFn(config.chart_types, dpi=config.dpi)]
