"""Pure-Python parts of the web pipeline: URLs, policy rules, line grouping, tiles."""

from __future__ import annotations

import asyncio
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.web.browser import _classify_navigation_error, _transient
from pipelines.web.extract import group_lines, lines_in_region
from pipelines.web.pipeline import _place_svgs, _sorted_links, discover, web_refs
from pipelines.web.policy import (
    AddressGuard,
    HostPacer,
    RobotsCache,
    is_public_address,
    no_ai_refusal,
    refuse,
    scheme_refusal,
)
from pipelines.web.testsite import serve_site
from pipelines.web.urls import MalformedUrl, canonical_url, read_url_list, same_site


def test_canonical_url_merges_spellings():
    assert canonical_url("HTTP://Example.COM:80/a?utm_source=x&b=1#top") == \
        "http://example.com/a?b=1"
    assert canonical_url("https://example.com") == "https://example.com/"
    assert canonical_url("https://example.com:8443/x") == "https://example.com:8443/x"
    assert canonical_url("file:///etc/passwd") == "file:///etc/passwd"  # policy refuses it
    for bad in ("not a url", "http://", "", "http://exa mple.com/", "http://[::1/"):
        with pytest.raises(MalformedUrl):
            canonical_url(bad)


def test_web_refs_collapse_duplicates_and_keep_malformed():
    refs, duplicates = web_refs(["http://a.org/x#1", "http://A.org/x", "junk"])
    assert duplicates == 1 and [r["url"] for r in refs] == ["http://a.org/x", "junk"]
    assert all(r["depth"] == 0 for r in refs)


def test_url_lists_from_text_csv_parquet(tmp_path):
    (tmp_path / "u.txt").write_text("# seeds\nhttp://a.org/\n\nhttp://b.org/\n")
    (tmp_path / "u.csv").write_text("id,url\n1,http://a.org/\n2,http://c.org/\n")
    (tmp_path / "bare.csv").write_text("http://d.org/\n")
    pq.write_table(pa.table({"url": ["http://e.org/"]}), tmp_path / "u.parquet")
    assert read_url_list(str(tmp_path / "u.txt")) == ["http://a.org/", "http://b.org/"]
    assert read_url_list(str(tmp_path / "u.csv")) == ["http://a.org/", "http://c.org/"]
    assert read_url_list(str(tmp_path / "bare.csv")) == ["http://d.org/"]
    assert read_url_list(str(tmp_path / "u.parquet")) == ["http://e.org/"]


def test_same_site_and_links():
    assert same_site("http://www.a.org/x", "http://a.org/y")
    assert not same_site("http://a.org/", "http://b.org/")
    assert not same_site("http://a.org:81/", "http://a.org/")
    links, pdfs = _sorted_links("http://a.org/", [
        "http://a.org/", "http://a.org/b#x", "http://a.org/b", "http://b.org/c",
        "http://b.org/paper.PDF", "javascript:void(0)"])
    assert links == ["http://a.org/b"] and pdfs == ["http://b.org/paper.PDF"]


def test_policy_rules():
    assert scheme_refusal("chrome://settings").reason == "blocked_scheme"
    assert scheme_refusal("https://a.org/") is None
    assert no_ai_refusal("noai, noimageai").reason == "no_ai"
    assert no_ai_refusal("otherbot: noai") is None
    assert no_ai_refusal("vlforge: noimageai").reason == "no_ai"
    assert no_ai_refusal("noindex, nofollow") is None
    for private in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1",
                    "fe80::1", "::ffff:127.0.0.1", "0.0.0.0"):
        assert not is_public_address(private), private
    assert is_public_address("8.8.8.8") and is_public_address("2606:4700::1111")


def test_address_guard():
    assert AddressGuard().check("http://127.0.0.1:9/").reason == "private_address"
    assert AddressGuard(["127.0.0.1"]).check("http://127.0.0.1:9/") is None
    assert AddressGuard(["127.0.0.1"]).check("http://127.0.0.2:9/").reason == "private_address"
    assert AddressGuard(True).check("http://10.0.0.1/") is None
    failure = AddressGuard().check("http://no-such-host.invalid/")
    assert failure.reason == "dns_failure" and failure.kind == "error"


