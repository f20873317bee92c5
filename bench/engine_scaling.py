"""PDF pipeline throughput on each Beam engine, side by side in one run.

    .venv/bin/python bench/engine_scaling.py [--pdfs /work/shared/corpus/pdfs] [--limit N]
        [--pipeline-flags "--ocr none --no-charts --no-label"]

Runs ``vlforge pdf`` on the same documents with: the DirectRunner in one process, the
DirectRunner multi-processing with 2 workers, Beam's DaskRunner on a dask.distributed
cluster of 2 worker processes (scheduler and workers over TCP on loopback), and the
PortableRunner with an external worker pool (2 workers). Prints pages/s, the ratio to the
1-worker run, wall seconds and CPU-seconds (driver and every server process, children
included: the machine is shared, so CPU-seconds are the steadier figure). Goals on 2 cores:
each 2-worker engine >= 1.6x the 1-worker run; Dask >= 0.9x DirectRunner multi-processing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.core.run_dir import RunDir  # noqa: E402
from tests.servers import start_beam_job_service, start_dask_cluster  # noqa: E402

VLFORGE = Path(sys.executable).parent / "vlforge"


def cpu_of(pids: list[int]) -> float:
    """CPU seconds of live processes and their reaped children."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
    return total


def pages_of(run_url: str) -> int:
    """Page items the run accounted for (written, dropped or failed pages)."""
    run = RunDir(run_url)
    manifest = run.manifest().to_pylist()
    outcomes = run.outcome_table().to_pylist()
    written = sum(1 for r in manifest if not r["derived_from"] and r["parent_item"])
    return written + sum(1 for r in outcomes if r["parent_item"])


def run_engine(name: str, inputs: list[str], out: str, beam_args: list[str],
               flags: list[str], server_pids: list[int]) -> dict:
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_servers = cpu_of(server_pids)
    start = time.perf_counter()
    proc = subprocess.run([str(VLFORGE), "pdf", *inputs, "--out", out, "--json", *flags,
                           *beam_args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before_children.ru_utime + after.ru_stime
           - before_children.ru_stime) + (cpu_of(server_pids) - before_servers)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    stats = json.loads(proc.stdout[proc.stdout.index("{"):])
    pages = pages_of(out)
    return {"engine": name, "pages": pages, "wall_s": wall, "cpu_s": cpu,
            "pages_per_s": pages / wall, "written": stats["written"], "errors": stats["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdfs", default="/work/shared/corpus/pdfs")
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents")
    parser.add_argument("--task-size", type=int, default=2)
    parser.add_argument("--pipeline-flags", default="--ocr none --no-charts --no-label",
                        help="flags for vlforge pdf (default: rendering only)")
    args = parser.parse_args()
    docs = sorted(str(p) for p in Path(args.pdfs).iterdir() if p.suffix.lower() == ".pdf")
    docs = docs[:args.limit] if args.limit else docs
    flags = ["--task-size", str(args.task_size), *shlex.split(args.pipeline_flags)]
    work = Path(tempfile.mkdtemp(prefix="engine-scaling-"))
    listing = work / "inputs.txt"
    listing.write_text("\n".join(docs) + "\n")
    print(f"{len(docs)} documents from {args.pdfs}; vlforge pdf {' '.join(flags)}; "
          f"{os.cpu_count()} CPUs", flush=True)

    results = []
    results.append(run_engine("direct 1 worker", [str(listing)], str(work / "direct1"),
                              ["--direct_num_workers=1"], flags, []))
    results.append(run_engine("direct multi-processing 2", [str(listing)],
                              str(work / "direct2"),
                              ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
                              flags, []))
    servers, address = start_dask_cluster(work / "dask", 2)
    try:
        pids = [s.process.pid for s in servers]
        results.append(run_engine("dask 2 workers", [str(listing)], str(work / "dask-run"),
                                  ["--runner=DaskRunner", f"--dask_client_address={address}"],
                                  flags, pids))
    finally:
        for server in reversed(servers):
            server.stop()
    servers, endpoints = start_beam_job_service(work / "portable")
    try:
        pids = [s.process.pid for s in servers]
        results.append(run_engine("portable external 2", [str(listing)],
                                  str(work / "portable-run"), endpoints.beam_args(2), flags,
                                  pids))
    finally:
        for server in reversed(servers):
            server.stop()

    base = results[0]["pages_per_s"]
    mp = results[1]["pages_per_s"]
    print(f"{'engine':28s} {'pages':>6s} {'wall s':>8s} {'CPU s':>8s} {'pages/s':>8s} "
          f"{'x 1-worker':>10s} {'pages/CPU-s':>11s}")
    for r in results:
        print(f"{r['engine']:28s} {r['pages']:6d} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
              f"{r['pages_per_s']:8.2f} {r['pages_per_s'] / base:10.2f} "
              f"{r['pages'] / max(r['cpu_s'], 1e-9):11.2f}")
    dask = results[2]["pages_per_s"]
    print(f"dask / direct multi-processing: {dask / mp:.2f} (goal >= 0.9); 2-worker goal "
          f">= 1.6x the 1-worker run")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
