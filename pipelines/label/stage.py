"""The `LabelTaxonomy` stage: writes ``meta["taxonomy"]`` on every sample.

The labeler is set up once per worker (`open`); its embedding model loads on the first
prompt that needs the classifier, so runs labeled by task rules alone never load it.
Samples are buffered and labeled in batches of `batch_size` (one model call per batch
instead of per sample); the rest of a bundle is flushed in `finish_bundle`, and the batch
is also flushed whenever the next record belongs to another task, so each task's records
still reach the sink together.
Only samples whose prompt needs the classifier wait in a batch: while none waits, a sample
that a rule labels (or that has no prompt) passes at once. A sample that already had a
label keeps it in ``lineage["taxonomy_history"]``. ``unlabeled`` samples are counted, not
dropped.
"""

from __future__ import annotations

import logging
from typing import Iterable, Iterator

from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.core.outcome import Outcome
from pipelines.core.sample import Sample
from pipelines.core.stage import Record, StageFn, task_of
from pipelines.label.samples import label_sample, label_samples, label_without_model

log = logging.getLogger(__name__)


def with_label(sample: Sample, label_meta: dict) -> Sample:
    """`sample` with a new ``meta["taxonomy"]``, the previous label moved into lineage."""
    previous = sample.meta.get("taxonomy")
    if previous and (previous.get("leaf"), previous.get("version")) != \
            (label_meta.get("leaf"), label_meta.get("version")):
        history = list(sample.lineage.get("taxonomy_history") or [])
        history.append({k: previous.get(k) for k in ("leaf", "version", "confidence", "reason")})
        sample = sample.with_meta("lineage", {**sample.lineage, "taxonomy_history": history})
    return sample.with_meta("taxonomy", label_meta)


class LabelTaxonomyFn(StageFn):
    """Label each sample with a taxonomy leaf (rules, then the MiniLM classifier)."""

    stage = "LabelTaxonomy"

    def __init__(self, threshold: float | None = None, taxonomy_file: str | None = None,
                 batch_size: int = 64, quantize: bool = True):
        self.threshold = threshold
        self.taxonomy_file = taxonomy_file
        self.batch_size = batch_size
        self.quantize = quantize

    def open(self) -> None:
        from taxonomy.labeler import Labeler
        from taxonomy.tree import load_taxonomy

        # The embedding model loads on the first prompt to classify (`Labeler.label_prompts`
        # opens it), not here: samples without a prompt (web pages, PDF pages, tiles) are
        # labeled by task rules alone, and loading the model and embedding every leaf's
        # texts cost ~11 CPU-s per worker (torch import included), a quarter of the CPU of a
        # crawl of 60 saved pages.
        self.labeler = Labeler(load_taxonomy(self.taxonomy_file), threshold=self.threshold,
                               batch_size=self.batch_size, quantize=self.quantize)
        self._pending: list[Sample] = []

    def process_sample(self, sample: Sample) -> Iterable[Record]:
        """Label one sample alone (used when a batch fails, to isolate the bad one)."""
        label = label_sample(self.labeler, sample)
        self._count_label(label.leaf)
        yield with_label(sample, label.as_meta())

    # -- batching ----------------------------------------------------------------------
    def start_bundle(self) -> None:
        self._pending = []

    def process(self, record: Record) -> Iterator[Record]:
        if self._pending and task_of(self._pending[0]) != task_of(record):
            yield from self._flush()
        if isinstance(record, Outcome):
            yield record
            return
        if not self._pending:
            # Nothing waits for the classifier: a sample a rule labels (web pages, PDF
            # pages, tiles) passes at once, in order. Held back to its task's end, it held
            # the sink's writes of the whole task for the end too, so a crawl worker's
            # next task waited ~1-3 s with no page in flight after every task.
            try:
                label = label_without_model(self.labeler, record)
            except Exception as exc:  # the batch path isolates and reports it
                log.info("%s: rule labeling failed on %s (%s)", self.stage, record.key, exc)
                label = None
            if label is not None:
                self._count_label(label.leaf)
                out = with_label(record, label.as_meta())
                self._count(out)
                yield out
                return
        self._pending.append(record)
        if len(self._pending) >= self.batch_size:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for out in self._flush():
            yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])

    def _flush(self) -> Iterator[Record]:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            labels = label_samples(self.labeler, batch)
        except Exception as exc:  # find the sample that broke the batch; the rest go on
            log.warning("%s: batch of %d failed (%s); labeling one by one", self.stage,
                        len(batch), exc)
            for sample in batch:
                yield from StageFn.process(self, sample)
            return
        for sample, label in zip(batch, labels):
            self._count_label(label.leaf)
            out = with_label(sample, label.as_meta())
            self._count(out)
            yield out

    def _count_label(self, leaf: str) -> None:
        Metrics.counter(self.stage, "unlabeled" if leaf == "unlabeled" else "labeled").inc()

    def run_local(self, records: Iterable[Record]) -> list[Record]:
        """Apply the stage in-process with Beam's call order (setup, bundle, teardown)."""
        self.setup()
        try:
            self.start_bundle()
            out = [o for record in records for o in self.process(record)]
            out.extend(wv.value for wv in self.finish_bundle())
            return out
        finally:
            self.teardown()
