"""The "label" pipeline: relabel the samples of finished runs into a new run directory.

One input per source sample, ``{"run": RUN_URL, "shard": SHARD, "key": KEY}``, so that a
retry re-reads exactly one sample. `ReadRunSampleFn` reads that sample straight from its
shard (each worker indexes a shard's tar headers once and then seeks to the members it
needs, so a task of N samples costs one header scan, not N full reads) and makes it an
item of the new run: its accounting fields (input/item id, input ref, task) are the new
run's, and where it came from is kept in ``lineage["relabeled_from"]``. Derived samples
(figures of a page) become ordinary items here, since their parent is not in this run.
`LabelTaxonomyFn` then labels it; the old label moves to ``lineage["taxonomy_history"]``.
"""

from __future__ import annotations

import logging
import tarfile
from collections import OrderedDict
from typing import Any, Iterable, Sequence

import fsspec

from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.stage import Record, StageFn
from pipelines.label.stage import LabelTaxonomyFn

log = logging.getLogger(__name__)

OPEN_SHARDS = 4  # shard indexes kept per worker (tasks read shards in order)


class ShardIndex:
    """Random access to the members of one (uncompressed) tar shard by sample key."""

    def __init__(self, url: str):
        fs, path = fsspec.core.url_to_fs(url)
        self.handle = fs.open(path, "rb")
        self.members: dict[str, dict[str, tuple[int, int]]] = {}
        with tarfile.open(fileobj=self.handle, mode="r:") as tar:
            for member in tar.getmembers():  # headers only: data blocks are skipped
                if member.isfile():
                    key, _, ext = member.name.rsplit("/", 1)[-1].partition(".")
                    self.members.setdefault(key, {})[ext] = (member.offset_data, member.size)

    def group(self, key: str) -> dict[str, bytes]:
        if key not in self.members:
            raise KeyError(f"sample {key} is not in this shard")
        group: dict[str, Any] = {"__key__": key}
        for ext, (offset, size) in self.members[key].items():
            self.handle.seek(offset)
            group[ext] = self.handle.read(size)
        return group

    def close(self) -> None:
        self.handle.close()


class ReadRunSampleFn(StageFn):
    """Seed ``{"run", "shard", "key"}`` → that sample, re-stamped as an item of this run."""

    stage = "ReadRunSample"

    def open(self) -> None:
        self._shards: OrderedDict[str, ShardIndex] = OrderedDict()

    def close(self) -> None:
        for index in self._shards.values():
            index.close()
        self._shards.clear()

    def _index(self, url: str) -> ShardIndex:
        if url in self._shards:
            self._shards.move_to_end(url)
            return self._shards[url]
        index = ShardIndex(url)
        self._shards[url] = index
        while len(self._shards) > OPEN_SHARDS:
            self._shards.popitem(last=False)[1].close()
        return index

    def process_sample(self, seed: Sample) -> Iterable[Record]:
        ref = seed.lineage["input_ref"]
        run = RunDir(ref["run"])
        protocol = run.fs.protocol if isinstance(run.fs.protocol, str) else run.fs.protocol[0]
        prefix = "" if protocol in ("file", "local") else f"{protocol}://"
        sample = Sample.from_wds(self._index(prefix + run.path(ref["shard"])).group(ref["key"]))
        old = dict(sample.lineage)
        origin = {"run": ref["run"], "shard": ref["shard"], "key": ref["key"],
                  "item_id": old.get("item_id", sample.key)}
        for field in ("derived_from", "parent_item", "input_id", "task"):
            if old.get(field):
                origin[field] = old.pop(field)
        old.pop("input_ref", None)
        lineage = {**old, "input_id": seed.lineage["input_id"],
                   "item_id": seed.lineage["item_id"], "input_ref": ref,
                   "task": seed.lineage["task"], "relabeled_from": origin}
        yield sample.with_meta("lineage", lineage)


def label_refs(run_urls: Sequence[str]) -> list[dict[str, Any]]:
    """One input ref per sample of each finished source run (from its manifest)."""
    refs = []
    for url in run_urls:
        run = RunDir(url).require_complete()
        for row in run.manifest().select(["key", "shard"]).to_pylist():
            refs.append(input_ref("label", f"{run.url}#{row['key']}", run=run.url,
                                  shard=row["shard"], key=row["key"]))
        log.info("label: %s holds %d samples", run.url, run.manifest().num_rows)
    return refs


def build_stages(config: dict[str, Any]) -> list[StageFn]:
    return [ReadRunSampleFn(),
            LabelTaxonomyFn(threshold=config.get("threshold"),
                            taxonomy_file=config.get("taxonomy_file"),
                            quantize=config.get("quantize", True))]
