"""Crawl throughput: pages/s of the web pipeline vs a naive browser-per-page baseline, on
the generated bench site and on saved real pages, side by side with CPU-seconds.

- ``baseline``: what a first script does: launch Chromium (the crawl's own binary,
  `CHROMIUM_PATH`: the headless shell when installed, which is also what Playwright itself
  launches for headless Chromium), open the page, take the viewport
  and full-page screenshots, read innerText, close Chromium, for every page (a subset of
  the bench site, default 30 pages, since it is slow), ``--baseline-runs`` times (default
  3): the run with the median CPU-s/page is the baseline, every run's figures are printed;
- ``site``: the real crawl (`pipelines.web.pipeline.crawl`: Beam, Chromium launched once
  per worker, pages in flight, a tab reused per origin with its state cleared after each
  page, viewport shot + tiles + text blocks + main text + shards) on N generated article
  pages (default 240), default settings but ``host_delay_s=0`` (one loopback host), no
  post stages (the baseline has none);
- ``corpus``: the same crawl on ``corpus/pages/*/index.html`` served on loopback (each page
  ``--corpus-copies`` times, default 8, each copy made distinct so deduplication keeps it), with
  ``--host-delay 0`` and every other default kept, the CLI's post stages included (OCR
  where no text layer, charts, taxonomy labels); ``--no-post-stages`` skips them;
- ``stage``: with ``--stage``, the bench site through `ScreenshotPagesFn` in-process
  without Beam (one worker), for the renderer's own cost.

Prints pages/s side by side, the ratio to the baseline, and CPU seconds per page summed
over this process and its descendants (Chromium, Playwright driver, Beam workers; also
split by kind of process in ``--json``), the cores the run kept busy (its CPU-s / wall:
below ~1.9 on an idle 2-core machine, the run waits on something other than CPU), with
``2 / CPU-s per page`` as the estimate for two idle cores, and the load average before and
after (other work on a shared machine slows every wall-clock figure). No network needed.

    .venv/bin/python bench/web_throughput.py [--pages 240] [--baseline-pages 30]
        [--baseline-runs 3] [--corpus-copies 8] [--no-post-stages] [--json]
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
from pipelines.core.config import CLI_POST_STAGES  # noqa: E402
from pipelines.core.runner import seed_sample  # noqa: E402
from pipelines.web.browser import CHROMIUM_ARGS, CHROMIUM_PATH  # noqa: E402
from pipelines.web.pipeline import ScreenshotPagesFn, crawl, web_refs  # noqa: E402
from pipelines.web.testsite import serve_site  # noqa: E402

NO_POST_STAGES = {"ocr": None, "charts": False, "label": False}
CLI_DEFAULT_POST_STAGES = {"ocr": CLI_POST_STAGES.ocr, "ocr_policy": CLI_POST_STAGES.ocr_policy,
                           "charts": CLI_POST_STAGES.charts, "label": CLI_POST_STAGES.label}
CORPUS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                       "shared", "corpus", "pages"))


def render_settings(**extra) -> dict:
    """Default render settings, but our loopback server may be crawled without a pause
    between pages (``--host-delay 0``): the point is the crawler's own cost."""
    return {"allow_private": ["127.0.0.1"], "host_delay_s": 0, **extra}


def run_pipeline_bench(urls: list[str], beam_args: list[str], post: dict,
                       render: dict | None = None) -> dict:
    out = os.path.join(tempfile.mkdtemp(prefix="web-bench-"), "run")
    started = time.perf_counter()
    with TreeCpu() as usage:
        stats = crawl(urls, out, {"render": render or render_settings(), **post},
                      beam_args=beam_args)
    seconds = time.perf_counter() - started
    return {"pages": stats["written"], "seconds": round(seconds, 2),
            "pages_per_s": round(stats["written"] / seconds, 2), "tiles": stats["derived"],
            "cpu_s_per_page": round(usage.seconds / max(1, stats["written"]), 3),
            "cores_busy": round(usage.seconds / seconds, 2),
            "cpu_s_per_page_by_process": per_page(usage, stats["written"]),
            "errors": stats["errors"], "dropped": stats["dropped"],
            "audit_ok": audit_run(out, verify_shards=False).ok}


