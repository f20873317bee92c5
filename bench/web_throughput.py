"""Crawl throughput: pages/s of the web pipeline vs a naive browser-per-page baseline.

Serves N generated article pages (default 240) from a local server, then measures:

- ``pipeline``: the real crawl (`pipelines.web.pipeline.crawl`: Beam DirectRunner, Chromium launched
  once per worker, pages in flight per worker, viewport shot + tiles + text boxes +
  simplified HTML + shards written), with the Beam flags given by ``--beam`` (default: two
  worker processes, one per core);
- ``stage``: the same `ScreenshotPagesFn` in-process without Beam (one worker);
- ``*_ctxN``: the same with each browser context recycled for N pages
  (``pages_per_context``) instead of a fresh context per page;
- ``baseline``: what a first script does: launch Chromium, open the page, take the viewport
  and full-page screenshots, read innerText, close Chromium, for every page (run on a
  subset, default 30 pages, since it is slow).

Prints pages/s side by side, the ratio to the baseline, and CPU seconds per page summed
over this process and its descendants (Chromium, Playwright driver, Beam workers), with
``2 / CPU-s per page`` as the estimate for two idle cores. No network needed.

    .venv/bin/python bench/web_throughput.py [--pages 240] [--baseline-pages 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.core.audit import audit_run  # noqa: E402
from pipelines.core.runner import seed_sample  # noqa: E402
from pipelines.web.browser import CHROMIUM_ARGS, CHROMIUM_PATH  # noqa: E402
from pipelines.web.pipeline import ScreenshotPagesFn, crawl, web_refs  # noqa: E402
from pipelines.web.testsite import serve_site  # noqa: E402

NO_POST_STAGES = {"ocr": None, "charts": False, "label": False}


JITLESS = False  # set by --jitless


def render_settings(concurrency: int, pages_per_context: int = 1) -> dict:
    # Politeness off for our own loopback server: the point is the crawler's own cost.
    return {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "host_concurrency": concurrency,
            "concurrency": concurrency, "pages_per_context": pages_per_context,
            "jitless": JITLESS}


def run_pipeline_bench(urls: list[str], beam_args: list[str], concurrency: int,
                       pages_per_context: int = 1) -> dict:
    out = os.path.join(tempfile.mkdtemp(prefix="web-bench-"), "run")
    started = time.perf_counter()
    with TreeCpu() as usage:
        stats = crawl(urls, out, {"render": render_settings(concurrency, pages_per_context),
                                  **NO_POST_STAGES}, beam_args=beam_args, task_size=8)
    seconds = time.perf_counter() - started
    cpu = usage.seconds
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
    with TreeCpu() as usage:
        out = fn.run_local(seeds)  # includes the one Chromium launch
    seconds = time.perf_counter() - started
    cpu = usage.seconds
    pages = sum(1 for r in out if hasattr(r, "image") and not r.lineage.get("derived_from"))
    return {"pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 2),
            "cpu_s_per_page": round(cpu / max(1, pages), 3)}


def run_baseline(urls: list[str]) -> dict:
    """Naive: a fresh browser for every page, one page at a time."""
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    done = 0
    with TreeCpu() as usage, sync_playwright() as playwright:
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
    seconds = time.perf_counter() - started
    cpu = usage.seconds
    return {"pages": done, "seconds": round(seconds, 2), "pages_per_s": round(done / seconds, 2),
            "cpu_s_per_page": round(cpu / max(1, done), 3)}


class TreeCpu:
    """CPU seconds of this process and all its descendants (Chromium renderers, the
    Playwright driver, Beam workers) while a run lasts.

    Polls /proc every 50 ms and keeps each process's latest utime+stime, so processes
    that end during the run still count (Chromium's renderers are reaped outside our
    tree, so the parent's cutime would miss them). Unlike wall time this hardly depends
    on how busy the machine is: ``cores / CPU-s per page`` estimates pages/s on idle cores.
    """

    def __init__(self):
        self.seen: dict[tuple[int, str], int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "TreeCpu":
        self._sample()
        self.base = dict(self.seen)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        ticks = sum(v - self.base.get(k, 0) for k, v in self.seen.items())
        return ticks / os.sysconf("SC_CLK_TCK")

    def _poll(self) -> None:
        while not self.stop.wait(0.05):
            self._sample()

    def _sample(self) -> None:
        stats: dict[int, tuple[int, str, int]] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            # ppid, start time (tells reused pids apart), utime + stime
            stats[int(name)] = (int(fields[1]), fields[19], int(fields[11]) + int(fields[12]))
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        stack = [os.getpid()]
        while stack:
            pid = stack.pop()
            if pid in stats:
                _, started, ticks = stats[pid]
                key = (pid, started)
                self.seen[key] = max(self.seen.get(key, 0), ticks)
            stack.extend(children.get(pid, []))


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
    parser.add_argument("--skip-stage", action="store_true", help="skip the in-process runs")
    parser.add_argument("--skip-pipeline", action="store_true", help="skip the Beam runs")
    parser.add_argument("--jitless", action="store_true",
                        help="our runs with page JavaScript JIT off (RenderSettings.jitless)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    global JITLESS
    JITLESS = args.jitless
    server, base = serve_site()
    try:
        urls = [f"{base}/articles/{i}" for i in range(1, args.pages + 1)]
        # Different pages from the pipeline's, so no run profits from a warm server cache.
        baseline_urls = [f"{base}/articles/{1000 + i}" for i in range(args.baseline_pages)]
        results = {"baseline": run_baseline(baseline_urls)}
        contexts = [1] + ([args.pages_per_context] if args.pages_per_context > 1 else [])
        for ppc in contexts:
            suffix = "" if ppc == 1 else f"_ctx{ppc}"
            if not args.skip_stage:
                results["stage" + suffix] = run_stage_bench(urls, args.concurrency, ppc)
            if not args.skip_pipeline:
                results["pipeline" + suffix] = run_pipeline_bench(
                    urls, args.beam.split(), args.concurrency, ppc)
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
    for name, r in results.items():
        if name.startswith("pipeline"):
            print(f"{name}: {r['tiles']} tiles, {r['errors']} errors, {r['dropped']} dropped, "
                  f"audit ok: {r['audit_ok']}")
    print(f"{results['cpu_cores']} cores, load average {results['load_average_1m']} at the end"
          " (other work on the machine slows every run; CPU-s/page is the steadier figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
