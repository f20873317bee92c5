"""`vlforge audit RUN_DIR`: does the run account for every input, and do its shards agree?

The rule: every input item ends as exactly one written sample, drop, error, or expansion
into N child items that are in turn each accounted for. Shards must be readable and hold
exactly the samples the manifest lists, with the same image checksums.

Read-only: an unfinished run (no merged manifest yet) is judged from its done tasks,
merged in memory; nothing is written to the run being checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.accounting import account
from pipelines.core.run_dir import INPUTS, MANIFEST, MANIFEST_SCHEMA, SUCCESS, RunDir, RunDirError
from pipelines.core.sample import sha256_hex
from pipelines.core.shards import ShardReadError

MAX_LISTED = 20
# what the accounting rule and `_verify_shards` read of each row
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
    # Columns, never rows: the rule is computed on Arrow columns (`account_tables`) and
    # the shards are checked one at a time, so auditing a run (the handoff audits every
    # run) holds a few ids per sample, not a Python dict per manifest row and outcome
    if run.exists(MANIFEST):
        columns = run.manifest_columns()
        manifest = None
        outcomes = run.outcome_table(OUTCOME_COLUMNS)
    else:  # an unfinished run: judge whatever tasks are done, merged in memory
        manifest, outcomes, _ = run.merged()
        columns = manifest.schema.names
        outcomes = outcomes.select(OUTCOME_COLUMNS)
    missing_columns = sorted(set(MANIFEST_SCHEMA.names) - set(columns))
    if missing_columns:
        report.shard_problems.append(f"manifest lacks columns {missing_columns}")
        return report
    manifest = (run.manifest(MANIFEST_COLUMNS) if manifest is None
                else manifest.select(MANIFEST_COLUMNS))
    inputs = run.inputs(["input_id"]).column("input_id")  # not the refs
    account_tables(inputs, manifest, outcomes, report)
    if verify_shards:
        _verify_shards(run, manifest, report)
    return report


def account_tables(inputs: pa.ChunkedArray, manifest: pa.Table, outcomes: pa.Table,
                   report: AuditReport) -> AuditReport:
    """Fill `report`'s counts and accounting problems from a run's columns (the rule of
    `pipelines.core.accounting`, which `RunDir.finalize` also checks before it writes
    ``_SUCCESS``), plus the drops and errors by stage and reason."""
    found = account(inputs, manifest, outcomes)
    report.inputs = len(inputs)
    report.items, report.expanded = found.items, found.expanded
    report.written, report.derived = found.written, found.derived
    report.unaccounted, report.duplicated = found.unaccounted, found.duplicated
    report.missing_children = found.missing_children
    kinds = outcomes.column("kind")
    verdicts = outcomes.filter(pc.fill_null(pc.not_equal(kinds, "expanded"), True))
    reasons: dict[str, dict[str, int]] = {"dropped": {}, "error": {}}
    for row in verdicts.group_by(["kind", "stage", "reason"], use_threads=False).aggregate(
            [([], "count_all")]).to_pylist():
        counts = reasons.setdefault(row["kind"], {})
        name = f"{row['stage']}:{row['reason']}"
        counts[name] = counts.get(name, 0) + row["count_all"]
    report.dropped = sum(reasons["dropped"].values())
    report.errors = sum(reasons["error"].values())
    report.dropped_by_reason = dict(sorted(reasons["dropped"].items()))
    report.errors_by_reason = dict(sorted(reasons["error"].items()))
    return report


def _verify_shards(run: RunDir, manifest: pa.Table, report: AuditReport) -> None:
    """Each shard against its manifest rows (key, shard, image_sha256), one shard's
    rows at a time as a dict."""
    table = manifest.select(["shard", "key", "image_sha256"])
    table = table.take(pc.sort_indices(table, [("shard", "ascending")]))  # stable
    sizes = table.group_by("shard", use_threads=False).aggregate([([], "count_all")])
    start = 0
    for row in sizes.to_pylist():  # in shard order: the table is sorted by shard
        rows = table.slice(start, row["count_all"])
        start += row["count_all"]
        shard = row["shard"]
        keys = dict(zip(rows.column("key").to_pylist(), rows.column("image_sha256").to_pylist()))
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
