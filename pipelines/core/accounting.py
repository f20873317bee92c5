"""The accounting rule, computed on a run's columns: every input item ends as exactly one
written sample, drop, error, or expansion into N child items that are in turn each
accounted for.

One home for the rule: `pipelines.core.audit` reports it (``vlforge audit``, the
hand-over to training) and `pipelines.core.completion` checks it before `RunDir.finalize`
writes ``_SUCCESS``. Only ids are read (the manifest's item_id, parent_item,
derived_from; the outcomes' kind, item_id, parent_item, parts) and no row becomes a
Python object, so a run of millions of inputs costs tens of bytes per item; only the
items at fault come out as Python values.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Accounting:
    """What the rule found: counts, and the items at fault (each list sorted)."""

    items: int  # inputs and the children that expansions and parents name
    written: int  # manifest rows that are not derived samples
    derived: int
    expanded: int  # expansion outcomes
    unaccounted: list[str]  # items with no written sample and no outcome
    duplicated: list[str]  # items with more than one
    missing_children: list[str]  # "ITEM: n of m parts accounted"

    @property
    def ok(self) -> bool:
        return not (self.unaccounted or self.duplicated or self.missing_children)


def account(input_ids: pa.Array | pa.ChunkedArray, manifest: pa.Table,
            outcomes: pa.Table) -> Accounting:
    """The rule over a run's input ids, manifest rows and outcome rows (columns as above)."""
    derived = nonempty(manifest.column("derived_from"))
    primary = manifest.filter(pc.invert(derived))
    counts = pc.value_counts(pa.concat_arrays([ids(primary, "item_id"),
                                               ids(outcomes, "item_id")]))
    status_ids = counts.field("values")
    duplicated = pc.filter(status_ids, pc.greater(counts.field("counts"), 1))

    pairs = pa.concat_tables([_children(primary), _children(outcomes)]).group_by(
        ["parent", "child"], use_threads=False).aggregate([])
    if isinstance(input_ids, pa.ChunkedArray):
        input_ids = input_ids.combine_chunks()
    required = pc.unique(pa.concat_arrays([input_ids.cast(pa.string()),
                                           pairs.column("child").combine_chunks()]))
    unaccounted = pc.filter(required, pc.invert(pc.is_in(required, value_set=status_ids)))

    # an item's parts: its last expansion's (rows in order), against its distinct children;
    # an expansion that names no count (null) is short, whatever it has
    expanded = outcomes.filter(pc.fill_null(pc.equal(outcomes.column("kind"), "expanded"),
                                            False))
    parts = expanded.select(["item_id", "parts"]).group_by(
        "item_id", use_threads=False).aggregate([
            ("parts", "last", pc.ScalarAggregateOptions(skip_nulls=False))])
    found = pairs.group_by("parent", use_threads=False).aggregate([("child", "count")])
    joined = parts.join(found, "item_id", "parent", join_type="left outer")
    got = pc.fill_null(joined.column("child_count"), 0)
    short = joined.filter(pc.fill_null(pc.not_equal(
        got, pc.cast(joined.column("parts_last"), got.type)), True))
    return Accounting(
        items=len(required), written=primary.num_rows,
        derived=manifest.num_rows - primary.num_rows, expanded=expanded.num_rows,
        unaccounted=sorted(unaccounted.to_pylist()), duplicated=sorted(duplicated.to_pylist()),
        missing_children=sorted(
            f"{row['item_id']}: {row['child_count'] or 0} of {row['parts_last']} parts accounted"
            for row in short.to_pylist()))


def nonempty(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where a string column holds a non-empty value (null and "" are empty)."""
    return pc.fill_null(pc.not_equal(column, ""), False)


def ids(table: pa.Table, name: str) -> pa.Array:
    """A column of ids as one string array."""
    return table.column(name).combine_chunks().cast(pa.string())


def _children(table: pa.Table) -> pa.Table:
    """(parent, child) for the rows that name a parent item."""
    rows = table.filter(nonempty(table.column("parent_item")))
    return pa.table({"parent": ids(rows, "parent_item"), "child": ids(rows, "item_id")})
