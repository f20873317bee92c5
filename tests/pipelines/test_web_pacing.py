"""Per-host politeness limits pages *loading* from a host, not pages being read out: a page
whose load is over gives its host slot to the host's next page before its read-out and
screenshots. Real Chromium, a local site."""

from __future__ import annotations

import pytest

from pipelines.web.browser import PageRenderer, PageResult, RenderSettings
from pipelines.web.testsite import serve_site

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

HTML = "text/html; charset=utf-8"
# Right after its load event (a task queued before any read-out can reach the page), the
# page blocks its own main thread (a synchronous request) until
# the site has seen /second requested, or 30 s: the read-out cannot run before that.
HOLDS = ("<!doctype html><html><body><p>First page.</p><script>"
         "addEventListener('load', () => setTimeout(() => {"
         "const x = new XMLHttpRequest(); x.open('GET', '/wait-for?path=/second', false);"
         "x.send(); const p = document.createElement('p'); p.textContent = 'held:' +"
         " x.responseText; document.body.appendChild(p); }, 0));</script></body></html>")
SECOND = "<!doctype html><html><body><p>Second page.</p></body></html>"


def test_next_page_of_a_host_loads_while_the_previous_is_read_out():
    server, base = serve_site({"/first": (HOLDS.encode(), HTML),
                               "/second": (SECOND.encode(), HTML)})
    renderer = PageRenderer(RenderSettings(
        allow_private=["127.0.0.1"], host_delay_s=0, host_concurrency=1, concurrency=2,
        retries=0, nav_timeout_s=10, total_timeout_s=60))
    try:
        first, second = renderer.render_many([f"{base}/first", f"{base}/second"])
    finally:
        renderer.close()
        server.shutdown()
    assert isinstance(first, PageResult) and isinstance(second, PageResult), (first, second)
    texts = [b["text"] for b in first.extracted["blocks"] if b["kind"] == "text"]
    # With the slot held to the first page's end, /second could only start after the
    # first page's read-out, which waited for /second: "not seen" after 30 s.
    assert "held:seen /second" in texts, texts
