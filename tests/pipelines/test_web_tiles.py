"""Full-page tiles: each tile shows its own slice of the page, and capturing them leaves the
tab's viewport as it was for the next page it serves. Real Chromium, a local site."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from pipelines.web.browser import PageRenderer, PageResult, RenderSettings
from pipelines.web.testsite import serve_site

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

SETTINGS = {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "retries": 0,
            "load_grace_s": 3, "nav_timeout_s": 10, "total_timeout_s": 30}
# Bands of 512 px from the top of a 2700 px page; below its end, the white background.
BANDS = [(255, 0, 0), (0, 160, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
TALL = ("<!doctype html><html><head><style>body{margin:0;background:#fff}"
        "div{width:100%;height:512px}</style></head><body>"
        + "".join(f"<div style='background:rgb{color}'></div>" for color in BANDS[:-1])
        + f"<div style='background:rgb{BANDS[-1]};height:140px'></div></body></html>")
DIMS = ("<!doctype html><html><body><p id=d></p><script>document.getElementById('d')"
        ".textContent = 'dims:' + JSON.stringify([innerWidth, innerHeight, screen.width, "
        "screen.height, devicePixelRatio, matchMedia('(orientation: landscape)').matches]);"
        "</script></body></html>")


@pytest.fixture(scope="module")
def site():
    html = "text/html; charset=utf-8"
    server, base = serve_site({"/tall": (TALL.encode(), html), "/dims": (DIMS.encode(), html)})
    yield base
    server.shutdown()


def dims(result: PageResult) -> list:
    texts = [b["text"] for b in result.extracted["blocks"] if b["kind"] == "text"]
    return json.loads(next(t for t in texts if t.startswith("dims:"))[len("dims:"):])


def pixel(png: bytes, y: int) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (1024, 1024)
        return image.convert("RGB").getpixel((10, y))


def test_tiles_show_their_slice_and_leave_the_viewport_as_it_was(site):
    renderer = PageRenderer(RenderSettings(**SETTINGS, concurrency=1))
    try:
        # One tab serves all three pages (one origin): the dims page before and after.
        before, tall, after = (renderer.render_many([site + path])[0]
                               for path in ("/dims", "/tall", "/dims?again"))
        reused = renderer.stats["tabs_reused"]
    finally:
        renderer.close()
    assert isinstance(tall, PageResult), tall
    assert [(top, height) for top, height, _ in tall.tiles] == [(0, 1024), (1024, 1024),
                                                                (2048, 652)]
    for index, (_, _, png) in enumerate(tall.tiles):
        # Rows 100 and 600 of a tile lie in the page's bands 2*index and 2*index+1.
        assert pixel(png, 100) == BANDS[2 * index]
        assert pixel(png, 600) == BANDS[2 * index + 1]
    assert pixel(tall.tiles[-1][2], 900) == (255, 255, 255)  # below the page's end
    with Image.open(io.BytesIO(tall.viewport_png)) as shot:
        assert shot.size == (1024, 768)
    assert reused == 2
    assert dims(before) == dims(after) == [1024, 768, 1024, 768, 1, True]
