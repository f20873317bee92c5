"""The "label" pipeline: relabel the samples of finished runs into a new run directory.

One input per source sample, ``{"run": RUN_URL, "shard": SHARD, "key": KEY}``, so that a
retry re-reads exactly one sample. `ReadRunSampleFn` reads that sample by key through the
run directory (`pipelines.core.run_dir.SampleReader`: a worker indexes a shard's tar
headers once, so a task of N samples costs one header scan, not N full reads) and makes it an
item of the new run: its accounting fields (input/item id, input ref, task) are the new
run's, and where it came from is kept in ``lineage["relabeled_from"]``. Derived samples
(figures of a page) become ordinary items here, since their parent is not in this run.
`LabelTaxonomyFn` then labels it; the old label moves to ``lineage["taxonomy_history"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pipelines.core.run_dir import RunDir, SampleReader
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.split import document_id
from pipelines.core.stage import Record, StageFn
from pipelines.label.config import LabelConfig
from pipelines.label.stage import LabelTaxonomyFn

log = logging.getLogger(__name__)


class ReadRunSampleFn(StageFn):
    """Seed ``{"run", "shard", "key"}`` → that sample, re-stamped as an item of this run."""

    stage = "ReadRunSample"

    def open(self) -> None:
        self.reader = SampleReader()

    def close(self) -> None:
        self.reader.close()

    def process_sample(self, seed: Sample) -> Iterable[Record]:
        ref = seed.lineage["input_ref"]
        sample = self.reader.read(ref["run"], ref["shard"], ref["key"])
        old = dict(sample.lineage)
        origin = {"run": ref["run"], "shard": ref["shard"], "key": ref["key"],
                  "item_id": old.get("item_id", sample.key)}
        for field in ("derived_from", "parent_item", "input_id", "task"):
            if old.get(field):
                origin[field] = old.pop(field)
        old.pop("input_ref", None)
        # the source document stays the same, so the relabeled run splits like its source
        old["document"] = document_id(sample)
        lineage = {**old, "input_id": seed.lineage["input_id"],
                   "item_id": seed.lineage["item_id"], "input_ref": ref,
                   "task": seed.lineage["task"], "relabeled_from": origin}
        yield sample.with_meta("lineage", lineage)


def label_refs(run_urls: Sequence[str]) -> list[dict[str, Any]]:
    """One input ref per sample of each finished source run (from its manifest)."""
    return list(iter_label_refs(run_urls))


def iter_label_refs(run_urls: Sequence[str]) -> Iterator[dict[str, Any]]:
    """`label_refs` streamed, for `run_pipeline` (its planning holds a bounded batch of
    refs, not one dict per sample of the source runs). The runs are checked now, so an
    unfinished one is refused before anything is planned."""
    return _refs_of([RunDir(url).require_complete() for url in run_urls])


def _refs_of(runs: Sequence[RunDir]) -> Iterator[dict[str, Any]]:
    for run in runs:
        # two columns streamed, never the whole manifest (read twice, before)
        for row in run.iter_manifest_rows(["key", "shard"]):
            yield input_ref("label", f"{run.url}#{row['key']}", run=run.url,
                            shard=row["shard"], key=row["key"])
        log.info("label: %s holds %d samples", run.url, run.manifest_num_rows())


def build_stages(config: LabelConfig | Mapping[str, Any]) -> list[StageFn]:
    """ReadRunSample, then LabelTaxonomy."""
    config = LabelConfig.coerce(config)
    return [ReadRunSampleFn(),
            LabelTaxonomyFn(threshold=config.threshold, taxonomy_file=config.taxonomy_file,
                            quantize=config.quantize)]
