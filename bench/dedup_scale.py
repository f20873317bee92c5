"""De-duplication at scale: samples/s, peak memory, and recall/precision of planted duplicates.

    .venv/bin/python bench/dedup_scale.py [--sizes 10000 100000] [--runner-args ...]

For each size N it writes two synthetic finished runs of N/2 manifest rows each (no shards:
dedup reads manifests only) with random signatures, and plants duplicates:

* 2% exact copies across the runs (same source + locator: the same URL crawled twice),
* 2% near-duplicate texts (a copy of a row's MinHash signature with 4 of 64 values
  changed: an estimated similarity of ~0.94, what one changed word does to a page),
* 1% near-duplicate images (a photo's perceptual hash with 2 of 64 bits flipped, no text),
* and "distinct" rows whose signatures share nothing.

It then runs `vlforge dedup` in-process (DirectRunner unless --runner-args say otherwise)
and prints rows/s, CPU-seconds per 1k rows, the peak RSS of this process and its children
(the same baseline for every size, side by side), and recall/precision of the planted
near duplicates.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.core.run_dir import RunDir  # noqa: E402
from pipelines.core.runner import input_ref  # noqa: E402
from pipelines.core.signatures import NUM_PERM  # noqa: E402
from pipelines.dedup.pipeline import run_dedup  # noqa: E402

TASK_ROWS = 5000


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


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runner-args", nargs="*", default=[],
                        help="Beam flags, e.g. --runner=DaskRunner --dask_client_address=...")
    args = parser.parse_args()
    print(f"{'rows':>9} {'rows/s':>9} {'CPU-s/1k rows':>14} {'peak RSS MB':>12} "
          f"{'near recall':>12} {'near precision':>15} {'exact found':>12}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            runs, planted = synthetic_rows(size, seed=size)
            urls = [os.path.join(tmp, f"run{i}") for i in range(2)]
            for url, rows in zip(urls, runs):
                write_run(url, rows)
            cpu0 = time.process_time() + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
            began = time.perf_counter()
            run_dedup(urls, os.path.join(tmp, "dedup"), beam_args=args.runner_args)
            wall = time.perf_counter() - began
            cpu = time.process_time() + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]) - cpu0
            found = {f"{r['key']}@{urls.index(r['run'])}": r["reason"]
                     for url in urls for r in RunDir(url).read_side_table("dedup_removed.parquet")}
            near_planted = {k for k, v in planted.items() if v.startswith("near")}
            near_found = {k for k, v in found.items() if v.startswith("near")}
            recall = len(near_planted & near_found) / max(1, len(near_planted))
            precision = len(near_planted & near_found) / max(1, len(near_found))
            exact = {k for k, v in planted.items() if v == "same_source"}
            total = sum(len(r) for r in runs)
            print(f"{total:>9} {total / wall:>9.0f} {cpu / total * 1000:>14.2f} "
                  f"{peak_rss_mb():>12.0f} {recall:>12.3f} {precision:>15.3f} "
                  f"{len(exact & set(found)):>5}/{len(exact):<6}")
    print("peak RSS is the process high-water mark so far (it only grows across sizes).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
