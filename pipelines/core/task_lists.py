"""The pending tasks as lists the workers read, so the job graph stays the same size.

The driver writes the pending tasks of an attempt once, as ``plan/part-NNNNN.parquet`` in
the run directory (one part per partition, a task's partition fixed by a hash of its id);
`ReadTasks` is ``Create(range(partitions)) | Reshuffle | ReadTaskLists``: the graph holds
only the partition numbers (at most `MAX_PARTITIONS`), whatever the number of inputs, and
each worker reads its own parts through fsspec. Beam's Dask runner has no translation for
``Read`` transforms (``ReadFromParquet`` would reach it as a no-op), which is why this is a
ParDo reading files rather than a Beam source.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.sample import stable_key

if TYPE_CHECKING:
    from pipelines.core.run_dir import Task

MAX_PARTITIONS = 1024
PLAN_DIR = "plan"
PLAN_SCHEMA = pa.schema([("task", pa.string()), ("input_ref", pa.string())])


def partition_of(task_id: str, partitions: int) -> int:
    """The stable partition (0..partitions-1) a task is read in."""
    return int(stable_key("task", task_id)[:8], 16) % max(1, partitions)


def partition_count(tasks: int) -> int:
    """How many task-list parts to write: one per task up to `MAX_PARTITIONS` (the graph
    holds only this many small integers, whatever the number of inputs)."""
    return max(1, min(tasks, MAX_PARTITIONS))


def write_task_lists(run_url: str, tasks: Sequence[Task], partitions: int) -> None:
    """Write the pending tasks as ``plan/part-NNNNN.parquet`` (one per partition), the
    lists the workers read; the driver writes them once per attempt."""
    from pipelines.core.run_dir import RunDir

    run = RunDir(run_url)
    parts: dict[int, list[dict[str, str]]] = {i: [] for i in range(partitions)}
    for task in tasks:
        rows = parts[partition_of(task.task_id, partitions)]
        rows.extend({"task": task.task_id, "input_ref": json.dumps(ref, sort_keys=True)}
                    for ref in task.input_refs)
    if run.exists(PLAN_DIR):
        run.fs.rm(run.path(PLAN_DIR), recursive=True)
    run.fs.makedirs(run.path(PLAN_DIR), exist_ok=True)
    for index, rows in parts.items():
        with run.fs.open(run.path(PLAN_DIR, part_name(index)), "wb") as handle:
            pq.write_table(pa.Table.from_pylist(rows, schema=PLAN_SCHEMA), handle)


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

    def __init__(self, run_url: str, tasks: Sequence[Task]):
        super().__init__()
        self.run_url = run_url
        self.partitions = partition_count(len(tasks))
        write_task_lists(run_url, tasks, self.partitions)

    def expand(self, pbegin):
        return (pbegin
                | "Partitions" >> beam.Create(list(range(self.partitions)))
                | "SpreadPartitions" >> beam.Reshuffle()
                | "ReadTaskLists" >> beam.ParDo(ReadTaskListFn(self.run_url)))