def run_stage_bench(urls: list[str]) -> dict:
    refs, _ = web_refs(urls)
    seeds = [seed_sample("web", ref, "t00000") for ref in refs]
    fn = ScreenshotPagesFn(render_settings())
    started = time.perf_counter()
    with TreeCpu() as usage:
        out = fn.run_local(seeds)  # includes the one Chromium launch
    seconds = time.perf_counter() - started
    pages = sum(1 for r in out if hasattr(r, "image") and not r.lineage.get("derived_from"))
    return {"pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 2),
            "cpu_s_per_page": round(usage.seconds / max(1, pages), 3),
            "cores_busy": round(usage.seconds / seconds, 2),
            "cpu_s_per_page_by_process": per_page(usage, pages)}


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
    return {"pages": done, "seconds": round(seconds, 2), "pages_per_s": round(done / seconds, 2),
            "cpu_s_per_page": round(usage.seconds / max(1, done), 3),
            "cores_busy": round(usage.seconds / seconds, 2),
            "cpu_s_per_page_by_process": per_page(usage, done)}


def run_baselines(urls: list[str], runs: int) -> dict:
    """`run_baseline` `runs` times on the same pages; the run with the median CPU-s per
    page stands for the baseline (one run's figure moved by +-15% between runs on a
    shared machine), with every run's CPU-s/page and pages/s listed beside it."""
    results = [run_baseline(urls) for _ in range(max(1, runs))]
    chosen = sorted(results, key=lambda r: r["cpu_s_per_page"])[(len(results) - 1) // 2]
    return {**chosen, "runs": len(results),
            "cpu_s_per_page_runs": [r["cpu_s_per_page"] for r in results],
            "pages_per_s_runs": [r["pages_per_s"] for r in results]}


def corpus_files(corpus: str, copies: int) -> dict[str, tuple[bytes, str]]:
    """Each saved page ``copies`` times under /NAME/COPY/; a visible line naming the copy
    keeps the copies apart for the crawl's content deduplication."""
    files = {}
    for name in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, name, "index.html")
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as handle:
            page = handle.read()
        for copy in range(copies):
            mark = f"<p>bench copy {copy}</p>".encode()
            body_end = page.lower().rfind(b"</body>")
            marked = page[:body_end] + mark + page[body_end:] if body_end >= 0 else page + mark
            files[f"/{name}/{copy}/"] = (marked, "text/html; charset=utf-8")
    return files


def per_page(usage: TreeCpu, pages: int) -> dict[str, float]:
    """CPU seconds per page by kind of process."""
    return {k: round(v / max(1, pages), 3) for k, v in usage.by_kind().items()}


def machine_load() -> float:
    return round(os.getloadavg()[0], 2)


class TreeCpu:
    """CPU seconds of this process and all its descendants (Chromium renderers, the
    Playwright driver, Beam workers) while a run lasts.

    Polls /proc every 50 ms and keeps each process's latest utime+stime, so processes
    that end during the run still count (Chromium's renderers are reaped outside our
    tree, so the parent's cutime would miss them). Unlike wall time this hardly depends
    on how busy the machine is: ``cores / CPU-s per page`` estimates pages/s on idle cores.
    The polling thread's own CPU is left out (it is the bench's cost, not the crawl's).
    """

    def __init__(self):
        self.seen: dict[tuple[int, str], int] = {}
        self.kinds: dict[tuple[int, str], str] = {}
        self.overhead = 0.0  # CPU seconds of the polling thread itself
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
        return ticks / os.sysconf("SC_CLK_TCK") - self.overhead

    def by_kind(self) -> dict[str, float]:
        """CPU seconds per kind of process (`process_kind`), largest first."""
        out: dict[str, float] = {}
        for key, ticks in self.seen.items():
            kind = self.kinds.get(key, "other")
            out[kind] = out.get(kind, 0.0) + (ticks - self.base.get(key, 0))
        tck = os.sysconf("SC_CLK_TCK")
        out = {k: v / tck for k, v in out.items()}
        out["python"] = out.get("python", 0.0) - self.overhead
        return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}

    def _poll(self) -> None:
        while not self.stop.wait(0.05):
            self._sample()
        # The poller's own CPU (reading /proc every 50 ms) is the bench's, not the crawl's.
        self.overhead = time.thread_time()

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
                if ticks or key not in self.kinds:  # a fork's name changes at its exec
                    self.kinds[key] = process_kind(pid, self.kinds.get(key, "other"))
            stack.extend(children.get(pid, []))


