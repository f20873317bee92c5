"""Planning cost on the driver for 10k, 100k and 1M synthetic inputs.

    .venv/bin/python bench/plan_scale.py [--sizes 10000,100000,1000000] [--pipeline pdf]

For each size, in a fresh child process (so peak memory is its own): stream the input refs
(``s3://`` image URLs from a generator, never read), plan the run (``inputs.parquet``, as
`run_pipeline` does: `RunDir.plan_pending`), write the task lists the workers read
(``plan/part-*.parquet``) and build the Beam pipeline. Prints planning
seconds (wall and CPU), the driver's peak RSS, and the size of the submitted graph (transforms and bytes
of the serialized pipeline proto) for the current graph (``ReadTasks``: partition numbers
only) and, as the baseline, the former one (every task in ``beam.Create``).

With ``--pipeline pdf`` the inputs are a synthetic PDF listing (URLs with sizes, some sizes
shared, as byte-identical copies would be) turned into refs as ``vlforge pdf`` does:
`iter_pdf_refs` streamed into the planner (every size a task group) against, as the
baseline, the former `pdf_refs` (the whole listing held, sizes counted, only shared sizes
grouped); both with the ``ReadTasks`` graph.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pdf_listing(count: int):
    """A synthetic listing of `count` PDFs with sizes; about 1 in 50 is a copy of another
    (same size), as an object store's listing gives them."""
    import random

    from pipelines.core.inputs import InputFile

    rng = random.Random(0)
    for i in range(count):
        size = rng.randint(10_000, 2_000_000_000)
        yield InputFile(f"s3://bucket/pdfs/{i:08d}.pdf", size)
        if i % 50 == 0:
            yield InputFile(f"s3://bucket/pdfs/{i:08d}-copy.pdf", size)


def former_pdf_refs(items) -> list[dict]:
    """The baseline: `pdf_refs` before it streamed (the listing and the refs held whole;
    a task group only for sizes two or more files share)."""
    from collections import Counter

    from pipelines.core.runner import input_ref

    items = list(items)
    shared = Counter(item.size for item in items if item.size is not None)
    refs = []
    for item in items:
        fields = {"path": item.url, "size": item.size}
        if shared[item.size] > 1:
            fields["task_group"] = f"size:{item.size}"
        refs.append(input_ref("pdf", item.url, **fields))
    return refs


def measure(count: int, old: bool, pipeline: str = "images") -> dict:
    sys.path.insert(0, str(ROOT))
    import apache_beam as beam

    from pipelines.core.run_dir import RunDir
    from pipelines.core.runner import input_ref
    from pipelines.core.task_graph import ExpandTaskFn
    from pipelines.core.task_lists import ReadTasks

    out = tempfile.mkdtemp(prefix="plan-scale-")
    start, cpu_start = time.perf_counter(), time.process_time()
    if pipeline == "pdf":
        from pipelines.pdf.pipeline import iter_pdf_refs

        listing = pdf_listing(count)
        refs = former_pdf_refs(listing) if old else iter_pdf_refs(listing)
        old_graph, label = False, "pdf_refs list" if old else "iter_pdf_refs"
    else:
        urls = (f"s3://bucket/images/{i:08d}.jpg" for i in range(count))
        refs = (input_ref("images", url, path=url) for url in urls)  # as image_refs does
        old_graph, label = old, "Create(tasks)" if old else "ReadTasks"
    tasks = RunDir(out).plan_pending(pipeline, refs, {}, task_size=8)
    del refs
    planned, cpu_planned = time.perf_counter(), time.process_time()
    p = beam.Pipeline()
    if old_graph:
        source = p | beam.Create([(t.task_id, t.input_refs) for t in tasks])
    else:
        source = p | ReadTasks(out, tasks)
    _ = source | beam.Reshuffle() | beam.ParDo(ExpandTaskFn(pipeline))
    proto = p.to_runner_api()
    graph, cpu_graph = time.perf_counter(), time.process_time()
    shutil.rmtree(out, ignore_errors=True)
    return {"inputs": tasks.inputs, "graph": label,
            "plan_s": planned - start, "graph_s": graph - planned,
            "plan_cpu_s": cpu_planned - cpu_start, "graph_cpu_s": cpu_graph - cpu_planned,
            "transforms": len(proto.components.transforms),
            "graph_bytes": len(proto.SerializeToString()),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--pipeline", choices=("images", "pdf"), default="images",
                        help="images: URL refs, old vs new graph; pdf: a PDF listing, "
                             "streamed refs vs the former pdf_refs list")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        count, old = args.child.split(":")
        print(json.dumps(measure(int(count), old == "old", args.pipeline)))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for mode in ("new", "old"):
            proc = subprocess.run([sys.executable, __file__, "--child", f"{size}:{mode}",
                                   "--pipeline", args.pipeline],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{r['inputs']:>9d} {r['graph']:14s} plan {r['plan_s']:7.1f} s "
                  f"({r['plan_cpu_s']:5.1f} CPU-s)  graph {r['graph_s']:6.1f} s "
                  f"({r['graph_cpu_s']:5.1f} CPU-s)  {r['transforms']:3d} transforms "
                  f"{r['graph_bytes'] / 1e6:9.2f} MB  driver peak {r['peak_rss_mb']:7.0f} MB",
                  flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
