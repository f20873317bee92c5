"""The record that closes a task's stream, so no stage depends on bundle boundaries.

`ExpandTaskFn` yields a task's seeds and then one `TaskEnd`. Every stage passes it on like
an Outcome (it is one, to the stage base class); stages that hold records back (batched
labeling, pages in flight) release them before it, because `task_of` gives it a task of its
own; the sink (`WriteRun`) closes the task's shards and writes its done marker when it
arrives. Nothing is left for ``finish_bundle`` to emit, which matters on runners that do not
collect what ``finish_bundle`` emits (Beam's Dask runner gathers a partition's outputs
before calling it) or that split bundles differently from the DirectRunner.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.outcome import Outcome

KIND = "task_end"


@dataclass(frozen=True)
class TaskEnd(Outcome):
    """End of task `task`: everything of that task has passed before this record."""

    def __post_init__(self) -> None:  # not an accounting outcome: skip the kind check
        pass

    @classmethod
    def of(cls, task_id: str) -> "TaskEnd":
        return cls(kind=KIND, stage="ExpandTasks", reason=KIND, task=task_id)


def is_task_end(record: object) -> bool:
    """True for the end-of-task marker (stages pass it on; the sink closes the task)."""
    return isinstance(record, TaskEnd)
