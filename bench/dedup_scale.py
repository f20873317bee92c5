"""De-duplication at scale: samples/s, peak memory per process, CPU-seconds, and
recall / false matches of planted duplicates.

    .venv/bin/python bench/dedup_scale.py [--sizes 10000 100000 1000000]
        [--runner direct|multi|dask] [--workers 2] [--worker-memory 1GiB] [--partitions P]

For each size N it writes two synthetic finished runs of N/2 manifest rows each (no shards:
dedup reads manifests only) with random signatures, and plants duplicates:

* 2% exact copies across the runs (same source + locator: the same URL crawled twice),
* 2% near-duplicate texts (a copy of a row's MinHash signature with 4 of 64 values
  changed: an estimated similarity of ~0.94, what one changed word does to a page),
* 1% near-duplicate images (a photo's perceptual hash with 2 of 64 bits flipped, no text),
* and "distinct" rows whose signatures share nothing.

Each size is measured in a fresh process (the runs are written by another one first), so
one size's high-water mark never leaks into the next: `vlforge dedup`'s pipeline runs in
that process on the DirectRunner (``direct``), on the DirectRunner with worker processes
(``multi``: ``--direct_running_mode=multi_processing``) or on Beam's Dask runner against a
local ``dask scheduler`` + ``dask worker`` started for the size (``dask``). A sampler reads
the RSS of every process of the tree (the driver, its children, the Dask cluster) every
0.1 s and reports the peak of the driver, of the largest single worker process, and of
the whole tree at once; CPU-seconds are summed over the same processes. ``passes`` is the
number of partitioned passes dedup ran (auto: about one per 100k rows; ``--partitions 1``
gives the single-pipeline baseline to compare against).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.signatures import NUM_PERM

TASK_ROWS = 5000
DIRECT_MULTI = ["--direct_running_mode=multi_processing"]


def random_signature(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**32 - 1, NUM_PERM, dtype=np.uint64).astype("<u4")


def synthetic_rows(n: int, seed: int) -> tuple[list[list[dict]], dict[str, str]]:
    """Rows of two runs and {removed key: planted reason} for the planted duplicates."""
    rng = np.random.default_rng(seed)
    py = random.Random(seed)
    runs: list[list[dict]] = [[], []]
    planted: dict[str, str] = {}

    def row(key: str, locator: str, *, text=True, signature=None, phash=None) -> dict:
        sig = signature if signature is not None else random_signature(rng)
        return {"key": key, "source": "web", "locator": locator, "text_chars": 800 if text else 0,
                "image_sha256": f"{py.getrandbits(128):032x}",
                "text_hash": f"{py.getrandbits(64):016x}" if text else "",
                "text_minhash": sig.tobytes() if text else b"",
                "image_phash": phash or f"{py.getrandbits(64):016x}"}

    for i in range(n):
        run = i % 2
        kind = py.random()
        key = f"k{i:08d}"
        if kind < 0.02 and i >= 2:  # exact copy in the other run of an earlier row
            original = runs[1 - run][-1]
            copy = dict(original)
            if run == 0:  # keep the copy in run 1 so run 0's original wins
                runs[0].append(row(key, f"https://site/{i}"))
                continue
            runs[1].append(copy)
            planted[copy["key"] + "@1"] = "same_source"
            continue
        if kind < 0.04 and runs[run]:
            original = runs[run][py.randrange(len(runs[run]))]
            if original["text_minhash"]:
                sig = np.frombuffer(original["text_minhash"], dtype="<u4").copy()
                for j in py.sample(range(NUM_PERM), 4):
                    sig[j] = py.getrandbits(32)
                runs[run].append(row(key, f"https://site/{i}", signature=sig))
                planted[f"{key}@{run}"] = "near_text"
                continue
        if kind < 0.05 and runs[run]:
            photo = row(key + "a", f"https://site/{i}/photo", text=False)
            flipped = int(photo["image_phash"], 16) ^ (1 << py.randrange(64)) ^ (1 << py.randrange(64))
            runs[run].append(photo)
            runs[run].append(row(key + "b", f"https://site/{i}/photo2", text=False,
                                 phash=f"{flipped:016x}"))
            planted[f"{key}b@{run}"] = "near_image"  # the later key of the pair is removed
            continue
        runs[run].append(row(key, f"https://site/{i}"))
    return runs, planted


def write_run(url: str, rows: list[dict]) -> None:
    run = RunDir(url)
    refs = [input_ref("bench", r["locator"] + "#" + r["key"]) for r in rows]
    tasks = run.plan("bench", refs, {}, task_size=TASK_ROWS, overwrite=True)
    by_task: dict[str, list[dict]] = {}
    ids = {ref["input_id"]: task.task_id for task in tasks for ref in task.input_refs}
    for ref, r in zip(refs, rows):
        by_task.setdefault(ids[ref["input_id"]], []).append({
            "key": r["key"], "shard": "bench-000000.tar", "source": r["source"],
            "locator": r["locator"], "input_id": ref["input_id"], "item_id": ref["input_id"],
            "parent_item": "", "derived_from": "", "task": ids[ref["input_id"]],
            "image_sha256": r["image_sha256"], "image_bytes": 1000, "num_images": 1,
            "text_chars": r["text_chars"], "bytes": 2000, "taxonomy_leaf": "",
            "taxonomy_version": "", "taxonomy_confidence": 0.0, "document": r["key"],
            "split": "", "text_hash": r["text_hash"], "text_minhash": r["text_minhash"],
            "image_phash": r["image_phash"]})
    for task in tasks:
        run.write_task(task.task_id, [], by_task.get(task.task_id, []), [])
    run.finalize()


def prepare(size: int, tmp: str) -> None:
    """Write the two runs of one size and the planted duplicates (planted.json)."""
    runs, planted = synthetic_rows(size, seed=size)
    for index, rows in enumerate(runs):
        write_run(os.path.join(tmp, f"run{index}"), rows)
    Path(tmp, "planted.json").write_text(json.dumps(
        {"planted": planted, "rows": sum(len(r) for r in runs)}))


def dedup(tmp: str, partitions: int | None, beam_args: list[str]) -> None:
    """Run `vlforge dedup` on the two runs of `tmp` (this process is the measured driver)."""
    from pipelines.dedup.pipeline import run_dedup

    began = time.perf_counter()
    run_dedup([os.path.join(tmp, "run0"), os.path.join(tmp, "run1")],
              os.path.join(tmp, "dedup"), beam_args=beam_args, partitions=partitions)
    Path(tmp, "wall.json").write_text(json.dumps(time.perf_counter() - began))


class TreeSampler(threading.Thread):
    """Samples RSS and CPU time of the processes below this one every `interval` s."""

    def __init__(self, driver: psutil.Process, interval: float = 0.1):
        super().__init__(daemon=True)
        self.driver, self.interval = driver, interval
        self.me = psutil.Process()
        self.stop = threading.Event()
        self.driver_peak = self.worker_peak = self.tree_peak = 0
        self.cpu: dict[int, float] = {}  # last CPU-seconds seen per process

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for proc in self.me.children(recursive=True):
                try:
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                self.cpu[proc.pid] = times.user + times.system
                total += rss
                if proc.pid == self.driver.pid:
                    self.driver_peak = max(self.driver_peak, rss)
                else:
                    self.worker_peak = max(self.worker_peak, rss)
            self.tree_peak = max(self.tree_peak, total)
            self.stop.wait(self.interval)


def measure(size: int, runner: str, workers: int, worker_memory: str = "0",
            partitions: int | None = None) -> dict:
    """One size: write the runs, then run and sample dedup in fresh processes."""
    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as tmp:
        me = [sys.executable, str(Path(__file__).resolve())]
        subprocess.run([*me, "--prepare", str(size), tmp], check=True)
        cluster, beam_args = [], []
        if runner == "multi":
            beam_args = [*DIRECT_MULTI, f"--direct_num_workers={workers}"]
        elif runner == "dask":
            from tests.servers import start_dask_cluster

            cluster, address = start_dask_cluster(Path(tmp, "dask"), workers,
                                                  memory_limit=worker_memory)
            beam_args = ["--runner=DaskRunner", f"--dask_client_address={address}"]
        try:
            sampler = TreeSampler(psutil.Process())
            cpu_before = {p.pid: sum(p.cpu_times()[:2])
                          for p in psutil.Process().children(recursive=True)}
            driver = subprocess.Popen([*me, "--dedup", tmp, str(partitions or "auto"), "--",
                                       *beam_args])
            sampler.driver = psutil.Process(driver.pid)
            sampler.start()
            if driver.wait() != 0:
                raise SystemExit(f"dedup failed at {size} rows")
            sampler.stop.set()
            sampler.join()
            cpu = sum(v - cpu_before.get(pid, 0.0) for pid, v in sampler.cpu.items())
        finally:
            for server in reversed(cluster):
                server.stop()
        info = json.loads(Path(tmp, "planted.json").read_text())
        wall = json.loads(Path(tmp, "wall.json").read_text())
        passes = json.loads(Path(tmp, "dedup", "dedup.json").read_text())["partitions"]
        urls = [os.path.join(tmp, f"run{i}") for i in range(2)]
        found = {f"{r['key']}@{urls.index(r['run'])}": r["reason"]
                 for url in urls for r in RunDir(url).read_side_table("dedup_removed.parquet")}
    planted, rows = info["planted"], info["rows"]
    near_planted = {k for k, v in planted.items() if v.startswith("near")}
    near_found = {k for k, v in found.items() if v.startswith("near")}
    exact = {k for k, v in planted.items() if v == "same_source"}
    return {"rows": rows, "passes": passes, "wall_s": wall, "rows_per_s": rows / wall, "cpu_s": cpu,
            "driver_peak_mb": sampler.driver_peak / 2**20,
            "worker_peak_mb": sampler.worker_peak / 2**20,
            "tree_peak_mb": sampler.tree_peak / 2**20,
            "near_recall": len(near_planted & near_found) / max(1, len(near_planted)),
            # distinct rows wrongly removed as near duplicates, over the rows that are not
            # planted near copies
            "false_match_rate": len(near_found - near_planted) / max(1, rows - len(near_planted)),
            "exact_found": f"{len(exact & set(found))}/{len(exact)}",
            "removed": len(found)}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--prepare":
        prepare(int(sys.argv[2]), sys.argv[3])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--dedup":
        dedup(sys.argv[2], None if sys.argv[3] == "auto" else int(sys.argv[3]), sys.argv[5:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runner", choices=("direct", "multi", "dask"), default="direct")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes (multi, dask)")
    parser.add_argument("--worker-memory", default="0",
                        help="dask: --memory-limit per worker (e.g. 1GiB: spill past 60%%)")
    parser.add_argument("--partitions", type=int, default=None,
                        help="dedup passes (default: dedup's auto, about one per 100k rows)")
    parser.add_argument("--json", action="store_true", help="one JSON object per size")
    args = parser.parse_args()
    print(f"runner: {args.runner}" + (f", {args.workers} workers" if args.runner != "direct"
                                     else "") + (f", worker memory limit {args.worker_memory}"
                                                 if args.runner == "dask" else ""), flush=True)
    header = (f"{'rows':>9} {'passes':>6} {'rows/s':>8} {'CPU-s':>8} {'driver MB':>10} {'worker MB':>10} "
              f"{'tree MB':>8} {'near recall':>11} {'false match':>11} {'exact':>13}")
    if not args.json:
        print(header, flush=True)
    for size in args.sizes:
        r = measure(size, args.runner, args.workers, args.worker_memory, args.partitions)
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        print(f"{r['rows']:>9} {r['passes']:>6} {r['rows_per_s']:>8.0f} {r['cpu_s']:>8.1f} "
              f"{r['driver_peak_mb']:>10.0f} {r['worker_peak_mb']:>10.0f} "
              f"{r['tree_peak_mb']:>8.0f} {r['near_recall']:>11.3f} "
              f"{r['false_match_rate']:>11.5f} {r['exact_found']:>13}", flush=True)
    print("driver = the process running the pipeline (DirectRunner: the runner with its "
          "in-memory shuffle); worker = the largest other process (SDK worker, Dask worker); "
          "tree = all at once.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
