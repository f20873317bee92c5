"""Driver-side memory of the commands that read a whole run, per sample, at two run sizes.

    .venv/bin/python bench/driver_memory.py [--samples 2000] [--factor 4] [--only NAME,...]
    .venv/bin/python bench/driver_memory.py --repo /tmp/old_checkout   # another checkout

Builds two runs in code (N and factor*N "pdf" page samples through RunDir's own write path:
plan, shard writer, task manifests, finalize), one input per four-page document expanded
into its pages as the PDF pipeline does, each page with a page-sized meta (~15 KB of words,
as the PDF renderer records, and 30 text-layer lines), ~1.5 KB of text, a small PNG and a
taxonomy leaf; one input in ten ends in an error outcome and one sample in twenty is listed
as a dedup removal. Then runs each driver function in a fresh process and prints its peak
memory per sample at both sizes: Python objects (tracemalloc peak) and Arrow buffers (the
memory pool's peak), plus CPU seconds, and the growth per added sample (the difference of
the two peaks over the difference of the sizes: what a run 1000x bigger costs per sample).
A function that keeps a few small fields per sample grows ~0.1-0.5 KB a sample; one that
keeps whole rows, texts or metas several KB and more.

Side by side with the code before these readers streamed (3e9ee3f), unpacked:

    git archive 3e9ee3f | tar -x -C /tmp/before
    .venv/bin/python bench/driver_memory.py --runs /tmp/dm --row-group-rows 1000 \
        --baseline /tmp/before

(finalize and rewrite_manifests run on a copy of the run, so the runs stay as built.)

`--baseline DIR` measures another checkout on the same runs, a row each, with the ratio of
the growth (Python + Arrow) and of the CPU seconds on the bigger run; `--repo DIR` measures
another checkout alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAVES = [f"leaf{i}" for i in range(8)]


def build_run(url: str, count: int, pages: int = 4, task_size: int = 50) -> None:
    """A finished run of `count` page samples (see the module docstring), laid out as the
    PDF pipeline writes one: an input per document, expanded into its pages."""
    import pyarrow as pa

    from pipelines.core.outcome import Outcome
    from pipelines.core.run_dir import DEDUP_REMOVED, RunDir
    from pipelines.core.runner import input_ref
    from pipelines.core.sample import Sample
    from tests.pipelines.fixtures import png_bytes

    rng = random.Random(count)
    words = [f"w{n}" for n in range(500)]
    refs = [input_ref("pdf", f"file://doc{i}.pdf") for i in range(count // pages)]
    run = RunDir(url)
    image = png_bytes(seed=1)
    removed = []
    for task in run.plan("pdf", refs, {"bench": True}, task_size=task_size):
        outcomes = []
        with run.shard_writer("pdf", task.task_id, max_count=500) as writer:
            for ref in task.input_refs:
                stamp = {"input_id": ref["input_id"], "task": task.task_id, "input_ref": ref}
                seed = Sample.create("pdf", ref["locator"], lineage={
                    **stamp, "item_id": ref["item_id"]})
                if int(ref["locator"][10:-4]) % 10 == 9:
                    outcomes.append(Outcome.error(seed, "RenderPdfPages", RuntimeError("x" * 200)))
                    continue
                outcomes.append(Outcome.expanded(seed, "RenderPdfPages", pages))
                for number in range(pages):
                    text = " ".join(rng.choice(words) for _ in range(300))
                    sample = Sample.create(
                        "pdf", f"{ref['locator']}#page={number}", image=image, text=text,
                        lineage={**stamp, "item_id": f"{ref['item_id']}/{number}",
                                 "parent_item": ref["item_id"]},
                        meta={"pdf": {"page": number, "kind": "page", "lines": [
                            {"box": [0.1, n / 40, 0.9, (n + 1) / 40], "text": text[n * 40:n * 40 + 40]}
                            for n in range(30)], "words": [
                            [round(rng.random() * 600, 2), round(rng.random() * 800, 2), 10.0,
                             12.0, rng.choice(words)] for _ in range(300)]},
                              "taxonomy": {"leaf": rng.choice(LEAVES), "version": "1"}})
                    writer.write(sample)
                    if rng.random() < 0.05:
                        removed.append({"key": sample.key, "duplicate_of": "0" * 32,
                                        "reason": "same_text"})
        run.write_task(task.task_id, writer.shards, writer.rows, outcomes)
    run.finalize()
    schema = pa.schema([("key", pa.string()), ("duplicate_of", pa.string()),
                        ("reason", pa.string())])
    run.write_side_table(removed, schema, DEDUP_REMOVED)


# the measured functions that write into the run (finalize's files, task manifests)
WRITERS = ("finalize", "rewrite_manifests")


def measures():
    """name -> function(run_url) of the driver-side readers measured."""
    from pipelines.core import audit, export
    from pipelines.core.run_dir import RunDir

    def retry_failed(url):
        # what `vlforge retry` reads before it runs anything
        run = RunDir(url)
        return [o for o in run.outcomes() if o.kind == "error" and o.input_ref]

    def text_corpus(url):
        from pipelines.text.corpus import CorpusStats, run_documents

        return sum(1 for _ in run_documents(RunDir(url), None, CorpusStats()))

    def label_refs(url):
        # the refs as `vlforge label` hands them to planning (a list before
        # iter_label_refs; planning itself holds a bounded batch)
        import pipelines.label.pipeline as label

        if hasattr(label, "iter_label_refs"):
            return sum(1 for _ in label.iter_label_refs([url]))
        return len(label.label_refs([url]))

    def mix_categories(url):
        from pipelines.app.mix import run_categories

        return run_categories(url, sft=False)

    def sft_leaves(url):
        from collections import Counter

        # what `vlforge sft build` counts after its run (pipelines/sft/build.py)
        run = RunDir(url)
        if "columns" in RunDir.manifest.__code__.co_varnames:
            return Counter(run.manifest(["taxonomy_leaf"]).column("taxonomy_leaf").to_pylist())
        return Counter(run.manifest().column("taxonomy_leaf").to_pylist())

    def migrate(url, dry_run):
        from pipelines.label.migrate import migrate_run

        return migrate_run(url, dry_run=dry_run)["labeled"]

    return {
        "finalize": lambda url: RunDir(url).finalize()["written"],
        "migrate_dry_run": lambda url: migrate(url, True),
        # what a taxonomy migration rewrites (here each row unchanged, so the run stays)
        "rewrite_manifests": lambda url: RunDir(url).rewrite_manifests(lambda row: None),
        # `vlforge ocr-eval --limit 0` choosing its samples (every page has ground truth)
        "ocr_eval_select": lambda url: len(__import__(
            "pipelines.ocr.evaluate", fromlist=["select_samples"]).select_samples(url, None)),
        "audit": lambda url: audit.audit_run(url, verify_shards=False).ok,
        "audit_verify": lambda url: audit.audit_run(url).ok,
        "inspect": lambda url: export.inspect_run(url)["samples"],
        "shard_names": lambda url: RunDir(url).shard_names(),
        "iter_samples_light": lambda url: sum(1 for _ in RunDir(url).iter_samples(payloads=False)),
        "split_keys": lambda url: len(RunDir(url).split_keys("train")),
        "split_of": lambda url: RunDir(url).split_of("nope"),
        "removed_keys": lambda url: len(RunDir(url).removed_keys()),
        "retry_failed": retry_failed,
        "label_refs": label_refs,
        "mix_categories": mix_categories,
        "sft_leaves": sft_leaves,
        "text_corpus": text_corpus,
    }


def measure_one(name: str, url: str) -> dict[str, float]:
    """Peak memory and CPU of one function on one run, in this (fresh) process."""
    import resource
    import time
    import tracemalloc

    import pyarrow as pa

    function = measures()[name]
    if name in WRITERS:  # measured on a copy: the runs stay as built for the others
        import shutil

        copy = os.path.join(tempfile.mkdtemp(prefix="driver_memory_"), "run")
        shutil.copytree(url, copy)
        url = copy
    if os.environ.get("BENCH_ROW_GROUP_ROWS"):
        # parquet row groups this small make a run of a few thousand samples behave as a
        # big run does (a writer that holds one row group, not the file, shows it)
        from pipelines.core import run_dir

        run_dir.ROW_GROUP_ROWS = int(os.environ["BENCH_ROW_GROUP_ROWS"])
    # imports are paid before the window, not counted as the function's memory
    for module in ("pipelines.app.mix", "pipelines.label.pipeline", "pipelines.text.corpus",
                   "pipelines.label.migrate", "pipelines.ocr.evaluate", "taxonomy"):
        importlib.import_module(module)

    pool = pa.default_memory_pool()
    arrow_before = pool.max_memory() or 0
    cpu = time.process_time()
    tracemalloc.start()
    function(url)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"python_peak": peak, "arrow_peak": (pool.max_memory() or 0) - arrow_before,
            "cpu_s": time.process_time() - cpu,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--only", default="")
    parser.add_argument("--repo", default=HERE, help="checkout whose code is measured")
    parser.add_argument("--baseline", default="",
                        help="another checkout measured side by side on the same runs "
                             "(each function: a row for it, a row for --repo, and the ratio)")
    parser.add_argument("--runs", default="", help="reuse runs built in this directory")
    parser.add_argument("--row-group-rows", type=int, default=0,
                        help="parquet row groups of this many rows when a function writes "
                             "(default: the run's own 65,536)")
    parser.add_argument("--measure", nargs=2, metavar=("NAME", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--build", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_one(*args.measure)))
        return
    if args.build:
        build_run(args.build[0], int(args.build[1]))
        return
    root = args.runs or tempfile.mkdtemp(prefix="driver_memory_")
    sizes = [args.samples, args.samples * args.factor]
    env = {**os.environ, "PYTHONPATH": args.repo}
    if args.row_group_rows:
        env["BENCH_ROW_GROUP_ROWS"] = str(args.row_group_rows)
    for size in sizes:
        url = os.path.join(root, f"run{size}")
        if not os.path.exists(os.path.join(url, "_SUCCESS")):
            subprocess.run([sys.executable, __file__, "--build", url, str(size)], check=True,
                           env={**os.environ, "PYTHONPATH": HERE}, cwd=HERE)
    names = [n for n in (args.only.split(",") if args.only else measures())]
    trees = ([("base", args.baseline)] if args.baseline else []) + [("code", args.repo)]
    print(f"runs in {root}; code from {args.repo}"
          + (f"; baseline code from {args.baseline}" if args.baseline else ""))
    print(f"{'function':20s} {'tree':5s} " + " ".join(
        f"{'py KB/s @' + str(s):>14s} {'arrow KB/s':>10s} {'CPU s':>6s}" for s in sizes)
        + f" {'py growth':>9s} {'ar growth':>9s}  (KB per added sample)"
        + ("  x base (py+arrow growth, CPU s)" if args.baseline else ""))
    for name in names:
        rows = {}
        for label, repo in trees:
            env = {**env, "PYTHONPATH": repo}
            cells, results = [], []
            for size in sizes:
                out = subprocess.run([sys.executable, __file__, "--measure", name,
                                      os.path.join(root, f"run{size}")], env=env, cwd=repo,
                                     check=True, capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                results.append(result)
                cells.append(f"{result['python_peak'] / size / 1024:14.2f} "
                             f"{result['arrow_peak'] / size / 1024:10.2f} "
                             f"{result['cpu_s']:6.2f}")
            # growth per added sample: what a run 1000x bigger costs per sample (the
            # constant part, imports and one shard's buffers, cancels out)
            added = sizes[1] - sizes[0]
            growth = [(results[1][k] - results[0][k]) / added / 1024
                      for k in ("python_peak", "arrow_peak")]
            rows[label] = (growth, results[1]["cpu_s"])
            ratio = ""
            if label == "code" and "base" in rows:
                (base_growth, base_cpu), total = rows["base"], sum(growth)
                ratio = (f"  {total / sum(base_growth):6.2f}" if sum(base_growth) > 0
                         else f"  {'-':>6s}") + f" {results[1]['cpu_s'] / base_cpu:6.2f}"
            print(f"{name:20s} {label:5s} " + " ".join(cells)
                  + f" {growth[0]:9.2f} {growth[1]:9.2f}" + ratio, flush=True)


if __name__ == "__main__":
    main()
