"""Crawl throughput: pages/s of the web pipeline vs a naive browser-per-page baseline.

Serves N generated article pages (default 240) from a local server, then measures:

- ``pipeline``: the real crawl (`pipelines.web.crawl`: Beam DirectRunner, Chromium launched
  once per worker, pages in flight per worker, viewport shot + tiles + text boxes +
  simplified HTML + shards written), with the Beam flags given by ``--beam`` (default: two
  worker processes, one per core);
- ``stage``: the same `ScreenshotPagesFn` in-process without Beam (one worker);
- ``baseline``: what a first script does: launch Chromium, open the page, take the viewport
  and full-page screenshots, read innerText, close Chromium, for every page (run on a
  subset, default 30 pages, since it is slow).

Prints pages/s side by side and the ratio to the baseline. No network needed.

    .venv/bin/python bench/web_throughput.py [--pages 240] [--baseline-pages 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.audit import audit_run  # noqa: E402
from pipelines.runner import seed_sample  # noqa: E402
from pipelines.web import ScreenshotPagesFn, crawl, web_refs  # noqa: E402
from pipelines.web_browser import CHROMIUM_ARGS, CHROMIUM_PATH  # noqa: E402
from pipelines.web_testsite import serve_site  # noqa: E402

NO_POST_STAGES = {"ocr": None, "charts": False, "label": False}


def render_settings(concurrency: int, pages_per_context: int = 1) -> dict:
    # Politeness off for our own loopback server: the point is the crawler's own cost.
    return {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "host_concurrency": concurrency,
            "concurrency": concurrency, "pages_per_context": pages_per_context}


def run_pipeline_bench(urls: list[str], beam_args: list[str], concurrency: int,
                       pages_per_context: int = 1) -> dict:
    out = os.path.join(tempfile.mkdtemp(prefix="web-bench-"), "run")
    started = time.perf_counter()
    cpu = tree_cpu_seconds()
    stats = crawl(urls, out, {"render": render_settings(concurrency, pages_per_context),
                              **NO_POST_STAGES}, beam_args=beam_args, task_size=8)
    seconds = time.perf_counter() - started
    cpu = tree_cpu_seconds() - cpu
    return {"pages": stats["written"], "seconds": round(seconds, 2),
            "pages_per_s": round(stats["written"] / seconds, 2), "tiles": stats["derived"],
            "cpu_s_per_page": round(cpu / max(1, stats["written"]), 3),
            "errors": stats["errors"], "dropped": stats["dropped"],
            "audit_ok": audit_run(out, verify_shards=False).ok}


def run_stage_bench(urls: list[str], concurrency: int, pages_per_context: int = 1) -> dict:
    refs, _ = web_refs(urls)
    seeds = [seed_sample("web", ref, "t00000") for ref in refs]
    fn = ScreenshotPagesFn(render_settings(concurrency, pages_per_context))
    started = time.perf_counter()
    cpu = tree_cpu_seconds()
    out = fn.run_local(seeds)  # includes the one Chromium launch
    seconds = time.perf_counter() - started
    cpu = tree_cpu_seconds() - cpu
    pages = sum(1 for r in out if hasattr(r, "image") and not r.lineage.get("derived_from"))
    return {"pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 2),
            "cpu_s_per_page": round(cpu / max(1, pages), 3)}


def run_baseline(urls: list[str]) -> dict:
    """Naive: a fresh browser for every page, one page at a time."""
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    cpu = tree_cpu_seconds()
    done = 0
    with sync_playwright() as playwright:
        for url in urls:
            browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH,
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.goto(url, wait_until="load")
            page.screenshot(type="png")
            page.screenshot(type="png", full_page=True)
            page.evaluate("document.body.innerText")
            browser.close()
            done += 1
        cpu = tree_cpu_seconds() - cpu  # before the driver exits, so its time counts
    seconds = time.perf_counter() - started
    return {"pages": done, "seconds": round(seconds, 2), "pages_per_s": round(done / seconds, 2),
            "cpu_s_per_page": round(cpu / max(1, done), 3)}


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and all its descendants (Chromium's
    renderers, the Playwright driver, Beam workers), from /proc; reaped children count
    through their parents. Unlike wall time, this hardly depends on how busy the machine
    is, so ``cores / cpu_s_per_page`` estimates pages/s on an idle machine."""
    ticks: dict[int, int] = {}
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        ticks[int(name)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        children.setdefault(int(fields[1]), []).append(int(name))
    total, stack = 0, [os.getpid()]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=240, help="pages for the pipeline runs")
    parser.add_argument("--baseline-pages", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4, help="pages in flight per worker")
    parser.add_argument("--beam", default="--direct_num_workers=2 "
                        "--direct_running_mode=multi_processing",
                        help="Beam flags for the pipeline run")
    parser.add_argument("--pages-per-context", type=int, default=8,
                        help="also run the pipeline recycling each context for N pages "
                             "(default 8; 1 skips that run)")
    parser.add_argument("--skip-stage", action="store_true", help="skip the in-process run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    server, base = serve_site()
    try:
        urls = [f"{base}/articles/{i}" for i in range(1, args.pages + 1)]
        # Different pages from the pipeline's, so no run profits from a warm server cache.
        baseline_urls = [f"{base}/articles/{1000 + i}" for i in range(args.baseline_pages)]
        results = {"baseline": run_baseline(baseline_urls)}
        if not args.skip_stage:
            results["stage"] = run_stage_bench(urls, args.concurrency)
        results["pipeline"] = run_pipeline_bench(urls, args.beam.split(), args.concurrency)
        if args.pages_per_context > 1:
            results[f"pipeline_ctx{args.pages_per_context}"] = run_pipeline_bench(
                urls, args.beam.split(), args.concurrency, args.pages_per_context)
    finally:
        server.shutdown()
    base_rate = results["baseline"]["pages_per_s"]
    for result in results.values():
        result["x_baseline"] = round(result["pages_per_s"] / base_rate, 1)
    results["cpu_cores"] = os.cpu_count()
    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    cores = 2
    print(f"{'run':15s} {'pages':>6s} {'seconds':>8s} {'pages/s':>8s} {'x baseline':>10s} "
          f"{'CPU-s/page':>10s} {'est. pages/s on 2 idle cores':>28s}")
    for name, r in results.items():
        if isinstance(r, dict):
            print(f"{name:15s} {r['pages']:6d} {r['seconds']:8.2f} {r['pages_per_s']:8.2f} "
                  f"{r['x_baseline']:10.1f} {r['cpu_s_per_page']:10.3f} "
                  f"{cores / r['cpu_s_per_page']:28.1f}")
    p = results["pipeline"]
    print(f"pipeline: {p['tiles']} tiles, {p['errors']} errors, {p['dropped']} dropped, "
          f"audit ok: {p['audit_ok']}; {results['cpu_cores']} cores, "
          f"load average {results['load_average_1m']} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
