"""Reused browser tabs keep pages apart; requests that cannot succeed fail at once; a page
that never finishes loading is captured by the settle rule. Real Chromium, local sites."""

from __future__ import annotations

import json
import socket

import pytest

from pipelines.web.browser import PageRenderer, PageResult, RenderSettings
from pipelines.web.testsite import serve_site

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

SETTINGS = {"allow_private": ["127.0.0.1", "::1"], "host_delay_s": 0, "retries": 0,
            "load_grace_s": 3, "nav_timeout_s": 10, "total_timeout_s": 30}


def nothing_but_own_cookie(url: str) -> dict:
    """What a clean page finds: only the cookie its own response just set."""
    port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    return {"cookie": f"server_cookie={port}", "local": "{}", "session": "{}", "name": ""}


@pytest.fixture(scope="module")
def two_sites():
    first, first_base = serve_site()
    second, second_base = serve_site()
    yield first_base, second_base
    first.shutdown()
    second.shutdown()


def seen(result: PageResult) -> tuple[str, dict]:
    """(Cookie header the server got, what the page's script found) of a /state page."""
    texts = [b["text"] for b in result.extracted["blocks"] if b["kind"] == "text"]
    header = next(t for t in texts if t.startswith("cookie-header:"))
    found = next(t for t in texts if t.startswith("seen:"))
    return header, json.loads(found[len("seen:"):])


def test_no_page_sees_state_left_by_another(two_sites):
    """Two loopback sites (two ports, and a second host name for the first) each set
    cookies (header and script), localStorage, sessionStorage and window.name; every
    page, on a reused tab or not, starts with none of it."""
    a, b = two_sites
    a_by_name = a.replace("127.0.0.1", "localhost")
    urls = [a + "/state", b + "/state", a + "/state?again", a_by_name + "/state",
            b + "/state?again", a + "/state?third"]
    renderer = PageRenderer(RenderSettings(**SETTINGS, concurrency=2))
    try:
        results = [renderer.render_many([url])[0] for url in urls]  # one at a time
        stats = dict(renderer.stats)
    finally:
        renderer.close()
    for url, result in zip(urls, results):
        assert isinstance(result, PageResult), (url, result)
        assert seen(result) == ("cookie-header:[]", nothing_but_own_cookie(url)), url
    # One tab per origin, reused for that origin's later pages (and only for those).
    assert stats["contexts_opened"] == 3 and stats["tabs_reused"] == 3


def test_fresh_context_per_page_when_asked(two_sites):
    a, _ = two_sites
    renderer = PageRenderer(RenderSettings(**SETTINGS, concurrency=1, pages_per_context=1))
    try:
        results = [renderer.render_many([a + f"/state?{i}"])[0] for i in range(2)]
        stats = dict(renderer.stats)
    finally:
        renderer.close()
    assert all(seen(r) == ("cookie-header:[]", nothing_but_own_cookie(a + "/")) for r in results)
    assert stats["contexts_opened"] == 2 and not stats.get("tabs_reused")


def test_dead_hosts_fail_at_once_and_long_polling_pages_settle(two_sites):
    a, _ = two_sites
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # A long grace: without the settle rule the long-polling page would wait for a load
    # event that never comes and run into the page timeout.
    renderer = PageRenderer(RenderSettings(**{**SETTINGS, "load_grace_s": 60,
                                              "total_timeout_s": 20}, concurrency=1))
    try:
        first = renderer.render_many([a + f"/dead-images?port={port}"])[0]
        second = renderer.render_many([a + f"/dead-images?port={port}&again"])[0]
        poll = renderer.render_many([a + "/long-poll"])[0]
        moved = renderer.render_many([a + "/script-redirect"])[0]
        stats = dict(renderer.stats)
    finally:
        renderer.close()
    assert isinstance(first, PageResult) and isinstance(second, PageResult)
    assert stats["dead_host_aborts"] >= 6  # the second page's images were never tried
    assert isinstance(poll, PageResult), poll
    assert poll.settled == "quiet" and not poll.load_complete
    assert any("Prices update live." in b.get("text", "") for b in poll.extracted["blocks"])
    # A script navigating away while the page is still loading: the wait follows it.
    assert isinstance(moved, PageResult), moved
    assert moved.final_url == a + "/articles/5" and moved.extracted["title"] == "Article 5"
