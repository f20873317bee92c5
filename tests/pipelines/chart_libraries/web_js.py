"""D3, ECharts and Chart.js from their npm packages (tests/js/node_modules), drawn in
Chromium; each library's drawing code lives in js/<name>_draw.js."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.charts.recognize import read_charts
from pipelines.charts.svg import scenes_from_svgs

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE.parent.parent / "js" / "node_modules"
SCRIPTS = {
    "d3": ["d3/dist/d3.min.js"],
    "echarts": ["echarts/dist/echarts.min.js"],
    "chartjs": ["chart.js/dist/chart.umd.min.js", "svgcanvas/dist/svgcanvas.js"],
}
DRAW = {"d3": "d3_draw.js", "echarts": "echarts_draw.js", "chartjs": "chartjs_draw.js"}


def available(name: str) -> bool:
    """Whether the npm packages for `name` are installed (``make install`` does it)."""
    return all((NODE_MODULES / path).exists() for path in SCRIPTS[name])


def scripts(name: str) -> list[str]:
    """The JS files a page needs to draw with `name`: shims, the library, our drawing code."""
    shims = [HERE / "js" / "cjs_exports.js"] + ([HERE / "js" / "no_path2d.js"] if name == "chartjs" else [])
    return [str(p) for p in shims] + [str(NODE_MODULES / p) for p in SCRIPTS[name]] \
        + [str(HERE / "js" / DRAW[name])]


def svgs(name: str, spec: dict, renderer, computed_styles: bool = False,
         draw: str = "(spec) => window.drawChart(spec)") -> list[dict]:
    """The SVGs `name` draws for `spec` (`draw` may do more in the page after drawing)."""
    return renderer.script_svgs(scripts(name), draw, json.loads(json.dumps(spec)),
                                computed_styles=computed_styles)


def recover(name: str, spec: dict, renderer, computed_styles: bool = False) -> list[dict]:
    """Draw `spec` with library `name` in the browser and read the chart back."""
    found = svgs(name, spec, renderer, computed_styles)
    return [c for _, scene in scenes_from_svgs(found) for c in read_charts(scene)]


def recover_d3(spec, renderer):
    return recover("d3", spec, renderer)


def recover_echarts(spec, renderer):
    return recover("echarts", spec, renderer)


def recover_chartjs(spec, renderer):
    return recover("chartjs", spec, renderer)
