"""The page's extraction crosses from Chromium as one JSON string: pages that hook
JSON (a toJSON on Array.prototype as old Prototype.js adds, a replaced JSON.stringify)
still give the same words, blocks and boxes, and keep their own hooks. Real Chromium."""

from __future__ import annotations

import pytest

from pipelines.web.browser import PageRenderer, PageResult, RenderSettings
from pipelines.web.testsite import serve_site

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

SETTINGS = {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "retries": 0,
            "load_grace_s": 3, "nav_timeout_s": 10, "total_timeout_s": 30}
BODY = ("<h1>Handover</h1><p>Plain words with boxes.</p><ul><li>one</li><li>two</li></ul>"
        "<img src='data:image/gif;base64,R0lGODlhAQABAAAAACw=' width=300 height=200 alt=pic>")
HOOKS = {
    "/plain": "",
    # Prototype.js 1.6: arrays serialise to strings unless the hook is set aside.
    "/array-tojson": "Array.prototype.toJSON = function () { return 'hooked'; };",
    "/object-tojson": "Object.prototype.toJSON = function () { return 1; };",
    "/replaced": "JSON.stringify = function () { return '{\"broken\": true}'; };",
}


@pytest.fixture(scope="module")
def site():
    html = "text/html; charset=utf-8"
    server, base = serve_site({
        path: (f"<!doctype html><html><head><title>t</title><script>{hook}</script></head>"
               f"<body>{BODY}</body></html>".encode(), html) for path, hook in HOOKS.items()})
    yield base
    server.shutdown()


def _shape(result: PageResult) -> tuple:
    ex = result.extracted
    words = [(w[0], tuple(round(v) for v in w[1:5])) for w in ex["words"]]  # text, box
    blocks = [(b["kind"], b["tag"], b.get("text", b.get("alt"))) for b in ex["blocks"]]
    return words, blocks, ex["pageHeight"], type(ex["wordsTruncated"])


def test_hooked_pages_extract_like_a_plain_page(site):
    renderer = PageRenderer(RenderSettings(**SETTINGS, concurrency=1))
    try:
        results = {path: renderer.render_many([site + path])[0] for path in HOOKS}
    finally:
        renderer.close()
    assert all(isinstance(r, PageResult) for r in results.values()), results
    plain = _shape(results["/plain"])
    assert [w for w, _ in plain[0]] == ["Handover", "Plain", "words", "with", "boxes.",
                                        "one", "two"]
    assert ("image", "img", "pic") in plain[1] and plain[3] is bool
    for path in HOOKS:
        assert _shape(results[path]) == plain, path


def test_hooks_are_set_aside_and_put_back():
    from playwright.sync_api import sync_playwright

    from pipelines.web.browser import CHROMIUM_ARGS, CHROMIUM_PATH
    from pipelines.web.extract import AS_JSON_JS

    probe = ("() => {" + AS_JSON_JS + "Array.prototype.toJSON = function () { return 'h'; };"
             "const out = asJson({a: [1, 2], b: undefined});"
             "return [out, JSON.stringify([1]), typeof Array.prototype.toJSON,"
             " Object.prototype.hasOwnProperty('toJSON')]; }")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        try:
            out = browser.new_page().evaluate(probe)
        finally:
            browser.close()
    # The value without the hook (undefined as null), then the page's hook as it was.
    assert out == ['{"a":[1,2],"b":null}', '"h"', "function", False]
