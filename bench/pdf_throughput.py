"""PDF pipeline throughput and memory: pages/s next to a bare PyMuPDF render loop.

Both sides get the same files, the same DPI rule (long side ``--target`` px) and the same
worker count:

- ``bare``: a multiprocessing pool of ``--workers`` processes; each opens a document and,
  for every page, renders the pixmap and encodes it as PNG. Nothing else.
- ``pipeline``: ``vlforge pdf`` (`run_pipeline("pdf", ...)`: Beam DirectRunner, isolated
  renderer children, text/words/lines, drawings, perceptual hashes, shards, manifest).
  ``--layouts`` says how it uses ``--workers`` N processes: ``renderers`` (the default):
  the in-process DirectRunner keeping documents in flight on N renderer children
  (``renderers=N``, as `vlforge pdf` runs with that runner); ``beam``:
  ``--direct_running_mode=multi_processing`` with N Beam SDK worker processes of one
  renderer each (the layout measured before, issue 17). Both overlap tasks (the
  DirectRunner's default).
  Post stages (OCR, charts, labels) off: they are benchmarked by their own scripts.
  Modes: ``full`` (markdown, figures, tables: the defaults), ``lean``
  (``--no-markdown --no-figures --no-tables``), and, to price each setting, ``no-markdown``,
  ``no-figures``, ``no-tables`` (the defaults less one) and ``layout`` (the defaults plus
  pymupdf's layout model for tables).

- ``lean floor``: the bare loop plus the library calls whose results a lean sample
  holds (one text page with its dict, words and text; the vector paths; the manifest's
  perceptual hash), and nothing else: the ceiling of lean's pages/s with its outputs, as
  measured as the rows beside it (``--skip-floor`` leaves it out).

Tail latency: every page sample records its renderer time (``render_s`` wall,
``render_cpu_s`` CPU); each pipeline run prints p50/p95/p99/max seconds per page (wall and
CPU: on a shared machine, wall includes waiting for a core) and its slowest 5 pages with
file and page number.

Start-up is included on both sides: each measurement is a fresh interpreter (the bare
loop's pool start and PyMuPDF import; the pipeline's Beam import, planning and renderer
children). A second table gives both sides without it: a run of the same side on one
one-page document (the smallest) is subtracted, wall and CPU, from each row (``--skip-startup``
leaves it out). At the paper's scale start-up is amortised; on this corpus it is not.

Each measurement runs in a fresh child process (reading the run back for the page
timings and the audit happens afterwards, in this process, unmeasured); its wall time, CPU seconds (the whole
process tree, so a busy shared machine skews it less) and peak memory (sum of the RSS of
the process tree, sampled every 0.1 s) are recorded. Memory is measured at 1x and 10x the
input (10x = ten byte-distinct copies of each file, the near-duplicate filter off so every
copy is really processed).

    .venv/bin/python bench/pdf_throughput.py [--inputs DIR] [--limit N] [--workers 1]
        [--modes full,lean] [--layouts renderers,beam] [--memory-limit N] [--copies N]
        [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DEFAULT_INPUTS = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "pdfs")
NO_POST_STAGES = {"ocr": None, "charts": False, "label": False}
MODES = {
    "full": {},
    "lean": {"markdown": False, "figures": False, "tables": False},
    "no-markdown": {"markdown": False},
    "no-figures": {"figures": False},
    "no-tables": {"tables": False},
    "layout": {"layout_model": True},
}


# -- the two workloads (run inside a measured child process) -------------------------------
def _bare_document(job: tuple[str, int] | tuple[str, int, bool]) -> int:
    """Render every page of a document and encode it as PNG; with ``floor`` also make the
    calls whose results a lean sample holds (`_lean_floor`)."""
    import pymupdf

    path, target, floor = (*job, False)[:3]
    pymupdf.TOOLS.mupdf_display_errors(False)
    pages = 0
    try:
        with pymupdf.open(path) as doc:
            for page in doc:
                try:
                    rect = page.rect
                    scale = target / max(rect.width, rect.height)
                    pix = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale))
                    pix.tobytes("png")
                    if floor:
                        _lean_floor(page, pix)
                    pages += 1
                except Exception:
                    pass
    except Exception:
        pass
    return pages


def _lean_floor(page, pix) -> None:
    """What a lean page sample cannot be written without, as the bare loop's library
    calls and nothing else: one text page with its dict, words and text extractions, the
    page's vector paths, and the manifest's perceptual hash of the page image (grey
    pixels, `perceptual_hash`). No shaping of the results in Python, no hand-over between
    processes, no encoding or writing: the least the pipeline's lean mode must add to the
    bare loop with its outputs unchanged."""
    import pymupdf
    from PIL import Image

    from pipelines.core.signatures import perceptual_hash

    textpage = page.get_textpage(flags=pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES)
    textpage.extractDICT()
    textpage.extractWORDS()
    textpage.extractText()
    page.get_cdrawings()
    perceptual_hash(Image.frombytes("RGB", (pix.width, pix.height), pix.samples_mv).convert("L"))


def bare_loop(paths: list[str], workers: int, target: int, floor: bool = False) -> dict:
    import multiprocessing

    jobs = [(p, target, floor) for p in paths]
    if workers == 1:
        pages = sum(map(_bare_document, jobs))
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pages = sum(pool.imap_unordered(_bare_document, jobs))
    return {"pages": pages}


def pipeline_run(paths: list[str], workers: int, target: int, mode: str,
                 near_duplicates: bool, layout: str = "renderers") -> dict:
    """Run the pipeline; returns its stats and the run directory (read by `analyse_run`
    in the unmeasured parent, so reading every sample back is not counted as pipeline
    cost)."""
    from pipelines.core.runner import run_pipeline
    from pipelines.pdf.pipeline import pdf_refs

    render = {"target": target, **MODES[mode]}
    config = {"render": render, "near_duplicate_bits": 10 if near_duplicates else -1,
              **NO_POST_STAGES}
    if layout == "renderers" or workers == 1:
        # one in-process Beam worker keeping documents in flight on `workers` renderer
        # children (across task ends: overlap_tasks is on by default on the DirectRunner)
        beam = ["--runner=DirectRunner"]
        config["renderers"] = workers
    else:  # `workers` Beam SDK worker processes with one renderer child each
        beam = ["--runner=DirectRunner", f"--direct_num_workers={workers}",
                "--direct_running_mode=multi_processing"]
    out = os.path.join(tempfile.mkdtemp(prefix="pdf-bench-"), "run")
    stats = run_pipeline("pdf", pdf_refs(paths), config, out, beam_args=beam, task_size=8)
    return {"run_dir": out, "written": stats["written"], "derived": stats["derived"],
            "dropped": stats["dropped"], "errors": stats["errors"]}


def analyse_run(out: str) -> dict:
    """Pages rendered, tail latency and the audit of a finished bench run (then removed)."""
    from pipelines.core.audit import audit_run
    from pipelines.core.run_dir import RunDir

    try:
        # pages rendered = pages written + pages rendered and then filtered out
        run = RunDir(out)
        filtered = sum(1 for o in run.outcomes() if o.kind == "dropped"
                       and o.reason in ("blank_page", "near_duplicate_page"))
        timings = [(s.meta["pdf"].get("render_s", 0.0), s.meta["pdf"].get("render_cpu_s", 0.0),
                    os.path.basename(s.meta["pdf"]["path"]), s.meta["pdf"]["page"])
                   for s in run.iter_samples(payloads=False)
                   if s.meta.get("pdf", {}).get("kind") == "page"]
        written_pages = len(timings)
        return {"pages": written_pages + filtered, "page_seconds": tail_latency(timings),
                "audit_ok": audit_run(out, verify_shards=False).ok}
    finally:
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)


def tail_latency(timings: list[tuple[float, float, str, int]]) -> dict:
    """p50/p95/p99/max of the renderer's seconds per page (wall and CPU) and the slowest
    5 pages (by wall time)."""
    def pct(values: list[float], q: float) -> float:
        values = sorted(values)
        return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else 0.0

    wall = [t[0] for t in timings]
    cpu = [t[1] for t in timings]
    return {"pages": len(timings),
            "wall": {f"p{int(q * 100)}": pct(wall, q) for q in (0.5, 0.95, 0.99)}
            | {"max": round(max(wall, default=0.0), 3)},
            "cpu": {f"p{int(q * 100)}": pct(cpu, q) for q in (0.5, 0.95, 0.99)}
            | {"max": round(max(cpu, default=0.0), 3)},
            "slowest": [{"file": f, "page": p, "wall_s": round(w, 3), "cpu_s": round(c, 3)}
                        for w, c, f, p in sorted(timings, reverse=True)[:5]]}


# -- measuring a child process -------------------------------------------------------------
def measure(spec: dict) -> dict:
    """Run `spec` in a fresh interpreter; wall s, CPU s of its tree, peak tree RSS (MB)."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--_child", json.dumps(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    parent = psutil.Process(proc.pid)
    peak, cpu_seen = 0, {}
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        rss = 0
        for member in tree:
            try:
                rss += member.memory_info().rss
                times = member.cpu_times()
                cpu_seen[member.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                pass
        peak = max(peak, rss)
        time.sleep(0.1)
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    result = json.loads(out.decode().strip().splitlines()[-1])
    if "run_dir" in result:  # read back here, outside the measured process tree
        result.update(analyse_run(result.pop("run_dir")))
    usage = result.pop("_rusage_children_cpu", 0.0)
    cpu = max(usage, sum(cpu_seen.values()))
    return {**result, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mb": round(peak / 2**20, 1),
            "pages_per_s": round(result["pages"] / wall, 2) if wall else 0.0,
            "cpu_s_per_page": round(cpu / max(1, result["pages"]), 4)}


def child_main(spec: dict) -> None:
    import resource

    if spec["kind"] in ("bare", "floor"):
        result = bare_loop(spec["paths"], spec["workers"], spec["target"],
                           floor=spec["kind"] == "floor")
    else:
        # Beam imported as `vlforge pdf` imports it: without the Google Cloud IO a
        # DirectRunner run never uses (pipelines.core.beam_import)
        from pipelines.core.beam_import import lean_beam_import

        lean_beam_import(["--runner=DirectRunner"])
        result = pipeline_run(spec["paths"], spec["workers"], spec["target"], spec["mode"],
                              spec["near_duplicates"], spec.get("layout", "renderers"))
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["_rusage_children_cpu"] = (own.ru_utime + own.ru_stime + kids.ru_utime
                                      + kids.ru_stime)
    print(json.dumps(result))


# -- inputs ------------------------------------------------------------------------------
def readable_documents(directory: str, limit: int | None) -> list[str]:
    """Documents PyMuPDF can open with at least one page (both sides get the same list)."""
    import pymupdf

    from pipelines.core.inputs import expand_paths
    from pipelines.pdf.pipeline import DOCUMENT_SUFFIXES

    pymupdf.TOOLS.mupdf_display_errors(False)
    keep = []
    for path in expand_paths([directory], DOCUMENT_SUFFIXES):
        try:
            with pymupdf.open(path) as doc:
                if not doc.needs_pass and doc.page_count > 0:
                    keep.append(path)
        except Exception:
            continue
    return keep[:limit] if limit else keep


def startup_document(paths: list[str]) -> str | None:
    """The smallest one-page document of `paths`: what a run costs before its real work."""
    import pymupdf

    one_page = []
    for path in paths:
        try:
            with pymupdf.open(path) as doc:
                if doc.page_count == 1:
                    one_page.append((os.path.getsize(path), path))
        except Exception:
            continue
    return min(one_page)[1] if one_page else None


def without_startup(row: dict, startup: dict) -> dict:
    """`row` less a one-page run of the same side: pages, wall s, CPU s and their rates."""
    pages = row["pages"] - startup["pages"]
    wall = row["wall_s"] - startup["wall_s"]
    cpu = row["cpu_s"] - startup["cpu_s"]
    return {"pages": pages, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "startup_wall_s": startup["wall_s"], "startup_cpu_s": startup["cpu_s"],
            "pages_per_s": round(pages / wall, 2) if wall > 0 else 0.0,
            "cpu_s_per_page": round(cpu / max(1, pages), 4)}


def replicate(paths: list[str], copies: int, directory: str) -> list[str]:
    """`copies` byte-distinct copies of each file (a trailing comment; readers ignore it)."""
    os.makedirs(directory, exist_ok=True)
    out = []
    for copy in range(copies):
        for path in paths:
            name = f"c{copy:02d}-{os.path.basename(path)}"
            target = os.path.join(directory, name)
            with open(path, "rb") as src, open(target, "wb") as dst:
                dst.write(src.read())
                if copy:
                    dst.write(f"\n% vlforge bench copy {copy}\n".encode())
            out.append(target)
    return out


def _add_ratios(run: dict, bare: dict) -> None:
    run["ratio_pages_per_s"] = round(run["pages_per_s"] / bare["pages_per_s"], 3)
    run["ratio_cpu_per_page"] = round(run["cpu_s_per_page"] / bare["cpu_s_per_page"], 3)
    run["ratio_peak_rss"] = round(run["peak_rss_mb"] / bare["peak_rss_mb"], 3)


def _row_name(mode: str, layout: str, layouts: list[str]) -> str:
    return f"pipeline_{mode}" + (f" [{layout}]" if len(layouts) > 1 else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", default=DEFAULT_INPUTS, help="directory of documents")
    parser.add_argument("--limit", type=int, default=None, help="use the first N documents")
    parser.add_argument("--workers", type=int, default=1, help="worker processes, both sides")
    parser.add_argument("--target", type=int, default=1024, help="long side in px")
    parser.add_argument("--copies", type=int, default=1,
                        help="byte-distinct copies of the inputs for the throughput runs, so "
                             "fixed start-up costs (Beam, interpreters) are amortised")
    parser.add_argument("--modes", default="full,lean", help="pipeline modes to measure")
    parser.add_argument("--layouts", default="renderers",
                        help="how the pipeline uses --workers processes, comma-separated: "
                             "'renderers' (one in-process Beam worker, N renderer children; "
                             "the default) and/or 'beam' (N Beam SDK worker processes with "
                             "one renderer each, the layout measured before)")
    parser.add_argument("--memory-limit", type=int, default=20,
                        help="documents in the 1x/10x memory comparison (default 20)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-floor", action="store_true",
                        help="leave out the lean floor: the bare loop plus the library calls "
                             "whose results a lean sample holds (text page, vector paths, "
                             "perceptual hash), the most lean can reach with its outputs")
    parser.add_argument("--skip-startup", action="store_true",
                        help="leave out the one-page runs that measure each side's start-up")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        child_main(json.loads(args._child))
        return 0

    paths = readable_documents(args.inputs, args.limit)
    base = {"workers": args.workers, "target": args.target}
    report: dict = {"documents": len(paths) * args.copies, "workers": args.workers,
                    "target": args.target}
    copies_dir = tempfile.mkdtemp(prefix="pdf-bench-copies-")
    inputs = replicate(paths, args.copies, copies_dir) if args.copies > 1 else paths
    bare = measure({"kind": "bare", "paths": inputs, **base})
    report["bare"] = bare
    if not args.skip_floor:
        floor = measure({"kind": "floor", "paths": inputs, **base})
        _add_ratios(floor, bare)
        report["lean_floor"] = floor
    layouts = args.layouts.split(",")
    runs = [(mode, layout) for layout in layouts for mode in args.modes.split(",")]
    for mode, layout in runs:
        # near-duplicate filter off: copies would otherwise be dropped (still rendered, but
        # then not written), making the two sides do different work
        run = measure({"kind": "pipeline", "paths": inputs, "mode": mode, "layout": layout,
                       "near_duplicates": args.copies == 1, **base})
        _add_ratios(run, bare)
        report[_row_name(mode, layout, layouts)] = run
    shutil.rmtree(copies_dir, ignore_errors=True)
    first = startup_document(paths) if not args.skip_startup else None
    if first:
        # the same harness on one one-page document: what each side costs before its work
        report["startup_document"] = os.path.basename(first)
        bare_start = measure({"kind": "bare", "paths": [first], **base})
        report["bare"]["without_startup"] = without_startup(bare, bare_start)
        steady_bare = report["bare"]["without_startup"]
        starts = [(_row_name(mode, layout, layouts),
                   {"kind": "pipeline", "paths": [first], "mode": mode, "layout": layout,
                    "near_duplicates": args.copies == 1, **base}) for mode, layout in runs]
        if "lean_floor" in report:
            starts.insert(0, ("lean_floor", {"kind": "floor", "paths": [first], **base}))
        for name, spec in starts:
            row = report[name]
            start = measure(spec)
            steady = row["without_startup"] = without_startup(row, start)
            steady["ratio_pages_per_s"] = round(
                steady["pages_per_s"] / steady_bare["pages_per_s"], 3) \
                if steady_bare["pages_per_s"] else 0.0
            steady["ratio_cpu_per_page"] = round(
                steady["cpu_s_per_page"] / steady_bare["cpu_s_per_page"], 3) \
                if steady_bare["cpu_s_per_page"] else 0.0
    if not args.skip_memory:
        with tempfile.TemporaryDirectory(prefix="pdf-bench-10x-") as tmp:
            small = paths[:args.memory_limit]
            memory = {}
            for scale in (1, 10):
                files = replicate(small, scale, os.path.join(tmp, f"x{scale}"))
                memory[f"{scale}x"] = measure({"kind": "pipeline", "paths": files, "mode": "full",
                                               "layout": layouts[0], "near_duplicates": False,
                                               **base})
            memory["ratio_peak_10x_over_1x"] = round(
                memory["10x"]["peak_rss_mb"] / memory["1x"]["peak_rss_mb"], 3)
            report["memory"] = memory
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['documents']} documents, {args.workers} worker(s), long side {args.target} px"
          f", pipeline layout(s): {args.layouts}")
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (shared machine: compare rows of "
          f"one run; CPU s/page is the steadier figure)")
    print(f"{'run':22s} {'pages':>6s} {'wall s':>8s} {'pages/s':>8s} {'x bare':>7s} "
          f"{'cpu s/page':>11s} {'x bare':>7s} {'peak MB':>8s} {'x bare':>7s}")
    rows = [("bare PyMuPDF", bare)] + [
        (_row_name(m, lay, layouts).replace("_", " ", 1), report[_row_name(m, lay, layouts)])
        for m, lay in runs]
    pipeline_rows = rows[1:]
    if "lean_floor" in report:
        rows.insert(1, ("lean floor (bare+)", report["lean_floor"]))
    for name, row in rows:
        print(f"{name:22s} {row['pages']:6d} {row['wall_s']:8.2f} {row['pages_per_s']:8.2f} "
              f"{row.get('ratio_pages_per_s', 1.0):7.3f} {row['cpu_s_per_page']:11.4f} "
              f"{row.get('ratio_cpu_per_page', 1.0):7.3f} {row['peak_rss_mb']:8.1f} "
              f"{row.get('ratio_peak_rss', 1.0):7.3f}")
    if "without_startup" in bare:
        print(f"without start-up (a one-page run of each side, {report['startup_document']}, "
              "subtracted):")
        print(f"{'run':22s} {'pages':>6s} {'wall s':>8s} {'pages/s':>8s} {'x bare':>7s} "
              f"{'cpu s/page':>11s} {'x bare':>7s} {'start wall':>10s} {'start cpu':>10s}")
        for name, row in rows:
            st = row["without_startup"]
            print(f"{name:22s} {st['pages']:6d} {st['wall_s']:8.2f} {st['pages_per_s']:8.2f} "
                  f"{st.get('ratio_pages_per_s', 1.0):7.3f} {st['cpu_s_per_page']:11.4f} "
                  f"{st.get('ratio_cpu_per_page', 1.0):7.3f} {st['startup_wall_s']:10.2f} "
                  f"{st['startup_cpu_s']:10.2f}")
    print("seconds per page in the renderer (wall | cpu):")
    print(f"{'run':22s} {'p50':>13s} {'p95':>13s} {'p99':>13s} {'max':>13s}")
    for name, row in pipeline_rows:
        t = row["page_seconds"]
        print(f"{name:22s} " + " ".join(f"{t['wall'][k]:6.3f}|{t['cpu'][k]:6.3f}"
                                       for k in ("p50", "p95", "p99", "max")))
    for name, row in pipeline_rows:
        slow = ", ".join(f"{s['file']} p{s['page']} {s['wall_s']:.2f}s ({s['cpu_s']:.2f} cpu)"
                         for s in row["page_seconds"]["slowest"])
        print(f"slowest 5, {name}: {slow}")
    if "memory" in report:
        m = report["memory"]
        print(f"memory (pipeline full [{layouts[0]}], {len(paths[:args.memory_limit])} docs): "
              f"1x {m['1x']['pages']} pages peak {m['1x']['peak_rss_mb']} MB; "
              f"10x {m['10x']['pages']} pages peak {m['10x']['peak_rss_mb']} MB; "
              f"ratio 10x/1x = {m['ratio_peak_10x_over_1x']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
