"""Per-host politeness limits pages *loading* from a host, not pages being read out: a page
whose load is over gives its host slot to the host's next page before its read-out and
screenshots. The crawl stage keeps the renderer fed: it queues the next page without
waiting for the previous one. Real Chromium, a local site."""

from __future__ import annotations

import time
import urllib.request

import pytest

from pipelines.core.outcome import Outcome
from pipelines.core.runner import seed_sample
from pipelines.core.task_end import TaskEnd
from pipelines.web.browser import PageRenderer, PageResult, RenderSettings
from pipelines.web.pipeline import ScreenshotPagesFn, web_refs
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


def test_stage_hands_the_renderer_the_next_page_without_waiting(tmp_path):
    # With one page at a time, the stage still returns from a seed at once (the page is
    # queued): it used to wait for the page to finish before taking the next seed, so
    # the renderer sat idle while the stage ran each finished page through the post
    # stages and the sink. The page here is only answered once /table was requested,
    # which this test does after the stage returned.
    server, base = serve_site()
    refs, _ = web_refs([f"{base}/wait-for?path=/table"])
    fn = ScreenshotPagesFn({"allow_private": ["127.0.0.1"], "host_delay_s": 0,
                            "concurrency": 1, "retries": 0})
    fn.setup()
    try:
        first = list(fn.process(seed_sample("web", refs[0], "t00000")))
        with urllib.request.urlopen(f"{base}/table") as response:
            response.read()
        rest = list(fn._drain())
    finally:
        fn.teardown()
        server.shutdown()
    assert first == []
    pages = [r for r in rest if getattr(r, "meta", {}).get("web", {}).get("kind") == "page"]
    assert len(pages) == 1, rest
    page = pages[0]
    assert "seen /table" in page.text and "not seen" not in page.text, page.text


def test_a_page_still_loading_keeps_its_hosts_slot():
    # One page at a time per host: the first page's document is held (3 s) unless the
    # second page is requested meanwhile, which only a host slot given back too early
    # (before the first page's load is over) would allow. The second page is handed over
    # only once the first one's request reached the site: two pages handed over together
    # may take the slot in either order (a CI run had /second first, and rightly "seen").
    server, base = serve_site({"/second": (SECOND.encode(), HTML)})
    refs, _ = web_refs([f"{base}/wait-for?path=/second&limit=3", f"{base}/second"])
    fn = ScreenshotPagesFn({"allow_private": ["127.0.0.1"], "host_delay_s": 0,
                            "host_concurrency": 1, "concurrency": 2, "retries": 0})
    hits = server.RequestHandlerClass.hits
    fn.setup()
    try:
        out = list(fn.process(seed_sample("web", refs[0], "t00000")))
        deadline = time.monotonic() + 60
        while not hits.get("/wait-for") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hits.get("/wait-for") and not hits.get("/second"), hits
        out += list(fn.process(seed_sample("web", refs[1], "t00000"))) + list(fn._drain())
    finally:
        fn.teardown()
        server.shutdown()
    pages = {p.lineage["input_id"]: p for p in out
             if getattr(p, "meta", {}).get("web", {}).get("kind") == "page"}
    assert len(pages) == 2, out
    first = pages[refs[0]["input_id"]]
    assert "not seen /second" in first.text, first.text


def test_next_tasks_pages_render_while_a_task_ends():
    # Task A's page is only answered once task B's page was requested; B's seed reaches
    # the stage after A's end marker. Without overlap, A's end drained A first (B's page
    # could not start: "not seen" after the limit); with it, A's end waits in its place
    # while B renders, and still leaves after A's records and before B's.
    server, base = serve_site({"/b-page": (SECOND.encode(), HTML)})
    refs, _ = web_refs([f"{base}/wait-for?path=/b-page&limit=8", f"{base}/b-page"])
    fn = ScreenshotPagesFn({"allow_private": ["127.0.0.1"], "host_delay_s": 0,
                            "retries": 0}, overlap_tasks=True)
    stream = [seed_sample("web", refs[0], "tA"), TaskEnd.of("tA"),
              seed_sample("web", refs[1], "tB"), TaskEnd.of("tB")]
    fn.setup()
    try:
        out = [o for record in stream for o in fn.process(record)] + list(fn._drain())
    finally:
        fn.teardown()
        server.shutdown()
    tasks = [o.task if isinstance(o, Outcome) else o.lineage["task"] for o in out]
    ends = [i for i, o in enumerate(out) if isinstance(o, TaskEnd)]
    assert [out[i].task for i in ends] == ["tA", "tB"]
    assert set(tasks[:ends[0]]) == {"tA"} and set(tasks[ends[0] + 1:ends[1]]) == {"tB"}
    page = next(o for o in out if getattr(o, "meta", {}).get("web", {}).get("kind") == "page"
                and o.lineage["task"] == "tA")
    assert page.text.strip() == "seen /b-page", page.text
