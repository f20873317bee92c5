"""The web pipeline end to end: real Chromium, real Beam DirectRunner, a local test site."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from pipelines.core.audit import audit_run
from pipelines.core.run_dir import RunDir
from pipelines.web.pipeline import CRAWL_FIELDS, ScreenshotPagesFn, crawl, scan_pages, web_refs
from pipelines.core.runner import seed_sample
from pipelines.web.testsite import serve_site

pytestmark = [pytest.mark.timeout(240), pytest.mark.browser, pytest.mark.slow]

# Short limits so the slow pages cost seconds, not minutes.
RENDER = {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "host_concurrency": 4,
          "concurrency": 4, "nav_timeout_s": 5, "load_grace_s": 1, "total_timeout_s": 20,
          "retries": 1, "backoff_s": 0.2, "max_tiles": 3}

PATHS = ["/", "/articles/1", "/articles/2", "/table", "/chart", "/slow-resource", "/never",
         "/loop", "/private/secret", "/endless", "/alerts", "/missing", "/broken",
         "/data.csv", "/docs/paper.pdf", "/noai", "/huge", "/copy", "/moved",
         "/redirect-private", "/flaky", "/download"]
OTHER = ["not a url", "http://", "http://no-such-host.invalid/page", "file:///etc/passwd"]


@pytest.fixture(scope="module")
def site_server():
    server, base = serve_site()
    yield server, base
    server.shutdown()


@pytest.fixture(scope="module")
def site(site_server):
    return site_server[1]


@pytest.fixture(scope="module")
def crawled(site, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("web") / "run")
    urls = [site + p for p in PATHS] + OTHER + [site + "/articles/1#again"]
    stats = crawl(urls, out, {"render": RENDER, "ocr": None, "charts": False, "label": False},
                  depth=1, max_pages=40, task_size=8)
    run = RunDir(out)
    samples = list(run.iter_samples())
    pages = {s.meta["web"]["url"].replace(site, ""): s for s in samples
             if not s.lineage.get("derived_from")}
    outcomes = {o.input_ref["url"].replace(site, ""): o for o in run.outcomes()}
    return {"out": out, "stats": stats, "run": run, "samples": samples, "pages": pages,
            "outcomes": outcomes, "site": site}


def test_every_url_is_accounted_for(crawled):
    report = audit_run(crawled["out"])
    assert report.ok, report.to_dict()
    stats = crawled["stats"]
    # 20 site URLs + 4 bad ones (the '#again' spelling collapses into /articles/1),
    # plus what depth-1 link following discovered.
    assert stats["duplicate_urls_in_list"] == 1
    assert stats["inputs"] == len(crawled["pages"]) + stats["dropped"] + stats["errors"]
    assert stats["inputs"] > len(PATHS) + len(OTHER) and stats["rounds"] == 2


@pytest.mark.parametrize("path,kind,reason", [
    ("/loop", "error", "redirect_loop"),
    ("/private/secret", "dropped", "robots_disallowed"),
    ("/never", "error", "navigation_timeout"),
    ("/endless", "error", "page_timeout"),
    ("/missing", "dropped", "http_404"),
    ("/broken", "error", "http_500"),
    ("/data.csv", "dropped", "not_html"),
    ("/download", "dropped", "download_blocked"),
    ("/docs/paper.pdf", "dropped", "is_pdf"),
    ("/noai", "dropped", "no_ai"),
    ("/redirect-private", "dropped", "private_address"),
    ("not a url", "dropped", "malformed_url"),
    ("http://", "dropped", "malformed_url"),
    ("http://no-such-host.invalid/page", "error", "dns_failure"),
    ("file:///etc/passwd", "dropped", "blocked_scheme"),
])
def test_bad_input_ends_with_a_reason(crawled, path, kind, reason):
    outcome = crawled["outcomes"][path]
    assert (outcome.kind, outcome.reason) == (kind, reason), outcome.message
    assert outcome.stage == "ScreenshotPages" and outcome.message


def test_only_transient_failures_are_retried(crawled, site_server):
    hits = site_server[0].RequestHandlerClass.hits
    assert hits["/flaky"] == 2  # 503, then the page on the retry
    assert crawled["pages"]["/flaky"].meta["web"]["attempts"] == 2
    assert hits["/broken"] == 1 and hits["/missing"] == 1  # 500/404 are final


def test_article_page_sample(crawled):
    page = crawled["pages"]["/articles/1"]
    web = page.meta["web"]
    with Image.open(io.BytesIO(page.image)) as image:
        assert image.size == (1024, 768)
    assert web["title"] == "Article 1" and web["lang"] == "en" and web["status"] == 200
    assert "Article 1:" in page.text and web["lines"] and web["words"]
    first = web["lines"][0]
    assert first["text"].startswith("Article 1:")
    x0, y0, x1, y1 = first["box"]
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 0.2  # the heading sits at the top
    assert all(0 <= v <= 1 for line in web["lines"] for v in line["box"])
    # Simplified HTML: structure and links kept, scripts and styles gone.
    assert "<h1>" in page.html and 'href="/articles/3"' in page.html
    assert "<script" not in page.html and "<style" not in page.html and "tracking" not in page.html
    assert web["render"]["viewport"] == [1024, 768] and web["render"]["chromium"]
    assert crawled["site"] + "/docs/report-1.pdf" in web["pdf_links"]


def test_tall_page_is_cut_into_tiles(crawled):
    page = crawled["pages"]["/huge"]
    tiles = [s for s in crawled["samples"] if s.lineage.get("derived_from") == page.key
             and s.meta["web"]["kind"] == "tile"]
    assert len(tiles) == 3 == len(page.meta["web"]["tiles"])  # capped by max_tiles
    for index, tile in enumerate(sorted(tiles, key=lambda t: t.meta["web"]["tile"])):
        with Image.open(io.BytesIO(tile.image)) as image:
            assert image.size == (1024, 1024)
        meta = tile.meta["web"]
        assert meta["tile"] == index and meta["top_px"] == 1024 * index and meta["lines"]
        assert tile.lineage["item_id"] == page.item_id and tile.text
    assert page.meta["web"]["page_height"] > 3 * 1024


def test_table_and_svg_chart(crawled):
    table = crawled["pages"]["/table"]
    assert "<table" in table.html and "<td>City 3</td>" in table.html
    assert any("City 3" in line["text"] for line in table.meta["web"]["lines"])
    chart = crawled["pages"]["/chart"].meta["web"]
    assert len(chart["svgs"]) == 1  # the 16px icon is not a chart
    svg = chart["svgs"][0]
    assert svg["markup"].startswith("<svg") and "Sales per quarter" in svg["markup"]
    x0, y0, x1, y1 = svg["box"]
    assert abs((x1 - x0) * 1024 - 400) < 2 and abs((y1 - y0) * 768 - 300) < 2


def test_slow_and_hostile_pages_still_yield_samples(crawled):
    slow = crawled["pages"]["/slow-resource"].meta["web"]
    assert slow["load_complete"] is False  # captured although an image never arrived
    alerts = crawled["pages"]["/alerts"]
    assert "Many alerts" in alerts.text  # the alert storm and window.open were suppressed


def test_duplicates_are_dropped(crawled):
    pages, outcomes = crawled["pages"], crawled["outcomes"]
    # /copy (a seed) serves what /articles/7 (found in round 2) serves.
    assert "/copy" in pages and outcomes["/articles/7"].reason == "duplicate_content"
    # /moved (a seed) redirects to /articles/3, which round 2 then finds as a link.
    assert pages["/moved"].meta["web"]["final_url"].endswith("/articles/3")
    assert outcomes["/articles/3"].reason == "duplicate_url"


def test_links_are_followed_one_level_and_pdfs_listed(crawled):
    pages, site = crawled["pages"], crawled["site"]
    assert pages["/articles/4"].meta["web"]["depth"] == 1  # linked from the index only
    refs = crawled["run"].input_refs()
    found = {r["url"] for r in refs if r["depth"] == 1}
    seeds = {r["url"] for r in refs if r["depth"] == 0}
    # Exactly the same-site links of the depth-0 pages that were not seeds; nothing deeper.
    linked = {link for page in pages.values() if page.meta["web"]["depth"] == 0
              for link in page.meta["web"]["links"]}
    assert found == linked - seeds and found
    assert max(r["depth"] for r in refs) == 1
    assert "http://example.org/elsewhere" not in found | seeds  # other sites not followed
    with open(crawled["out"] + "/pdf_links.txt") as handle:
        pdfs = handle.read().split()
    assert site + "/docs/annual.pdf" in pdfs and site + "/docs/paper.pdf" in pdfs


def test_the_crawl_loop_keeps_a_few_fields_of_each_page(crawled):
    # the crawl's driver holds every page between rounds: only what discovery, the seen
    # file and the PDF list read, and links only of pages whose links are followed
    pages = list(scan_pages(crawled["run"], follow_below=1))
    by_url = {p["url"].replace(crawled["site"], ""): p for p in pages}
    assert len(pages) == len(crawled["pages"]) and by_url.keys() == crawled["pages"].keys()
    for path, page in by_url.items():
        web = crawled["pages"][path].meta["web"]
        assert set(page) == {*CRAWL_FIELDS, "links"}
        assert {k: page[k] for k in CRAWL_FIELDS} == {k: web[k] for k in CRAWL_FIELDS}
        assert page["links"] == (web["links"] if web["depth"] == 0 else [])
    assert any(p["links"] for p in pages) and any(p["depth"] == 1 for p in pages)
    assert not any(p["links"] for p in scan_pages(crawled["run"], follow_below=0))


def test_rerun_completes_without_duplicates(crawled):
    stats = crawl([crawled["site"] + p for p in PATHS], crawled["out"],
                  {"render": RENDER, "ocr": None, "charts": False, "label": False},
                  depth=1, max_pages=40)
    assert stats["inputs"] == crawled["stats"]["inputs"]
    assert stats["written"] == crawled["stats"]["written"]
    assert audit_run(crawled["out"]).ok


def test_private_addresses_refused_without_allow_private(site):
    refs, _ = web_refs([site + "/articles/3"])
    fn = ScreenshotPagesFn({**RENDER, "allow_private": False})
    (out,) = fn.run_local([seed_sample("web", refs[0], "t00000")])
    assert out.kind == "dropped" and out.reason == "private_address"


def test_recycled_contexts_start_without_cookies(site):
    refs, _ = web_refs([site + "/cookie", site + "/cookie?again=1", site + "/articles/8"])
    fn = ScreenshotPagesFn({**RENDER, "concurrency": 1, "pages_per_context": 3})
    out = fn.run_local([seed_sample("web", ref, "t00000") for ref in refs])
    texts = [s.text for s in out if s.meta["web"]["url"].startswith(site + "/cookie")
             and s.meta["web"]["kind"] == "page"]
    assert len(texts) == 2 and all("cookie:[]" in t for t in texts)  # cleared in between
    assert sum(1 for s in out if s.meta["web"]["render"]["pages_per_context"] == 3
               and s.meta["web"]["kind"] == "page") == 3


def test_crawl_command(site, tmp_path, capsys):
    from pipelines.cli import main

    urls = tmp_path / "urls.csv"
    urls.write_text(f"url\n{site}/table\n{site}/missing\n")
    out = str(tmp_path / "run")
    code = main(["crawl", str(urls), "--out", out, "--allow-address", "127.0.0.1",
                 "--host-delay", "0", "--ocr", "none", "--no-charts", "--no-label", "--json"])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["inputs"], stats["written"], stats["dropped"]) == (2, 1, 1)
    assert stats["rounds"] == 1 and audit_run(out).ok
    bad = main(["crawl", f"{site}/table", "--out", str(tmp_path / "r2"),
                "--allow-address", "localhost-ish"])
    assert bad == 1 and "not an IP address" in capsys.readouterr().err
