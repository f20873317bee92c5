"""Cost of the stable JSON member: `Sample.to_wds` (schema 2) vs the old nested encoding.

    .venv/bin/python bench/sample_encode.py RUN_DIR... [--repeats 5]

Reads the samples of finished runs, then encodes each one both ways in the same process:
the baseline is the schema-1 encoding (one ``json.dumps`` of the nested header, text members
only where present), the other is `Sample.to_wds`, which also reads the image header,
builds the text layers and stores ``meta`` as JSON text. Prints samples/s and CPU-seconds of
each, their ratio, and the bytes of the JSON member both ways. Runs are interleaved and the
best of `--repeats` is kept, since this machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.core.run_dir import RunDir  # noqa: E402
from pipelines.core.sample import TEXT_FIELDS, Sample, image_extension  # noqa: E402


def encode_schema1(sample: Sample) -> dict:
    """The encoding before schema 2 (kept here as the baseline)."""
    group = {"__key__": sample.key}
    header = {"schema": 1, "key": sample.key, "source": sample.source,
              "locator": sample.locator, "meta": sample.meta, "images": []}
    for index, data in enumerate(sample.images):
        name = image_extension(data) if index == 0 else f"{index}.{image_extension(data)}"
        group[name] = data
        header["images"].append(name)
    for attr, ext in TEXT_FIELDS.items():
        if getattr(sample, attr) is not None:
            group[ext] = getattr(sample, attr).encode("utf-8")
    group["json"] = json.dumps(header, ensure_ascii=False, sort_keys=True,
                               default=list).encode("utf-8")
    return group


def timed(encode, samples: list[Sample]) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    size = sum(len(encode(s)["json"]) for s in samples)
    return time.perf_counter() - wall, time.process_time() - cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="finished run directories")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    samples = [s for run in args.runs for s in RunDir(run).iter_samples()]
    best = {"schema 1": (1e9, 1e9, 0), "schema 2": (1e9, 1e9, 0)}
    for _ in range(args.repeats):
        for name, encode in (("schema 1", encode_schema1), ("schema 2", Sample.to_wds)):
            wall, cpu, size = timed(encode, samples)
            best[name] = min(best[name], (wall, cpu, size))
    print(f"{len(samples)} samples from {len(args.runs)} run(s), best of {args.repeats}")
    for name, (wall, cpu, size) in best.items():
        print(f"  {name}: {len(samples) / wall:8.0f} samples/s  {cpu:6.3f} CPU-s  "
              f"{size / len(samples) / 1024:7.1f} KiB JSON/sample")
    (w1, c1, s1), (w2, c2, s2) = best["schema 1"], best["schema 2"]
    print(f"  ratio schema 2 / schema 1: time {w2 / w1:.2f}x, CPU {c2 / c1:.2f}x, "
          f"JSON bytes {s2 / s1:.2f}x")


if __name__ == "__main__":
    main()
