"""`vlforge shards inspect|export`: look inside a run's shards, or hand them to other tools."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, Iterator

from pipelines.core.run_dir import RunDir


def inspect_run(url: str, examples: int = 5) -> dict[str, Any]:
    """Counts, sizes and a few sample keys of a run, from its manifest."""
    run = RunDir(url).require_complete()
    rows = run.manifest().to_pylist()
    per_shard: Counter = Counter()
    bytes_per_shard: Counter = Counter()
    for row in rows:
        per_shard[row["shard"]] += 1
        bytes_per_shard[row["shard"]] += row["bytes"]
    return {
        "run": url,
        "pipeline": run.pipeline,
        "samples": len(rows),
        "shards": [{"name": s, "samples": per_shard[s], "bytes": bytes_per_shard[s]}
                   for s in sorted(per_shard)],
        "bytes": sum(bytes_per_shard.values()),
        "by_source": dict(Counter(r["source"] for r in rows)),
        "by_taxonomy_leaf": dict(Counter(r["taxonomy_leaf"] or "unlabeled" for r in rows)),
        "example_keys": [r["key"] for r in rows[:examples]],
    }


def export_rows(run: RunDir) -> Iterator[dict[str, Any]]:
    """One flat row per sample: payloads as columns, meta as a JSON string."""
    for sample in run.iter_samples():
        yield {
            "key": sample.key, "source": sample.source, "locator": sample.locator,
            "image": sample.image, "text": sample.text, "markdown": sample.markdown,
            "html": sample.html, "meta": json.dumps(sample.meta, sort_keys=True, default=str),
            "taxonomy_leaf": (sample.meta.get("taxonomy") or {}).get("leaf", ""),
        }


def export_parquet(url: str, out_dir: str, rows_per_file: int = 1000) -> list[str]:
    """Write the run as parquet files of at most `rows_per_file` rows (streamed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(out_dir, exist_ok=True)
    run = RunDir(url).require_complete()
    written, batch = [], []

    def flush() -> None:
        path = os.path.join(out_dir, f"part-{len(written):05d}.parquet")
        pq.write_table(pa.Table.from_pylist(batch), path)
        written.append(path)
        batch.clear()

    for row in export_rows(run):
        batch.append(row)
        if len(batch) >= rows_per_file:
            flush()
    if batch or not written:
        flush()
    return written


def export_hf(url: str, out_dir: str) -> int:
    """Save the run as a `datasets.Dataset` on disk (images as the Image feature)."""
    import datasets

    run = RunDir(url).require_complete()
    features = datasets.Features({
        "key": datasets.Value("string"), "source": datasets.Value("string"),
        "locator": datasets.Value("string"), "image": datasets.Image(),
        "text": datasets.Value("string"), "markdown": datasets.Value("string"),
        "html": datasets.Value("string"), "meta": datasets.Value("string"),
        "taxonomy_leaf": datasets.Value("string"),
    })

    def rows():
        for row in export_rows(run):
            image = row["image"]
            yield {**row, "image": {"bytes": image, "path": None} if image else None}

    dataset = datasets.Dataset.from_generator(rows, features=features)
    dataset.save_to_disk(out_dir)
    return len(dataset)
