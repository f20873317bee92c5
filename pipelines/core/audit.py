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

import pyarrow as pa
import pyarrow.compute as pc

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
    """`check_accounting` computed on Arrow columns (input ids; the manifest's item_id,
    parent_item, derived_from; the outcomes' kind, stage, reason, item_id, parent_item,
    parts): the same report, with no row made a Python object. Only the items at fault,
    the reasons and the expansions that miss parts come out as Python values."""
    report.inputs = len(inputs)
    derived = _nonempty(manifest.column("derived_from"))
    report.derived = pc.sum(derived).as_py() or 0
    report.written = manifest.num_rows - report.derived
    primary = manifest.filter(pc.invert(derived))
    statuses = pc.value_counts(pa.concat_arrays([_ids(primary, "item_id"),
                                                 _ids(outcomes, "item_id")]))
    status_ids = statuses.field("values")
    report.duplicated = sorted(pc.filter(status_ids, pc.greater(
        statuses.field("counts"), 1)).to_pylist())

    kinds = outcomes.column("kind")
    expanded = outcomes.filter(pc.fill_null(pc.equal(kinds, "expanded"), False))
    report.expanded = expanded.num_rows
    reasons: dict[str, dict[str, int]] = {"dropped": {}, "error": {}}
    verdicts = outcomes.filter(pc.fill_null(pc.not_equal(kinds, "expanded"), True))
    for row in verdicts.group_by(["kind", "stage", "reason"], use_threads=False).aggregate(
            [([], "count_all")]).to_pylist():
        counts = reasons.setdefault(row["kind"], {})
        name = f"{row['stage']}:{row['reason']}"
        counts[name] = counts.get(name, 0) + row["count_all"]
    report.dropped = sum(reasons["dropped"].values())
    report.errors = sum(reasons["error"].values())
    report.dropped_by_reason = dict(sorted(reasons["dropped"].items()))
    report.errors_by_reason = dict(sorted(reasons["error"].items()))

    pairs = pa.concat_tables([_children(primary), _children(outcomes)]).group_by(
        ["parent", "child"], use_threads=False).aggregate([])
    required = pc.unique(pa.concat_arrays([
        inputs.combine_chunks().cast(pa.string()) if isinstance(inputs, pa.ChunkedArray)
        else inputs.cast(pa.string()), pairs.column("child").combine_chunks()]))
    report.items = len(required)
    report.unaccounted = sorted(pc.filter(required, pc.invert(
        pc.is_in(required, value_set=status_ids))).to_pylist())

    # an item's parts: its last expansion's (rows in order), against its distinct children
    parts = expanded.select(["item_id", "parts"]).group_by(
        "item_id", use_threads=False).aggregate([
            ("parts", "last", pc.ScalarAggregateOptions(skip_nulls=False))])
    found = pairs.group_by("parent", use_threads=False).aggregate([("child", "count")])
    joined = parts.join(found, "item_id", "parent", join_type="left outer")
    got = pc.fill_null(joined.column("child_count"), 0)
    short = joined.filter(pc.fill_null(pc.not_equal(
        got, pc.cast(joined.column("parts_last"), got.type)), True))
    report.missing_children = sorted(
        f"{row['item_id']}: {row['child_count'] or 0} of {row['parts_last']} parts accounted"
        for row in short.to_pylist())
    return report


def _nonempty(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where a string column holds a non-empty value (null and "" are empty)."""
    return pc.fill_null(pc.not_equal(column, ""), False)


def _ids(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks().cast(pa.string())


def _children(table: pa.Table) -> pa.Table:
    """(parent, child) for the rows that name a parent item."""
    rows = table.filter(_nonempty(table.column("parent_item")))
    return pa.table({"parent": _ids(rows, "parent_item"), "child": _ids(rows, "item_id")})


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
