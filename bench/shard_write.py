"""Shard writer throughput vs a bare `tarfile` loop writing the same bytes.

    .venv/bin/python bench/shard_write.py [--samples 400] [--image-kb 256] [--repeats 3]

Both sides write the same WebDataset groups to the same disk in the same process; the
writer also hashes images for the manifest, bounds shard sizes and renames atomically.
Prints MB/s of each and their ratio (goal: writer >= 0.9 of the bare loop). Runs are
interleaved and the best of `--repeats` is kept, since this machine is noisy.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.core.sample import Sample  # noqa: E402
from pipelines.core.shards import ShardWriter  # noqa: E402


def make_samples(count: int, image_kb: int) -> list[Sample]:
    payload = os.urandom(image_kb * 1024)  # incompressible, like a PNG
    return [Sample.create("bench", f"bench://{i}", image=b"\x89PNG" + payload[i:] + payload[:i],
                          text=f"sample {i} " * 20, meta={"bench": {"index": i}})
            for i in range(count)]


def bare_tarfile(samples: list[Sample], directory: str, max_bytes: int) -> None:
    groups = [s.to_wds() for s in samples]  # encoding counted on the writer side only
    start = time.perf_counter()
    index, size, tar = 0, 0, None
    for group in groups:
        if tar is None or size > max_bytes:
            if tar:
                tar.close()
            tar = tarfile.open(os.path.join(directory, f"bare-{index:06d}.tar"), "w")
            index, size = index + 1, 0
        for ext, data in group.items():
            if ext == "__key__":
                continue
            info = tarfile.TarInfo(f"{group['__key__']}.{ext}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            size += len(data)
    tar.close()
    return time.perf_counter() - start


def vlforge_writer(samples: list[Sample], directory: str, max_bytes: int) -> float:
    start = time.perf_counter()
    with ShardWriter(directory, prefix="w", max_bytes=max_bytes) as writer:
        for sample in samples:
            writer.write(sample)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--image-kb", type=int, default=256)
    parser.add_argument("--shard-mb", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    samples = make_samples(args.samples, args.image_kb)
    megabytes = sum(s.size_bytes() for s in samples) / 1e6
    best = {"bare tarfile": float("inf"), "ShardWriter": float("inf")}
    for _ in range(args.repeats):
        for name, fn in (("bare tarfile", bare_tarfile), ("ShardWriter", vlforge_writer)):
            directory = tempfile.mkdtemp(prefix="bench-shards-")
            try:
                best[name] = min(best[name], fn(samples, directory, args.shard_mb * 1024 * 1024))
            finally:
                shutil.rmtree(directory)
    print(f"{args.samples} samples, {megabytes:.0f} MB, best of {args.repeats}")
    for name, seconds in best.items():
        print(f"  {name:13s} {megabytes / seconds:8.1f} MB/s")
    ratio = best["bare tarfile"] / best["ShardWriter"]
    print(f"  ratio writer/bare: {ratio:.2f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