def process_kind(pid: int, known: str = "other") -> str:
    """What a process of the run is, from its command line: Chromium's browser, renderer,
    GPU and utility processes, the Playwright driver (node), or Python (this process and
    the Beam workers)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return known  # ended meanwhile
    line = b" ".join(argv).decode(errors="replace").strip()
    if not line:
        return known  # a zombie has no command line left
    program = os.path.basename(line.split(" ", 1)[0]) if line else ""
    if "chrom" in program or "chrom" in line.split(" --", 1)[0]:
        # Chromium's children rewrite their argv into one string: find --type= in it.
        kind = line.split("--type=", 1)[1].split(" ", 1)[0] if "--type=" in line else ""
        return f"chromium {kind or 'browser'}"
    if program.startswith("node"):
        return "playwright driver"
    if program.startswith("python"):
        return "python"
    return program or "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=240, help="bench site pages to crawl")
    parser.add_argument("--baseline-pages", type=int, default=30)
    parser.add_argument("--baseline-runs", type=int, default=3,
                        help="baseline runs; the median by CPU-s/page is the baseline")
    parser.add_argument("--corpus", default=CORPUS, help="saved pages (NAME/index.html)")
    # 8 copies (160 pages): a crawl of 60 spends ~10-14 of its CPU-s (~0.2 per page)
    # starting Beam workers, Chromium and the OCR model, and measures its start more than
    # its pages (the site run has 240 pages for the same reason).
    parser.add_argument("--corpus-copies", type=int, default=8,
                        help="times each saved page is served (0 skips the corpus run)")
    parser.add_argument("--no-post-stages", action="store_true",
                        help="corpus run without the CLI's post stages")
    parser.add_argument("--beam", default="--direct_num_workers=2 "
                        "--direct_running_mode=multi_processing",
                        help="Beam flags for the pipeline runs (default: a worker per core)")
    parser.add_argument("--stage", action="store_true",
                        help="also run the bench site through the stage in-process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    beam = args.beam.split()
    results: dict = {"load_average_1m_before": machine_load()}
    server, base = serve_site(corpus_files(args.corpus, args.corpus_copies)
                              if args.corpus_copies else None)
    try:
        # Different pages from the pipeline's, so no run profits from a warm server cache.
        results["baseline"] = run_baselines(
            [f"{base}/articles/{1000 + i}" for i in range(args.baseline_pages)],
            args.baseline_runs)
        site = [f"{base}/articles/{i}" for i in range(1, args.pages + 1)]
        if args.stage:
            results["stage"] = run_stage_bench(site)
        results["site"] = run_pipeline_bench(site, beam, NO_POST_STAGES)
        if args.corpus_copies:
            corpus = [base + path for path in server.RequestHandlerClass.files]
            post = NO_POST_STAGES if args.no_post_stages else CLI_DEFAULT_POST_STAGES
            results["corpus"] = run_pipeline_bench(corpus, beam, post)
            results["corpus"]["post_stages"] = post
    finally:
        server.shutdown()
    runs = {k: v for k, v in results.items() if isinstance(v, dict)}
    base_rate, base_cpu = runs["baseline"]["pages_per_s"], runs["baseline"]["cpu_s_per_page"]
    for result in runs.values():
        result["x_baseline"] = round(result["pages_per_s"] / base_rate, 1)
        result["x_baseline_cpu"] = round(base_cpu / result["cpu_s_per_page"], 1)
        result["est_pages_per_s_2_idle_cores"] = round(2 / result["cpu_s_per_page"], 1)
    results["cpu_cores"] = os.cpu_count()
    results["load_average_1m_after"] = machine_load()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'run':9s} {'pages':>6s} {'seconds':>8s} {'pages/s':>8s} {'x base':>7s} "
          f"{'CPU-s/page':>10s} {'x base CPU':>10s} {'cores busy':>10s} "
          f"{'est. pages/s, 2 idle cores':>27s}")
    for name, r in runs.items():
        print(f"{name:9s} {r['pages']:6d} {r['seconds']:8.2f} {r['pages_per_s']:8.2f} "
              f"{r['x_baseline']:7.1f} {r['cpu_s_per_page']:10.3f} {r['x_baseline_cpu']:10.1f} "
              f"{r['cores_busy']:10.2f} {r['est_pages_per_s_2_idle_cores']:27.1f}")
    b = runs["baseline"]
    print(f"baseline: median of {b['runs']} runs by CPU-s/page; all runs: CPU-s/page "
          f"{b['cpu_s_per_page_runs']}, pages/s {b['pages_per_s_runs']}")
    for name in ("site", "corpus"):
        if name in runs:
            r = runs[name]
            print(f"{name}: {r['tiles']} tiles, {r['errors']} errors, {r['dropped']} dropped, "
                  f"audit ok: {r['audit_ok']}" + (f", post stages {r['post_stages']}"
                                                  if "post_stages" in r else ""))
    print(f"{results['cpu_cores']} cores; load average {results['load_average_1m_before']} "
          f"before, {results['load_average_1m_after']} after (a shared machine slows every "
          "wall-clock figure; CPU-s/page is the steadier one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
