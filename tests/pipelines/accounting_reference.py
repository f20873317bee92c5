"""The accounting rule row by row: the reference the columnar rule
(`pipelines.core.accounting`, used by the audit and by finalize's completion check) is
held equal to on random runs. Plain Python loops over dicts, easy to read and check."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from pipelines.core.audit import AuditReport


def check_accounting(inputs: list[str], manifest: list[dict[str, Any]],
                     outcomes: list[dict[str, Any]], report: AuditReport) -> AuditReport:
    """Fill `report`'s counts and accounting problems from a run's rows."""
    report.inputs = len(inputs)
    statuses: dict[str, list[str]] = defaultdict(list)
    children: dict[str, set[str]] = defaultdict(set)
    parts: dict[str, int] = {}
    for row in manifest:
        if row["derived_from"]:
            report.derived += 1
            continue
        report.written += 1
        statuses[row["item_id"]].append("written")
        if row["parent_item"]:
            children[row["parent_item"]].add(row["item_id"])
    reasons: dict[str, Counter] = {"dropped": Counter(), "error": Counter()}
    for row in outcomes:
        statuses[row["item_id"]].append(row["kind"])
        if row["parent_item"]:
            children[row["parent_item"]].add(row["item_id"])
        if row["kind"] == "expanded":
            report.expanded += 1
            parts[row["item_id"]] = row["parts"]
        else:
            reasons[row["kind"]][f"{row['stage']}:{row['reason']}"] += 1
    report.dropped = sum(reasons["dropped"].values())
    report.errors = sum(reasons["error"].values())
    report.dropped_by_reason = dict(sorted(reasons["dropped"].items()))
    report.errors_by_reason = dict(sorted(reasons["error"].items()))

    required = set(inputs) | {c for kids in children.values() for c in kids}
    report.items = len(required)
    report.unaccounted = sorted(i for i in required if not statuses.get(i))
    report.duplicated = sorted(i for i, s in statuses.items() if len(s) > 1)
    report.missing_children = sorted(
        f"{item}: {len(children.get(item, ()))} of {n} parts accounted"
        for item, n in parts.items() if len(children.get(item, ())) != n)
    return report
