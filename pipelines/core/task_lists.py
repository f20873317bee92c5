"""The pending tasks as lists the workers read, so the job graph stays the same size.

The driver writes the pending tasks of an attempt once, as ``plan/part-NNNNN.parquet`` in
the run directory (one part per partition, each a contiguous range of the pending tasks, so
the parts are written one after another, a row group at a time, from a stream of tasks);
`ReadTasks` is ``Create(range(partitions)) | Reshuffle | ReadTaskLists``: the graph holds
only the partition numbers (at most `MAX_PARTITIONS`), whatever the number of inputs, and
each worker reads its own parts through fsspec. Beam's Dask runner has no translation for
``Read`` transforms (``ReadFromParquet`` would reach it as a no-op), which is why this is a
ParDo reading files rather than a Beam source.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from pipelines.core.run_dir import Task

MAX_PARTITIONS = 1024
PLAN_DIR = "plan"
PLAN_SCHEMA = pa.schema([("task", pa.string()), ("input_ref", pa.string())])


ROW_GROUP_ROWS = 50_000  # task-list rows the driver holds before writing a row group


def partition_of(ordinal: int, tasks: int, partitions: int) -> int:
    """The partition (0..partitions-1) of the `ordinal`-th of `tasks` pending tasks:
    contiguous ranges of near-equal size."""
    return ordinal * max(1, partitions) // max(1, tasks)


def partition_count(tasks: int) -> int:
    """How many task-list parts to write: one per task up to `MAX_PARTITIONS` (the graph
    holds only this many small integers, whatever the number of inputs)."""
    return max(1, min(tasks, MAX_PARTITIONS))


def write_task_lists(run_url: str, tasks: Collection[Task], partitions: int) -> None:
    """Write the pending tasks as ``plan/part-NNNNN.parquet`` (one per partition), the
    lists the workers read; the driver writes them once per attempt. `tasks` is iterated
    once (a `pipelines.core.run_dir.PendingTasks` streams them): one part is open at a
    time and at most `ROW_GROUP_ROWS` rows are held."""
    from pipelines.core.run_dir import RunDir

    run = RunDir(run_url)
    if run.exists(PLAN_DIR):
        run.fs.rm(run.path(PLAN_DIR), recursive=True)
    run.fs.makedirs(run.path(PLAN_DIR), exist_ok=True)
    total = len(tasks)
    writer = _PartWriter(run)
    for ordinal, task in enumerate(tasks):
        writer.to_part(partition_of(ordinal, total, partitions))
        writer.add(task.task_id, task.input_refs)
    writer.finish(partitions)


class _PartWriter:
    """Writes the parts in order, a row group at a time."""

    def __init__(self, run: Any):
        self.run = run
        self.index = -1
        self.rows: list[dict[str, str]] = []
        self._handle = self._writer = None

    def to_part(self, index: int) -> None:
        """Make part `index` the open one (parts skipped on the way are written empty)."""
        while self.index < index:
            self.close()
            self.index += 1
            self._open()

    def finish(self, partitions: int) -> None:
        """Write the remaining parts up to `partitions` (empty) and close the last."""
        self.to_part(partitions - 1)
        self.close()

    def _open(self) -> None:
        path = self.run.path(PLAN_DIR, part_name(self.index))
        self._handle = self.run.fs.open(path, "wb")
        self._writer = pq.ParquetWriter(self._handle, PLAN_SCHEMA)

    def add(self, task_id: str, refs: list[dict[str, Any]]) -> None:
        self.rows.extend({"task": task_id, "input_ref": json.dumps(ref, sort_keys=True)}
                         for ref in refs)
        if len(self.rows) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self._writer.write_table(pa.Table.from_pylist(self.rows, schema=PLAN_SCHEMA))
            self.rows = []

    def close(self) -> None:
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._handle.close()
            self._handle = self._writer = None


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


class ReadTaskListFn(beam.DoFn):
    """Partition number in, that partition's ``(task_id, refs)`` out (read in the worker)."""

    def __init__(self, run_url: str):
        self.run_url = run_url

    def process(self, partition: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        from pipelines.core.run_dir import RunDir

        run = RunDir(self.run_url)
        with run.fs.open(run.path(PLAN_DIR, part_name(partition)), "rb") as handle:
            data = handle.read()
        rows = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False).to_pylist()
        # The driver listed only pending tasks; listing every done marker again in each of
        # up to MAX_PARTITIONS workers would cost more than it saves.
        tasks: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            tasks.setdefault(row["task"], []).append(json.loads(row["input_ref"]))
        yield from sorted(tasks.items())


class ReadTasks(beam.PTransform):
    """``p | ReadTasks(run_url, tasks)``: the pending tasks as ``(task_id, refs)``, read by
    the workers from task lists the driver writes once; the graph holds only the partition
    numbers, so its size does not grow with the input count."""

    def __init__(self, run_url: str, tasks: Collection[Task]):
        super().__init__()
        self.run_url = run_url
        self.partitions = partition_count(len(tasks))
        write_task_lists(run_url, tasks, self.partitions)

    def expand(self, pbegin):
        parts = pbegin | "Partitions" >> beam.Create(list(range(self.partitions)))
        if self.partitions > 1:
            # One partition has nothing to spread: without the shuffle the whole graph is
            # one fused stage, one bundle instead of two (~0.05 CPU-s of a one-task run)
            parts = parts | "SpreadPartitions" >> beam.Reshuffle()
        return parts | "ReadTaskLists" >> beam.ParDo(ReadTaskListFn(self.run_url))
