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

if TYPE_CHECKING:
    from pipelines.core.run_dir import RunDir

log = logging.getLogger(__name__)

MAX_LISTED = 20


class RunIncompleteError(RuntimeError):
    """Every task ran, but some inputs are not accounted for; the run is not complete."""


def accounting_problems(inputs: pa.Table, manifest: pa.Table,
                        outcomes: pa.Table) -> dict[str, Any]:
    """The audit's rule over merged tables: {} when every item is accounted for once, else
    ``{"unaccounted": [...], "duplicated": [...], "missing_children": [...], "tasks": [...]}``
    where ``tasks`` are the tasks whose items are at fault."""
    from pipelines.core.audit import AuditReport, check_accounting  # audit imports run_dir

    input_rows = inputs.select(["input_id", "task"]).to_pylist()
    manifest_rows = manifest.to_pylist()
    outcome_rows = outcomes.to_pylist()
    report = check_accounting([r["input_id"] for r in input_rows], manifest_rows,
                              outcome_rows, AuditReport(run=""))
    if report.accounted:
        return {}
    task_of_item = {r["input_id"]: r["task"] for r in input_rows}
    for row in [*outcome_rows, *manifest_rows]:
        task_of_item.setdefault(row["item_id"], row["task"])
    faulty = set(report.unaccounted) | set(report.duplicated) | {
        line.split(":", 1)[0] for line in report.missing_children}
    return {"unaccounted": report.unaccounted[:MAX_LISTED],
            "duplicated": report.duplicated[:MAX_LISTED],
            "missing_children": report.missing_children[:MAX_LISTED],
            "counts": {"unaccounted": len(report.unaccounted),
                       "duplicated": len(report.duplicated),
                       "missing_children": len(report.missing_children)},
            "tasks": sorted({task_of_item[i] for i in faulty if task_of_item.get(i)})}


def ensure_complete(run: "RunDir", stats: dict[str, Any]) -> dict[str, Any]:
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
