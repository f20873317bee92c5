"""Requests that can never succeed (a host that does not resolve, an address the policy
refuses) are blocked inside Chromium once the route handler has refused their host, with
the same record on the page as before; blocking is by exact host, and a page of 80 images
that load finishes with blocking on. Real Chromium, a local site."""

from __future__ import annotations

import collections
import io

import pytest
from PIL import Image

from pipelines.web.browser import PageRenderer, PageResult, RenderSettings
from pipelines.web.interleave import BODIES_PER_IMAGE, DerivedSettings, screen_reason
from pipelines.web.testsite import serve_site

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

# A long grace: a page waiting on a request that never ends would show as "grace", not
# "load"; the load event comes at once only when every request ended at once.
SETTINGS = {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "retries": 0,
            "load_grace_s": 20, "nav_timeout_s": 10, "total_timeout_s": 60}
DEAD = "http://no-such-host.invalid"  # never resolves (RFC 6761)
PRIVATE = "http://127.0.0.2:9"  # a loopback address the settings do not allow
IMAGES = 80


def picture(n: int) -> bytes:
    """A distinct 120 x 90 PNG (a different colour per n)."""
    out = io.BytesIO()
    Image.new("RGB", (120, 90), (n * 3 % 256, 90 + n % 100, 255 - n * 2 % 256)).save(out, "PNG")
    return out.getvalue()


def page(title: str, body: str) -> tuple[bytes, str]:
    return (f"<!doctype html><html><head><title>{title}</title></head><body><p>{title}.</p>"
            f"{body}</body></html>").encode(), "text/html; charset=utf-8"


def unreachable(n: int) -> str:
    """Images, a script and a frame that cannot succeed: five on a host that does not
    resolve, three on an address the policy refuses."""
    return ("".join(f'<img src="{DEAD}/{n}/{i}.png" width=100 height=80>' for i in range(4))
            + f'<script src="{DEAD}/{n}/tracker.js"></script>'
            + "".join(f'<img src="{PRIVATE}/{n}/{i}.png" width=100 height=80>' for i in range(2))
            + f'<iframe src="{PRIVATE}/{n}/frame.html"></iframe>')


@pytest.fixture(scope="module")
def site():
    files = {f"/pic/{i}.png": (picture(i), "image/png") for i in range(IMAGES)}
    for n in range(3):
        # The last image's own host is fine; only its query names the blocked host.
        files[f"/mixed/{n}"] = page(f"Mixed {n}", unreachable(n)
                                    + f'<img src="/pic/{n}.png?via={DEAD}/">')
        files[f"/eighty/{n}"] = page(f"Eighty {n}", "".join(
            f'<p>Picture {i} of the essay.</p><img src="/pic/{i}.png" width=120 height=90 '
            f'alt="picture {i}">' for i in range(IMAGES)) + unreachable(10 + n))
    server, base = serve_site(files)
    yield base
    server.shutdown()


def image_reasons(result: PageResult) -> collections.Counter:
    """The record of the page's images: (where from, screening reason) counted; a reason
    of "" is a candidate."""
    derived = DerivedSettings(min_image_side=8)
    return collections.Counter(
        ("via" if "?via=" in b["src"] else "dead" if b["src"].startswith(DEAD)
         else "private" if b["src"].startswith(PRIVATE) else b["src"], screen_reason(b, derived))
        for b in result.extracted["blocks"] if b["kind"] == "image")


def test_refused_hosts_are_blocked_inside_chromium_with_the_same_record(site):
    renderer = PageRenderer(RenderSettings(**SETTINGS, concurrency=1))
    try:
        first = renderer.render_many([site + "/mixed/0"])[0]
        after_first = dict(renderer.stats)
        later = [renderer.render_many([site + f"/mixed/{n}"])[0] for n in (1, 2)]
        stats = dict(renderer.stats)
    finally:
        renderer.close()
    for result in [first, *later]:
        assert isinstance(result, PageResult), result
        # Every request ended at once: the load event came.
        assert result.settled == "load" and result.load_complete
        # Failed loads, as the route handler's refusals left them; the image whose
        # query only names the blocked host loaded (blocking is by exact host).
        assert image_reasons(result) == {("dead", "failed_load"): 4,
                                         ("private", "failed_load"): 2, ("via", ""): 1}
    # The first page's requests went through the route handler, which refused each; of
    # the later pages' only the frame's document reached it (a navigation, which the
    # patterns do not stop), the other seven were blocked in Chromium.
    assert after_first["refused_requests"] == 8
    assert stats["refused_requests"] - after_first["refused_requests"] == 2 * 1
    assert stats["blocked_in_browser"] - after_first.get("blocked_in_browser", 0) >= 2 * 7


def test_a_page_of_eighty_images_finishes_with_blocking_on(site):
    """The page that hung once blocking first needed Chromium's Network domain: 80
    images that load, on a tab that blocks hosts, their bytes taken for the derived
    samples."""
    renderer = PageRenderer(RenderSettings(**SETTINGS, concurrency=2), DerivedSettings())
    try:
        results = renderer.render_many([site + f"/eighty/{n}" for n in range(3)])
        stats = dict(renderer.stats)
    finally:
        renderer.close()
    assert stats["blocked_in_browser"] >= 7  # the third page's, at least (frames: the route)
    for result in results:
        assert isinstance(result, PageResult), result
        assert result.settled == "load"
        loaded = [b for b in result.extracted["blocks"]
                  if b["kind"] == "image" and "/pic/" in b["src"]]
        assert len(loaded) == IMAGES and all(b["natural"] == [120, 90] for b in loaded)
        wanted = min(IMAGES, BODIES_PER_IMAGE * DerivedSettings().max_images)
        assert len(result.image_bodies) == wanted
        assert all(body.startswith(b"\x89PNG") for body in result.image_bodies.values())
