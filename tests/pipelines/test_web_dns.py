"""Host lookups never hold up other pages: a host is looked up once however many requests
wait for it, a lookup the resolver leaves unanswered is tried again beside it (hedged), and
a page's own checks do not queue behind other hosts' lookups. Real Chromium, a local site.

A resolver that drops queries cannot be made here without a network: the guard's real
`resolve` is wrapped so the lookups of ``*.hold.invalid`` hosts wait until the test lets
them go (``.invalid`` never resolves, RFC 2606), as a dropped query waits for glibc's
timeout.
"""

from __future__ import annotations

import collections
import threading
import time

import pytest

from pipelines.web.browser import DNS_TRIES, PageRenderer, PageResult, RenderSettings
from pipelines.web.testsite import serve_site

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

HTML = "text/html; charset=utf-8"
SETTINGS = {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "retries": 0,
            "nav_timeout_s": 20, "total_timeout_s": 90}


def page(images: list[str]) -> bytes:
    tags = "".join(f'<img src="{src}" width=20 height=20>' for src in images)
    return f"<!doctype html><html><body><p>Pictures.</p>{tags}</body></html>".encode()


@pytest.fixture()
def held():
    """A renderer whose lookups of ``*.hold.invalid`` wait for `release` (all of them for
    ``h*`` hosts, only the first try for ``once.hold.invalid``), with lookups counted."""
    files = {"/many-hosts": (page([f"http://h{i}.hold.invalid/a.png" for i in range(12)]),
                             HTML),
             "/one-host": (page([f"http://once.hold.invalid/{i}.png" for i in range(10)]),
                           HTML),
             "/plain": (page([]), HTML)}
    server, base = serve_site(files)
    renderer = PageRenderer(RenderSettings(**SETTINGS))
    release, calls, real = threading.Event(), collections.Counter(), renderer.guard.resolve

    def resolve(host: str):
        if renderer.guard.resolved(host):  # a cache hit (`check`) is no lookup
            return real(host)
        calls[host] += 1
        if host.endswith(".hold.invalid") and (host != "once.hold.invalid"
                                               or calls[host] == 1):
            release.wait(120)
        return real(host)

    renderer.guard.resolve = resolve
    try:
        yield renderer, base, release, calls
    finally:
        release.set()
        renderer.close()
        server.shutdown()


def wait_until(condition, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def test_a_page_starts_while_other_hosts_lookups_hang(held):
    renderer, base, release, calls = held
    hanging = renderer.submit(f"{base}/many-hosts")
    wait_until(lambda: sum(n for h, n in calls.items() if h.startswith("h")) >= 6)
    # Loopback and its robots.txt are known by now; a lookup queue in front of this
    # page's checks (the old shared 6-thread executor) held it until the lookups ended.
    plain = renderer.submit(f"{base}/plain").result(timeout=60)
    assert isinstance(plain, PageResult), plain
    assert not release.is_set()
    release.set()
    assert isinstance(hanging.result(timeout=120), PageResult)


def test_one_hedged_lookup_per_host(held):
    renderer, base, release, calls = held
    result = renderer.submit(f"{base}/one-host").result(timeout=60)
    assert isinstance(result, PageResult), result
    # Ten requests for one host: one lookup, plus the hedge that answers while the first
    # try still hangs (without the hedge the host stays unknown until release).
    wait_until(lambda: renderer.guard.resolved("once.hold.invalid"))
    assert not release.is_set()
    assert 2 <= calls["once.hold.invalid"] <= DNS_TRIES, calls
    assert renderer.stats["dns_hedged"] >= 1
