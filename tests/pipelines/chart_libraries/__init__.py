"""Charts drawn by real charting libraries, for tests and bench/chart_accuracy.py.

Each adapter module turns one random `spec` (spec.py) into the SVG the library itself
draws: Vega-Lite/Altair through vl-convert (no browser), matplotlib and seaborn through
the SVG backend, plotly.js, Bokeh, D3, ECharts and Chart.js in Debian Chromium with the
library loaded from its own package (PyPI wheel or npm package under tests/js).
`LIBRARIES` maps a library name to its adapter; `recover(name, spec, renderer)` draws and
reads the chart back.
"""

from __future__ import annotations

from typing import Callable

from . import bokeh_lib, mpl, plotly_lib, vega, web_js
from .spec import KINDS, make_spec  # noqa: F401  (re-exported for tests and the bench)


class Library:
    """One charting library: which chart kinds it draws and how to draw + read one."""

    def __init__(self, name: str, recover: Callable, kinds=KINDS, browser: bool = True,
                 available: Callable[[], bool] = lambda: True):
        self.name, self.recover, self.kinds = name, recover, tuple(kinds)
        self.browser, self.available = browser, available


LIBRARIES = {lib.name: lib for lib in [
    Library("altair", vega.recover, browser=False),
    Library("d3", web_js.recover_d3, available=lambda: web_js.available("d3")),
    Library("echarts", web_js.recover_echarts, available=lambda: web_js.available("echarts")),
    Library("bokeh", bokeh_lib.recover),
    Library("plotly", plotly_lib.recover),
    Library("chartjs", web_js.recover_chartjs, available=lambda: web_js.available("chartjs")),
    Library("matplotlib", mpl.recover_matplotlib, browser=False),
    Library("seaborn", mpl.recover_seaborn, kinds=mpl.SEABORN_KINDS, browser=False),
]}
