"""The Beam graph every vlforge pipeline runs: ``ReadTasks | ExpandTasks | stage... |
WriteRun`` (`build_pipeline`), and the DoFn that turns a task into its seed Samples.

Kept apart from `pipelines.core.runner` so that planning a run, checking its settings and
``--help`` do not import Apache Beam: the runner imports this module when it runs tasks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

import apache_beam as beam

from pipelines.core.run_dir import Task
from pipelines.core.runner import seed_sample
from pipelines.core.sample import Sample
from pipelines.core.stage import StageFn
from pipelines.core.task_end import TaskEnd
from pipelines.core.task_lists import ReadTasks
from pipelines.core.write_run import WriteRun


class ExpandTaskFn(beam.DoFn):
    """One task in, one seed Sample per input out, then the task's end marker (all within
    one `process` call; see `pipelines.core.task_end`)."""

    def __init__(self, pipeline: str):
        self.pipeline = pipeline

    def process(self, task: tuple[str, list[dict[str, Any]]]) -> Iterator[Sample | TaskEnd]:
        task_id, refs = task
        for ref in refs:
            yield seed_sample(self.pipeline, ref, task_id)
        yield TaskEnd.of(task_id)


def build_pipeline(p: beam.Pipeline, pipeline: str, tasks: Collection[Task],
                   stages: Sequence[StageFn], run_url: str, **bounds: Any) -> None:
    """Add the whole chain to `p` (kept fused from ExpandTask to WriteRun).

    ``ReadTasks`` already spreads its partitions over the workers; a second shuffle
    (``SpreadTasks``) spreads the tasks only when a partition holds several. With one task
    per partition, tasks reach the workers in planned order: runners that split a bundle
    statically (the FnApiRunner behind the DirectRunner and the local job service deals
    elements round-robin) then give each worker an even share, where random shuffle keys
    left one worker up to 1.5x the other's work on the shared corpus (the two 2-s
    documents on one worker)."""
    read = ReadTasks(run_url, tasks)  # task lists in the run dir: a fixed-size graph
    records = p | "ReadTasks" >> read
    if len(tasks) > read.partitions:
        records = records | "SpreadTasks" >> beam.Reshuffle()
    records = records | "ExpandTasks" >> beam.ParDo(ExpandTaskFn(pipeline))
    for stage in stages:
        records = records | stage.stage >> beam.ParDo(stage)
    _ = records | "WriteRun" >> WriteRun(run_url, pipeline, **bounds)
