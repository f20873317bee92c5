"""The Beam sink: write a stream of Samples and Outcomes into a run directory, per task.

Records of one task arrive contiguously (the task expands inside one `process` call and
every stage up to this sink is fused and element-wise) and end with the task's end marker
(`pipelines.core.task_end`): when it arrives the task is complete, so its shards are closed
and renamed, then its manifest, outcomes and done marker are written, from `process`
itself (runners differ in what they do with work left for ``finish_bundle``). Done
markers therefore appear task by task as the run progresses, and a killed run loses at
most the tasks in flight.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.core.outcome import Outcome
from pipelines.core.run_dir import RunDir
from pipelines.core.sample import Sample
from pipelines.core.shards import DEFAULT_MAX_BYTES, DEFAULT_MAX_COUNT
from pipelines.core.task_end import is_task_end


class _TaskBuffer:
    """Open shard writer and outcome list for one task."""

    def __init__(self, run: RunDir, pipeline: str, task_id: str, max_bytes: int, max_count: int):
        self.writer = run.shard_writer(pipeline, task_id, max_bytes=max_bytes,
                                       max_count=max_count)
        self.outcomes: list[Outcome] = []
        self.keys: set[str] = set()


class WriteRunFn(beam.DoFn):
    """Writes shards, manifests, outcomes and per-task done markers."""

    def __init__(self, run_url: str, pipeline: str, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_count: int = DEFAULT_MAX_COUNT):
        self.run_url = run_url
        self.pipeline = pipeline
        self.max_bytes = max_bytes
        self.max_count = max_count

    def setup(self) -> None:
        self.run = RunDir(self.run_url)

    def start_bundle(self) -> None:
        self.tasks: dict[str, _TaskBuffer] = {}
        self.finished: set[str] = set()

    def process(self, record: Sample | Outcome) -> None:
        task_id = (record.task if isinstance(record, Outcome)
                   else record.lineage.get("task", "")) or "t00000"
        if is_task_end(record):  # the task is whole: write it now, not at bundle end
            self._finish_task(task_id)
            return
        buffer = self.tasks.get(task_id)
        if buffer is None:
            if task_id in self.finished:
                raise RuntimeError(
                    f"task {task_id} sent records after it was finished: a stage between "
                    "ExpandTasks and WriteRun buffers or regroups elements; stages must be "
                    "element-wise and fused (no GroupByKey, Reshuffle or cross-element batching)")
            self._finish_tasks()
            buffer = self.tasks[task_id] = _TaskBuffer(
                self.run, self.pipeline, task_id, self.max_bytes, self.max_count)
        if isinstance(record, Outcome):
            buffer.outcomes.append(record)
            Metrics.counter("WriteRun", f"outcome_{record.kind}").inc()
        elif record.key in buffer.keys:
            # The same key twice in one task would be a duplicate sample: account, don't write.
            buffer.outcomes.append(Outcome.dropped(record, "WriteRun", "duplicate_key"))
            Metrics.counter("WriteRun", "outcome_dropped").inc()
        else:
            buffer.keys.add(record.key)
            buffer.writer.write(record)
            Metrics.counter("WriteRun", "samples_written").inc()

    def finish_bundle(self) -> None:
        self._finish_tasks()

    def _finish_task(self, task_id: str) -> None:
        buffer = self.tasks.pop(task_id, None)
        if buffer is None:  # a task with no records at all still gets its done marker
            if task_id in self.finished:
                return
            buffer = _TaskBuffer(self.run, self.pipeline, task_id, self.max_bytes,
                                 self.max_count)
        shards = buffer.writer.close()
        self.run.write_task(task_id, shards, buffer.writer.rows, buffer.outcomes)
        self.finished.add(task_id)

    def _finish_tasks(self) -> None:
        for task_id, buffer in self.tasks.items():
            shards = buffer.writer.close()
            self.run.write_task(task_id, shards, buffer.writer.rows, buffer.outcomes)
            self.finished.add(task_id)
        self.tasks = {}


class WriteRun(beam.PTransform):
    """``records | WriteRun(run_url, pipeline)``: the terminal step of every pipeline."""

    def __init__(self, run_url: str, pipeline: str, **bounds: Any):
        super().__init__()
        self.fn = WriteRunFn(run_url, pipeline, **bounds)

    def expand(self, records):
        return records | "WriteTasks" >> beam.ParDo(self.fn)
