"""The base of every pipeline stage: a DoFn over one stream of Samples and Outcomes.

A stage only implements `process_sample`. The base passes Outcomes from earlier stages
through untouched, turns any exception into an error Outcome (so one bad element never
stops a run), counts what it did with Beam `Metrics`, and opens heavy resources once per
worker in `setup`. Because Samples and Outcomes share one stream, a pipeline is a plain
chain ``records | StageA() | StageB() | WriteRun(...)`` with no side outputs to merge.
"""

from __future__ import annotations

import logging
from typing import Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from pipelines.core.outcome import Outcome
from pipelines.core.sample import Sample
from pipelines.core.task_end import TaskEnd

log = logging.getLogger(__name__)

Record = Sample | Outcome


def task_of(record: Record) -> str:
    """The task a record belongs to (stages that hold records back flush on a change).

    A task's end marker (`pipelines.core.task_end.TaskEnd`) counts as a task of its own,
    so a stage holding records of that task releases them before passing the marker on.
    """
    if isinstance(record, TaskEnd):
        return f"{record.task}/end"
    return record.task if isinstance(record, Outcome) else record.lineage.get("task", "")


class StageFn(beam.DoFn):
    """Subclass and implement `process_sample`; set `stage` to the stage's name.

    `process_sample` yields Samples (kept or new) and Outcomes (drops, errors, expansions).
    Keep ``__init__`` to plain picklable settings; load models and browsers in `open`.
    Stay element-wise: yield a sample's outputs from its own `process_sample` call. The
    sink relies on each task's records arriving together, so a stage that holds records
    back (to batch a model call, or keep pages in flight) must release them before a
    record of another task passes (`task_of`) and in `finish_bundle`.
    """

    stage = "Stage"

    def open(self) -> None:
        """Load heavy resources (once per worker). Override instead of `setup`."""

    def close(self) -> None:
        """Release what `open` took. Override instead of `teardown`."""

    def process_sample(self, sample: Sample) -> Iterable[Record]:
        raise NotImplementedError

    # -- Beam plumbing -----------------------------------------------------------------
    def setup(self) -> None:
        self.open()

    def teardown(self) -> None:
        self.close()

    def process(self, record: Record) -> Iterator[Record]:
        if isinstance(record, Outcome):
            yield record
            return
        try:
            for out in self.process_sample(record):
                self._count(out)
                yield out
        except Exception as exc:  # one bad element must never stop the run
            log.warning("%s failed on %s: %s", self.stage, record.key, exc)
            out = Outcome.error(record, self.stage, exc)
            self._count(out)
            yield out

    def _count(self, out: Record) -> None:
        if isinstance(out, Outcome):
            Metrics.counter(self.stage, f"{out.kind}_{out.reason}").inc()
        else:
            Metrics.counter(self.stage, "samples_out").inc()

    # Lets a stage run outside Beam too (tests, small scripts, `vlforge ocr FILE`).
    def run_local(self, records: Iterable[Record]) -> list[Record]:
        """Apply this stage to `records` in-process, with setup/teardown around it."""
        self.setup()
        try:
            return [out for record in records for out in self.process(record)]
        finally:
            self.teardown()


class InFlightStageFn(StageFn):
    """A stage that keeps several inputs in flight (pages in browser tabs, documents in
    renderer processes) and yields their records as each finishes.

    Subclasses keep the entries in ``self.in_flight`` (a deque, oldest first, made in
    `open`), say which input an entry answers for (`seed_of`) and finish one entry in
    `_finish_one` (pop it, yield its records). This base keeps `StageFn`'s contract for
    them: a task's entries are finished before a record of another task passes
    (`_finish_task_before`, called first in `process`), at the end of a bundle, and at
    the end of `run_local`.
    """

    def seed_of(self, entry: object) -> Record:
        raise NotImplementedError

    def _finish_one(self) -> Iterator[Record]:
        raise NotImplementedError

    def _finish_task_before(self, record: Record) -> Iterator[Record]:
        """The sink needs each task's records together: finish what is in flight when
        `record` belongs to another task."""
        if self.in_flight and task_of(self.seed_of(self.in_flight[0])) != task_of(record):
            yield from self._drain()

    def _drain(self) -> Iterator[Record]:
        while self.in_flight:
            yield from self._finish_one()

    def finish_bundle(self) -> Iterator[object]:
        # Normally empty: every task ends with a marker that drains it (see task_end).
        for out in self._drain():
            yield GlobalWindows.windowed_value(out)

    def run_local(self, records: Iterable[Record]) -> list[Record]:
        self.setup()
        try:
            out = [o for record in records for o in self.process(record)]
            return out + list(self._drain())
        finally:
            self.teardown()
