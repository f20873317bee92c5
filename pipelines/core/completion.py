"""The last check before a run is marked complete: does it account for every input?

`RunDir.finalize` writes ``_SUCCESS`` only when `accounting_problems` finds nothing, on
every runner. An engine that loses records (Beam's Dask runner drops what a DoFn emits from
``finish_bundle``, for one) therefore leaves a run without ``_SUCCESS`` instead of a
silently short one. `ensure_complete` then reopens the tasks that lost items (removes their
done markers, so re-running the same command redoes exactly those) and raises.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.accounting import account

if TYPE_CHECKING:
    from pipelines.core.run_dir import RunDir

log = logging.getLogger(__name__)

MAX_LISTED = 20


class RunIncompleteError(RuntimeError):
    """Every task ran, but some inputs are not accounted for; the run is not complete."""


def accounting_problems(inputs: pa.Table, manifest: pa.Table,
                        outcomes: pa.Table) -> dict[str, Any]:
    """The audit's rule (`pipelines.core.accounting`) over merged tables: {} when every
    item is accounted for once, else ``{"unaccounted": [...], "duplicated": [...],
    "missing_children": [...], "counts": {...}, "tasks": [...]}`` where ``tasks`` are the
    tasks whose items are at fault."""
    found = account(inputs.column("input_id"), manifest, outcomes)
    if found.ok:
        return {}
    faulty = set(found.unaccounted) | set(found.duplicated) | {
        line.split(":", 1)[0] for line in found.missing_children}
    return {"unaccounted": found.unaccounted[:MAX_LISTED],
            "duplicated": found.duplicated[:MAX_LISTED],
            "missing_children": found.missing_children[:MAX_LISTED],
            "counts": {"unaccounted": len(found.unaccounted),
                       "duplicated": len(found.duplicated),
                       "missing_children": len(found.missing_children)},
            "tasks": _tasks_of(faulty, inputs, outcomes, manifest)}


def _tasks_of(items: set[str], inputs: pa.Table, outcomes: pa.Table,
              manifest: pa.Table) -> list[str]:
    """The tasks of `items`: an input's planned task, else the first outcome's or
    manifest row's task."""
    wanted = pa.array(sorted(items), type=pa.string())
    task_of_item: dict[str, str] = {}
    for table, column in ((inputs, "input_id"), (outcomes, "item_id"), (manifest, "item_id")):
        rows = table.filter(pc.is_in(table.column(column), value_set=wanted))
        for row in rows.select([column, "task"]).to_pylist():
            task_of_item.setdefault(row[column], row["task"])
    return sorted({task_of_item[i] for i in items if task_of_item.get(i)})


def ensure_complete(run: RunDir, stats: dict[str, Any]) -> dict[str, Any]:
    """Return `stats` when the run is complete (``_SUCCESS`` written). Otherwise raise
    `RunIncompleteError`: after an engine ran every pending task, a run still incomplete
    lost work, so the command must not exit 0. Tasks whose items are unaccounted are
    reopened first (their done markers removed) so that re-running redoes them."""
    if run.complete:
        return stats
    problems = stats.get("accounting_problems")
    if not problems:
        tasks = stats.get("tasks", {})
        raise RunIncompleteError(
            f"{run.url}: the engine finished but only {tasks.get('done', '?')} of "
            f"{tasks.get('total', '?')} tasks wrote their done marker; no _SUCCESS written. "
            "Re-run the same command to redo the missing tasks.")
    for task_id in problems.get("tasks", []):
        marker = run.path("tasks", f"{task_id}.json")
        if run.fs.exists(marker):
            run.fs.rm(marker)
    counts = problems.get("counts", {})
    raise RunIncompleteError(
        f"{run.url}: every task ran but the run does not account for every input "
        f"({counts.get('unaccounted', 0)} item(s) without an outcome, "
        f"{counts.get('missing_children', 0)} expansion(s) missing parts, "
        f"{counts.get('duplicated', 0)} item(s) with more than one); no _SUCCESS written. "
        f"Reopened task(s) {', '.join(problems.get('tasks', [])[:MAX_LISTED])}: re-run the "
        "same command to redo them. If this repeats, the Beam runner loses records "
        "(see `vlforge audit`).")
