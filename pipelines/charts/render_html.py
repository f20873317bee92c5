"""Render HTML in Chromium and take the inline SVG charts it draws (plotly.js, D3, ...).

Charting libraries draw in the browser, so their data only exists as SVG after the
script ran. `rendered_svgs(html)` loads the page in Debian's headless Chromium (`pipelines.core.chromium`) (through
playwright, no browser download) and returns every visible top-level ``<svg>`` with its
box in page pixels — the same shape as ``meta["web"]["svgs"]`` from the web pipeline.
"""

from __future__ import annotations

import logging

from pipelines.core.chromium import CHROMIUM_ARGS, CHROMIUM_PATH

log = logging.getLogger(__name__)


# Every visible top-level <svg>, shadow roots included (Bokeh draws inside one). With
# `computed`, each element of a copy gets the browser's computed paint and text styles
# inline first: page CSS (``.bar { fill: steelblue }`` in the HTML's stylesheet) does not
# travel with the SVG's outerHTML, and the computed values are the truth the page shows.
_COLLECT = """(computed) => {
  const PROPS = ['fill', 'stroke', 'stroke-width', 'fill-opacity', 'stroke-opacity', 'opacity',
                 'display', 'visibility', 'font-size', 'text-anchor', 'color'];
  const found = [];
  const visit = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName.toLowerCase() === 'svg' && !(el.parentElement && el.parentElement.closest('svg')))
        found.push(el);
      if (el.shadowRoot) visit(el.shadowRoot);
    }
  };
  visit(document);
  const markup = (svg) => {
    if (!computed) return svg.outerHTML;
    const copy = svg.cloneNode(true);
    const src = [svg, ...svg.querySelectorAll('*')], dst = [copy, ...copy.querySelectorAll('*')];
    src.forEach((el, i) => {
      const cs = getComputedStyle(el);
      dst[i].setAttribute('style', PROPS.map(p => `${p}: ${cs.getPropertyValue(p)}`).join('; '));
    });
    return copy.outerHTML;
  };
  return found.map(el => { const r = el.getBoundingClientRect();
      return {markup: markup(el), box: [r.left + scrollX, r.top + scrollY,
                                        r.right + scrollX, r.bottom + scrollY]}; })
    .filter(s => s.box[2] - s.box[0] > 20 && s.box[3] - s.box[1] > 20);
}"""


class SvgRenderer:
    """One Chromium for many pages (open once, `svgs(html)` per page, then `close`)."""

    def __init__(self, width: int = 1000, height: int = 700):
        self.viewport = {"width": width, "height": height}
        self._pw = self._browser = None
        self._plotly_page = None
        self._script_pages: dict[str, object] = {}

    def open(self) -> "SvgRenderer":
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:  # pragma: no cover - playwright is a core dependency
            raise RuntimeError("playwright is needed to render HTML charts") from exc
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        return self

    def svgs(self, html: str, wait_selector: str | None = None,
             timeout_ms: int = 15000, computed_styles: bool = False) -> list[dict]:
        """The SVGs a page draws; `computed_styles` inlines the browser's computed paint."""
        page = self._browser.new_page(viewport=self.viewport)
        try:
            page.set_content(html, wait_until="load", timeout=timeout_ms)
            if wait_selector:
                page.wait_for_selector(wait_selector, timeout=timeout_ms)
            page.wait_for_timeout(50)  # let a charting library finish its first draw
            return page.evaluate(_COLLECT, computed_styles)
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
        return page.evaluate(_COLLECT, False)

    def script_svgs(self, scripts: list[str], draw: str, arg, computed_styles: bool = False,
                    timeout_ms: int = 15000) -> list[dict]:
        """Run `draw` (a JS function of `arg`, may be async) in a page holding `scripts`.

        `scripts` are JS files on disk (a charting library from its npm package, then the
        code that uses it); they load once into a page kept for these scripts, so drawing
        many charts with one library costs one library load. `draw` must leave the chart
        in ``#c`` (emptied before each call); returns the SVGs the page then shows.
        """
        key = "\n".join(scripts)
        page = self._script_pages.get(key)
        if page is None:
            page = self._browser.new_page(viewport=self.viewport)
            page.set_default_timeout(timeout_ms)
            page.set_content("<html><head></head><body style='margin:0'><div id='c'></div></body></html>")
            for path in scripts:
                page.add_script_tag(path=path)
            self._script_pages[key] = page
        page.evaluate("() => { document.getElementById('c').innerHTML = ''; }")
        page.evaluate(f"async (arg) => {{ await ({draw})(arg); }}", arg)
        return page.evaluate(_COLLECT, computed_styles)

    def close(self) -> None:
        self._plotly_page = None
        self._script_pages = {}
        if self._browser is not None:
            self._browser.close()
        if self._pw is not None:
            self._pw.stop()
        self._browser = self._pw = None

    def __enter__(self) -> "SvgRenderer":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
