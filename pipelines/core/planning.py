"""Planning: which inputs form which task.

`assign_tasks` splits input refs into tasks of `task_size`, in input-id order, except that
refs sharing a ``task_group`` (e.g. PDFs of equal size, the only ones that can be
byte-identical) stay in one task, so a per-task check in a worker sees all of them. The
driver records the split once in the run's ``inputs.parquet``; the workers read the pending
tasks from task lists (`pipelines.core.task_lists`).
"""

from __future__ import annotations

from typing import Any, Sequence


def assign_tasks(refs: Sequence[dict[str, Any]], task_size: int) -> list[tuple[str, dict]]:
    """``(task_id, ref)`` for every ref: tasks of `task_size` in input-id order, groups kept
    whole (a group larger than `task_size` makes one larger task)."""
    ordered = sorted(refs, key=lambda ref: ref["input_id"])
    groups: dict[str, list[dict[str, Any]]] = {}
    units: list[list[dict[str, Any]]] = []
    for ref in ordered:
        group = ref.get("task_group")
        if not group:
            units.append([ref])
        elif group in groups:
            groups[group].append(ref)
        else:
            groups[group] = [ref]
            units.append(groups[group])
    assigned: list[tuple[str, dict]] = []
    index, filled = 0, 0
    for unit in units:
        # within a group, the first by locator (path order) is the one a dedup keeps
        unit = sorted(unit, key=lambda ref: (ref.get("locator", ""), ref["input_id"]))
        if filled and filled + len(unit) > task_size:
            index, filled = index + 1, 0
        assigned.extend((f"t{index:05d}", ref) for ref in unit)
        filled += len(unit)
    return assigned