def test_robots_cache_against_a_server():
    server, base = serve_site()
    try:
        robots = RobotsCache()
        assert robots.check(base + "/private/x").reason == "robots_disallowed"
        assert robots.check(base + "/articles/1") is None
        assert robots.check(base + "/private/y").reason == "robots_disallowed"
        assert server.RequestHandlerClass.hits["/robots.txt"] == 1  # cached per host
    finally:
        server.shutdown()


def test_host_pacer_spaces_page_starts():
    async def starts():
        pacer, times = HostPacer(delay=0.2), []
        for _ in range(3):
            await pacer.wait_turn("a.org")
            times.append(time.monotonic())
        await pacer.wait_turn("b.org")  # another host does not wait
        times.append(time.monotonic())
        return times

    times = asyncio.run(starts())
    assert times[1] - times[0] >= 0.19 and times[2] - times[1] >= 0.19
    assert times[3] - times[2] < 0.15


def test_error_classification():
    assert _classify_navigation_error(Exception("net::ERR_NAME_NOT_RESOLVED at x")).reason \
        == "dns_failure"
    assert _classify_navigation_error(Exception("net::ERR_CONNECTION_RESET at x")).reason \
        == "err_connection_reset"
    assert _transient(refuse("err_connection_reset", "", "error"))
    assert _transient(refuse("http_503", "", "error"))
    assert not _transient(refuse("http_500", "", "error"))
    assert not _transient(refuse("http_404", "", "dropped"))
    assert not _transient(refuse("navigation_timeout", "", "error"))


def test_group_lines_and_regions():
    words = [["Hello", 10, 10, 60, 30, 0], ["world", 65, 10, 120, 30, 0],
             ["Next", 10, 40, 50, 60, 0],                       # a new line below
             ["Side", 600, 10, 650, 30, 1],                     # another block
             ["Far", 10, 1100, 40, 1120, 2]]                    # on the second tile
    lines = group_lines(words)
    assert [line["text"] for line in lines] == ["Hello world", "Next", "Side", "Far"]
    view_lines, view_words = lines_in_region(lines, 0, 1000, 500)
    assert [line["text"] for line in view_lines] == ["Hello world", "Next", "Side"]
    assert view_lines[0]["box"] == [0.01, 0.02, 0.12, 0.06] and len(view_words) == 4
    tile_lines, _ = lines_in_region(lines, 1000, 1000, 1000)
    assert tile_lines == [{"box": [0.01, 0.1, 0.04, 0.12], "text": "Far"}]


def test_svgs_belong_to_one_image():
    svgs = [{"box": [0, 100, 400, 400], "markup": "<svg a/>"},      # in the viewport
            {"box": [0, 700, 400, 1000], "markup": "<svg b/>"},     # crosses the fold
            {"box": [0, 5000, 400, 5300], "markup": "<svg c/>"}]    # below the tiles
    placed = _place_svgs(svgs, view_h=768, tile=1024, tiles=2, width=1024)
    assert [s["markup"] for s in placed["viewport"]] == ["<svg a/>"]
    assert [s["markup"] for s in placed[0]] == ["<svg b/>"] and set(placed) == {"viewport", 0}
    assert placed[0][0]["box"] == [0.0, 0.68359, 0.39062, 0.97656]


def test_discover_respects_depth_and_budget():
    pages = [{"url": "http://a.org/", "depth": 0, "links": ["http://a.org/1", "http://a.org/2",
                                                            "http://a.org/3"]},
             {"url": "http://a.org/1", "depth": 1, "links": ["http://a.org/9"]}]
    refs, _ = web_refs(["http://a.org/", "http://a.org/1"])
    new = discover(pages, refs, depth=1, max_pages=3)
    assert [r["url"] for r in new] == ["http://a.org/2"]  # budget 3, two known
    assert new[0]["depth"] == 1 and new[0]["found_on"] == "http://a.org/"
    assert discover(pages, refs, depth=0, max_pages=100) == []
    assert [r["url"] for r in discover(pages, refs, depth=2, max_pages=100)] == \
        ["http://a.org/2", "http://a.org/3", "http://a.org/9"]
