"""Render HTML in Chromium and take the inline SVG charts it draws (plotly.js, D3, ...).

Charting libraries draw in the browser, so their data only exists as SVG after the
script ran. `rendered_svgs(html)` loads the page in headless Debian Chromium (through
playwright, no browser download) and returns every visible top-level ``<svg>`` with its
box in page pixels — the same shape as ``meta["web"]["svgs"]`` from the web pipeline.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

_COLLECT = """() => Array.from(document.querySelectorAll('svg'))
  .filter(el => !el.parentElement.closest('svg'))
  .map(el => { const r = el.getBoundingClientRect();
               return {markup: el.outerHTML, box: [r.left + scrollX, r.top + scrollY,
                                                   r.right + scrollX, r.bottom + scrollY]}; })
  .filter(s => s.box[2] - s.box[0] > 20 && s.box[3] - s.box[1] > 20)"""


class SvgRenderer:
    """One Chromium for many pages (open once, `svgs(html)` per page, then `close`)."""

    def __init__(self, width: int = 1000, height: int = 700):
        self.viewport = {"width": width, "height": height}
        self._pw = self._browser = None
        self._plotly_page = None

    def open(self) -> "SvgRenderer":
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:  # pragma: no cover - playwright is a core dependency
            raise RuntimeError("playwright is needed to render HTML charts") from exc
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        return self

    def svgs(self, html: str, wait_selector: str | None = None,
             timeout_ms: int = 15000) -> list[dict]:
        page = self._browser.new_page(viewport=self.viewport)
        try:
            page.set_content(html, wait_until="load", timeout=timeout_ms)
            if wait_selector:
                page.wait_for_selector(wait_selector, timeout=timeout_ms)
            page.wait_for_timeout(50)  # let a charting library finish its first draw
            return page.evaluate(_COLLECT)
        finally:
            page.close()

    def plotly_svgs(self, figure_json: str, timeout_ms: int = 15000) -> list[dict]:
        """Draw a plotly figure (``fig.to_json()``) with the bundled plotly.js; its SVGs.

        plotly.js (4 MB) is loaded into one page once; each figure is a ``Plotly.newPlot``
        in that page, so many figures render in well under a second each.
        """
        if self._plotly_page is None:
            from plotly.offline import get_plotlyjs

            self._plotly_page = self._browser.new_page(viewport=self.viewport)
            self._plotly_page.set_content("<html><body style='margin:0'><div id='c'></div></body></html>")
            self._plotly_page.add_script_tag(content=get_plotlyjs())
        page = self._plotly_page
        page.evaluate("""async (spec) => { const f = JSON.parse(spec);
            const div = document.getElementById('c');
            Plotly.purge(div);
            await Plotly.newPlot(div, f.data, f.layout || {}, {staticPlot: true}); }""",
                      figure_json)
        return page.evaluate(_COLLECT)

    def close(self) -> None:
        self._plotly_page = None
        if self._browser is not None:
            self._browser.close()
        if self._pw is not None:
            self._pw.stop()
        self._browser = self._pw = None

    def __enter__(self) -> "SvgRenderer":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
