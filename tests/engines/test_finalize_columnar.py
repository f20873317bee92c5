"""Finalizing is columnar: stats and retry superseding agree with the row-by-row rules."""

from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa

from pipelines.core.run_dir import (
    INPUT_SCHEMA,
    MANIFEST_SCHEMA,
    OUTCOME_SCHEMA,
    TRAIN,
    _supersede_retried,
    _task_order,
    compute_stats,
)


def reference_stats(inputs: pa.Table, manifest: pa.Table, outcomes: pa.Table) -> dict:
    """The rule row by row (as `compute_stats` computed it before it was columnar)."""
    rows = manifest.to_pylist()
    primary = [r for r in rows if not r["derived_from"]]
    by_kind: dict[str, Counter] = {"dropped": Counter(), "error": Counter(), "expanded": Counter()}
    for row in outcomes.to_pylist():
        by_kind[row["kind"]][f"{row['stage']}:{row['reason']}"] += 1
    return {
        "inputs": inputs.num_rows, "written": len(primary), "derived": len(rows) - len(primary),
        "dropped": sum(by_kind["dropped"].values()), "errors": sum(by_kind["error"].values()),
        "expanded": sum(by_kind["expanded"].values()),
        "dropped_by_reason": dict(sorted(by_kind["dropped"].items())),
        "errors_by_reason": dict(sorted(by_kind["error"].items())),
        "samples_by_source": dict(sorted(Counter(r["source"] for r in rows).items())),
        "samples_by_split": dict(sorted(Counter(r.get("split") or TRAIN for r in rows).items())),
        "documents_by_split": dict(sorted(Counter(
            split for _, split in {(r["document"], r.get("split") or TRAIN) for r in rows}
        ).items())),
        "samples_by_taxonomy_leaf": dict(sorted(
            Counter(r["taxonomy_leaf"] or "unlabeled" for r in rows).items())),
        "bytes": sum(r["bytes"] for r in rows),
    }


def reference_supersede(outcomes: pa.Table, manifest: pa.Table) -> list[dict]:
    rows = outcomes.to_pylist()
    latest: dict[str, tuple] = {}
    for row in rows + manifest.to_pylist():
        if row.get("derived_from"):
            continue
        order = _task_order(row["task"])
        if row["item_id"] not in latest or order > latest[row["item_id"]]:
            latest[row["item_id"]] = order
    return [r for r in rows if _task_order(r["task"]) >= latest.get(r["item_id"], ())]


def _row(schema: pa.Schema, **fields) -> dict:
    empty = {pa.string(): "", pa.int64(): 0, pa.float64(): 0.0, pa.binary(): b""}
    return {**{f.name: empty[f.type] for f in schema}, **fields}


def test_columnar_stats_and_superseding_agree_with_the_row_rules():
    rng = random.Random(11)
    superseded = 0
    for _ in range(200):
        items = [f"i{k}" for k in range(rng.randint(0, 20))]
        tasks = ["t00000", "t00001", "t00012", "r1-t00000", "r2-t00000", "r10-t00001"]
        manifest = [_row(MANIFEST_SCHEMA, key=f"k{n}", item_id=rng.choice(items),
                         derived_from=rng.choice(["", "", "x"]), task=rng.choice(tasks),
                         source=rng.choice(["pdf", "web"]), document=f"d{rng.randint(0, 4)}",
                         split=rng.choice(["", "train", "validation"]),
                         taxonomy_leaf=rng.choice(["", "a/b", "c"]), bytes=rng.randint(0, 99))
                    for n in range(rng.randint(0, 25) if items else 0)]
        outcomes = [_row(OUTCOME_SCHEMA, kind=rng.choice(["dropped", "error", "expanded"]),
                         stage=rng.choice(["S", "T"]), reason=rng.choice(["r", "q"]),
                         item_id=rng.choice(items), task=rng.choice(tasks))
                    for _ in range(rng.randint(0, 25) if items else 0)]
        inputs = pa.Table.from_pylist([_row(INPUT_SCHEMA, input_id=i) for i in items],
                                      schema=INPUT_SCHEMA)
        m = pa.Table.from_pylist(manifest, schema=MANIFEST_SCHEMA)
        o = pa.Table.from_pylist(outcomes, schema=OUTCOME_SCHEMA)
        stats = compute_stats(inputs, m, o)
        assert stats.pop("finished") and stats == reference_stats(inputs, m, o)
        kept = _supersede_retried(o, m)
        assert kept.schema == OUTCOME_SCHEMA
        assert kept.to_pylist() == reference_supersede(o, m)
        superseded += kept.num_rows < o.num_rows
    assert superseded > 20  # retries did supersede earlier outcomes in many cases
