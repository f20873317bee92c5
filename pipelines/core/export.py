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
    # the five columns read below, not whole rows (signatures are most of a row)
    rows = run.manifest(["key", "shard", "bytes", "source", "taxonomy_leaf"]).to_pylist()
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
    """One flat row per sample: payloads as columns (``image`` the first image,
    ``extra_images`` the rest, in placeholder order), meta as a JSON string."""
    for sample in run.iter_samples():
        yield {
            "key": sample.key, "source": sample.source, "locator": sample.locator,
            "image": sample.image, "extra_images": list(sample.extra_images),
            "text": sample.text, "markdown": sample.markdown,
            "html": sample.html, "meta": json.dumps(sample.meta, sort_keys=True, default=str),
            "taxonomy_leaf": (sample.meta.get("taxonomy") or {}).get("leaf", ""),
        }


def export_schema():
    """The parquet export's columns, fixed (a batch whose texts are all absent would
    otherwise be inferred as type null and differ from the other files)."""
    import pyarrow as pa

    text = pa.string()
    return pa.schema([("key", text), ("source", text), ("locator", text),
                      ("image", pa.binary()), ("extra_images", pa.list_(pa.binary())),
                      ("text", text), ("markdown", text), ("html", text), ("meta", text),
                      ("taxonomy_leaf", text)])


def hf_features_for(urls: list[str]):
    """`datasets.Features` that load the shards of these runs with
    ``load_dataset("webdataset", data_files=..., features=...)`` whatever their mix: one
    image member per image position any of their samples has (``png``, ``1.png``...,
    from the manifests' ``num_images``). Without it, ``datasets`` infers the members from
    the first samples and drops (or refuses) the ``N.png`` of interleaved documents."""
    from pipelines.core.schema import hf_features

    most = 1
    for url in urls:
        for row in RunDir(url).require_complete().iter_manifest_rows(["num_images"]):
            most = max(most, int(row["num_images"] or 0))
    return hf_features(("png", *(f"{n}.png" for n in range(1, most))))


def export_parquet(url: str, out_dir: str, rows_per_file: int = 1000) -> list[str]:
    """Write the run as parquet files of at most `rows_per_file` rows (streamed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(out_dir, exist_ok=True)
    run = RunDir(url).require_complete()
    written, batch = [], []

    def flush() -> None:
        path = os.path.join(out_dir, f"part-{len(written):05d}.parquet")
        pq.write_table(pa.Table.from_pylist(batch, schema=export_schema()), path)
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
        "extra_images": datasets.Sequence(datasets.Image()),
        "text": datasets.Value("string"), "markdown": datasets.Value("string"),
        "html": datasets.Value("string"), "meta": datasets.Value("string"),
        "taxonomy_leaf": datasets.Value("string"),
    })

    def rows():
        for row in export_rows(run):
            image = row["image"]
            yield {**row, "image": {"bytes": image, "path": None} if image else None,
                   "extra_images": [{"bytes": extra, "path": None}
                                    for extra in row["extra_images"]]}

    dataset = datasets.Dataset.from_generator(rows, features=features)
    dataset.save_to_disk(out_dir)
    return len(dataset)
