"""Reading single samples by (shard, key), as the label and sft stages do, in random order.

    .venv/bin/python bench/read_by_key.py [--samples 1200] [--per-shard 300] [--reads 600]

Baseline: scan-and-cache, what the sft stage did before `RunDir.read_sample` (stream the
shard until the key turns up, keep the last two small shards decoded in memory). Measured:
`pipelines.core.run_dir.SampleReader` (tar header index per shard, offsets kept, a few
files open). Both read the same keys of the same run in the same order; prints wall and
CPU seconds of each and the CPU ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.core.run_dir import RunDir, SampleReader  # noqa: E402
from pipelines.core.runner import input_ref  # noqa: E402
from pipelines.core.sample import Sample  # noqa: E402
from pipelines.core.shards import iter_shard_samples  # noqa: E402


class ScanAndCache:
    """The baseline: stream a shard to find a key; cache up to two shards' samples."""

    def __init__(self, cache_bytes: int = 64 * 1024 * 1024):
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, dict[str, Sample]] = OrderedDict()

    def read(self, run: str, shard: str, key: str) -> Sample:
        url = f"{run.rstrip('/')}/{shard}"
        if url in self._cache:
            return self._cache[url][key]
        samples, size, found = {}, 0, None
        for sample in iter_shard_samples(url):
            found = sample if sample.key == key else found
            if size <= self.cache_bytes:
                samples[sample.key] = sample
                size += sum(len(i) for i in sample.images)
        if size <= self.cache_bytes:
            self._cache[url] = samples
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
        return found

    def close(self) -> None:
        self._cache.clear()


def write_run(root: str, count: int, per_shard: int) -> RunDir:
    payload = os.urandom(16 * 1024)  # a small incompressible "image"
    samples = [Sample.create("bench", f"bench://{i}", image=b"\x89PNG" + payload[i:] + payload[:i],
                             text=f"sample {i} " * 20) for i in range(count)]
    run = RunDir(root)
    [task] = run.plan("bench", [input_ref("bench", s.locator) for s in samples], {},
                      task_size=count)
    with run.shard_writer("bench", task.task_id, max_count=per_shard) as writer:
        for sample in samples:
            writer.write(sample)
    run.write_task(task.task_id, writer.shards, writer.rows, [])
    run.finalize()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1200)
    parser.add_argument("--per-shard", type=int, default=300)
    parser.add_argument("--reads", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run(os.path.join(tmp, "run"), args.samples, args.per_shard)
        rows = run.manifest().select(["shard", "key"]).to_pylist()
        rng = random.Random(0)
        order = [rng.choice(rows) for _ in range(args.reads)]
        cpu = {}
        for name, reader in (("scan-and-cache (baseline)", ScanAndCache()),
                             ("SampleReader", SampleReader())):
            wall, start = time.perf_counter(), time.process_time()
            for row in order:
                assert reader.read(run.url, row["shard"], row["key"]).key == row["key"]
            cpu[name] = time.process_time() - start
            reader.close()
            print(f"{name:26s} {args.reads} reads over {len(run.shard_names())} shards: "
                  f"{time.perf_counter() - wall:7.2f} s wall {cpu[name]:7.2f} CPU-s")
        print(f"CPU ratio baseline / SampleReader: "
              f"{cpu['scan-and-cache (baseline)'] / max(cpu['SampleReader'], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
