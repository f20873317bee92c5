"""`vlforge audit RUN_DIR`: does the run account for every input, and do its shards agree?

The rule: every input item ends as exactly one written sample, drop, error, or expansion
into N child items that are in turn each accounted for. Shards must be readable and hold
exactly the samples the manifest lists, with the same image checksums.

Read-only: an unfinished run (no merged manifest yet) is judged from its done tasks,
merged in memory; nothing is written to the run being checked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.core.run_dir import INPUTS, MANIFEST, MANIFEST_SCHEMA, SUCCESS, RunDir, RunDirError
from pipelines.core.sample import sha256_hex
from pipelines.core.shards import ShardReadError

MAX_LISTED = 20
# what `check_accounting` and `_verify_shards` read of each row
MANIFEST_COLUMNS = ["key", "shard", "item_id", "parent_item", "derived_from", "image_sha256"]
OUTCOME_COLUMNS = ["kind", "stage", "reason", "item_id", "parent_item", "parts"]


@dataclass
class AuditReport:
    """What `audit_run` found; `ok` is False when anything is unaccounted or inconsistent."""

    run: str
    complete: bool = False
    inputs: int = 0
    items: int = 0
    written: int = 0
    derived: int = 0
    dropped: int = 0
    errors: int = 0
    expanded: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    unaccounted: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    missing_children: list[str] = field(default_factory=list)
    shard_problems: list[str] = field(default_factory=list)
    shards_checked: int = 0

    @property
    def accounted(self) -> bool:
        return not (self.unaccounted or self.duplicated or self.missing_children)

    @property
    def ok(self) -> bool:
        return self.complete and self.accounted and not self.shard_problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accounted": self.accounted, "ok": self.ok}


def audit_run(url: str, verify_shards: bool = True) -> AuditReport:
    """Check the accounting rule and (optionally) every shard of the run at `url`."""
    run = RunDir(url)
    if not run.exists(INPUTS):
        raise RunDirError(f"{url}: not a run directory (no {INPUTS})")
    report = AuditReport(run=url, complete=run.exists(SUCCESS))
    # Only the columns the checks read become Python rows: a whole manifest row (content
    # signatures included) is ~2 KB as a dict, these ~0.5 KB (the handoff audits every run)
    if run.exists(MANIFEST):
        columns = run.manifest_columns()
        manifest_table = None
        outcomes = run.outcome_table(OUTCOME_COLUMNS).to_pylist()
    else:  # an unfinished run: judge whatever tasks are done, merged in memory
        manifest_table, outcome_table, _ = run.merged()
        columns = manifest_table.schema.names
        outcomes = outcome_table.select(OUTCOME_COLUMNS).to_pylist()
        del outcome_table
    missing_columns = sorted(set(MANIFEST_SCHEMA.names) - set(columns))
    if missing_columns:
        report.shard_problems.append(f"manifest lacks columns {missing_columns}")
        return report
    manifest = (run.manifest(MANIFEST_COLUMNS) if manifest_table is None
                else manifest_table.select(MANIFEST_COLUMNS)).to_pylist()
    del manifest_table
    inputs = run.inputs().column("input_id").to_pylist()
    check_accounting(inputs, manifest, outcomes, report)
    if verify_shards:
        _verify_shards(run, manifest, report)
    return report


def check_accounting(inputs: list[str], manifest: list[dict[str, Any]],
                     outcomes: list[dict[str, Any]], report: AuditReport) -> AuditReport:
    """Fill `report`'s counts and accounting problems from a run's rows (the audit's rule,
    also checked by `RunDir.finalize` before it writes ``_SUCCESS``)."""
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


def _verify_shards(run: RunDir, manifest: list[dict[str, Any]], report: AuditReport) -> None:
    expected: dict[str, dict[str, str]] = defaultdict(dict)
    for row in manifest:
        expected[row["shard"]][row["key"]] = row["image_sha256"]
    for shard, keys in sorted(expected.items()):
        report.shards_checked += 1
        found: dict[str, str] = {}
        try:
            for sample in run.iter_shard(shard):
                found[sample.key] = sha256_hex(sample.image) if sample.image else ""
        except ShardReadError as exc:
            report.shard_problems.append(f"{shard}: unreadable ({exc.__cause__ or exc})")
            continue
        missing = sorted(set(keys) - set(found))
        extra = sorted(set(found) - set(keys))
        changed = sorted(k for k in set(keys) & set(found) if keys[k] != found[k])
        if missing:
            report.shard_problems.append(f"{shard}: {len(missing)} sample(s) in the manifest "
                                         f"but not in the shard, e.g. {missing[0]}")
        if extra:
            report.shard_problems.append(f"{shard}: {len(extra)} sample(s) not in the "
                                         f"manifest, e.g. {extra[0]}")
        if changed:
            report.shard_problems.append(f"{shard}: {len(changed)} image checksum(s) differ "
                                         f"from the manifest, e.g. {changed[0]}")


def format_report(report: AuditReport) -> str:
    lines = [f"run: {report.run}" + ("" if report.complete else f"   (unfinished: no {SUCCESS})"),
             f"inputs {report.inputs}   items {report.items}   written {report.written} "
             f"(+{report.derived} derived)   dropped {report.dropped}   errors {report.errors}"
             f"   expanded {report.expanded}"]
    for label, counts in (("dropped", report.dropped_by_reason),
                          ("error", report.errors_by_reason)):
        lines += [f"  {label:7s} {n:7d}  {reason}" for reason, n in counts.items()]
    for label, items in (("unaccounted items", report.unaccounted),
                         ("items with more than one outcome", report.duplicated),
                         ("expansions with missing parts", report.missing_children),
                         ("shard problems", report.shard_problems)):
        if items:
            lines.append(f"{label}: {len(items)}")
            lines += [f"  {i}" for i in items[:MAX_LISTED]]
            if len(items) > MAX_LISTED:
                lines.append(f"  ... {len(items) - MAX_LISTED} more")
    verdict = "OK: every input is accounted for" if report.ok else "FAILED"
    lines.append(f"{verdict}; {report.shards_checked} shard(s) verified")
    return "\n".join(lines)
