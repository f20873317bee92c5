"""Relabel an existing run to the current taxonomy version, from its manifest alone.

``vlforge taxonomy migrate RUN_DIR``: no shard is read, no page re-rendered, no OCR re-run.
Each labeled sample's leaf is followed through ``replaced_by`` (every merge, deprecation
and id rename leaves one behind, so any id ever written still resolves) and stamped with
the current version; moves and display renames need no change of id, only of path.

What it rewrites (decision): the **manifest and a labels sidecar, never the shards**.
Shards are large, immutable once ``_SUCCESS`` exists (their bytes and hashes are in the
manifest, trainers may already hold them), and rewriting them would cost as much I/O as
the run itself. So migrate

* updates ``taxonomy_leaf`` / ``taxonomy_version`` in every ``tasks/*.manifest.parquet``
  and rebuilds ``manifest.parquet`` and ``stats.json`` from them (so a later ``retry``,
  which re-merges task manifests, keeps the migrated labels);
* writes ``taxonomy_labels.parquet``: one row per labeled sample with the current leaf,
  its path, version, and ``history`` (JSON list of every earlier label: leaf, version,
  why it changed) — the old label kept in lineage;
* appends an entry to ``run.json["taxonomy_migrations"]``.

The ``meta["taxonomy"]`` inside a shard is therefore the label *as written*; readers that
want the current one call `current_labels(run)` and `apply_current_label(sample, labels)`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any, Mapping

import pyarrow as pa

from pipelines.core.run_dir import RunDir
from pipelines.core.sample import Sample
from taxonomy.tree import UNLABELED, Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

LABELS_FILE = "taxonomy_labels.parquet"
LABELS_SCHEMA = pa.schema([
    ("key", pa.string()), ("leaf", pa.string()), ("path", pa.string()),
    ("version", pa.string()), ("confidence", pa.float64()), ("history", pa.string()),
])


def why_changed(taxonomy: Taxonomy, old_leaf: str) -> str:
    """The migration entries that retired `old_leaf` (for the history and the report)."""
    steps = []
    current = old_leaf
    seen = set()
    while current in taxonomy.nodes and taxonomy.nodes[current].deprecated and current not in seen:
        seen.add(current)
        entry = next((m for m in reversed(taxonomy.migrations) if m.get("id") == current
                      and m.get("op") in ("merge", "deprecate", "rename")), None)
        target = taxonomy.nodes[current].replaced_by
        steps.append(f"{entry['op']} v{entry['version']}: {current} -> {target}" if entry
                     else f"{current} deprecated -> {target}")
        current = target
    return "; ".join(steps)


def migrate_run(run_url: str, taxonomy: Taxonomy | None = None,
                dry_run: bool = False) -> dict[str, Any]:
    """Relabel `run_url` to `taxonomy`'s version; returns a report of what changed."""
    taxonomy = taxonomy or load_taxonomy()
    run = RunDir(run_url).require_complete()
    version = str(taxonomy.version)
    previous = current_labels(run)
    changed: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    from_versions: Counter[str] = Counter()
    label_rows: dict[str, dict[str, Any]] = {}

    def relabel(row: dict[str, Any]) -> None:
        leaf = row["taxonomy_leaf"] or ""
        if not leaf or leaf == UNLABELED:
            return
        from_versions[row["taxonomy_version"] or "?"] += 1
        new_leaf = taxonomy.resolve(leaf)
        old = previous.get(row["key"], {})
        history = json.loads(old.get("history") or "[]")
        if new_leaf is None:  # an id this taxonomy never had: keep it, report it
            unknown[leaf] += 1
            new_leaf, new_version = leaf, row["taxonomy_version"]
        else:
            new_version = version
        if (new_leaf, new_version) != (leaf, row["taxonomy_version"]):
            entry = {"leaf": leaf, "version": row["taxonomy_version"], "migrated": _utc_now()}
            if new_leaf != leaf:
                changed[f"{leaf} -> {new_leaf}"] += 1
                entry["why"] = why_changed(taxonomy, leaf)
            history.append(entry)
        row["taxonomy_leaf"], row["taxonomy_version"] = new_leaf, new_version
        label_rows[row["key"]] = {
            "key": row["key"], "leaf": new_leaf,
            "path": json.dumps(taxonomy.path(new_leaf) if new_leaf in taxonomy.nodes else []),
            "version": new_version, "confidence": row["taxonomy_confidence"],
            "history": json.dumps(history)}

    # Task manifests first, then the merged manifest and stats (so a later `retry`, which
    # re-merges task manifests, keeps the migrated labels); the labels sidecar after.
    stats = run.rewrite_manifests(relabel, dry_run=dry_run)
    report = {"run": run.url, "to_version": taxonomy.version,
              "from_versions": dict(from_versions), "labeled": len(label_rows),
              "relabeled": sum(changed.values()), "changes": dict(changed),
              "unknown_leaves": dict(unknown), "dry_run": dry_run}
    if dry_run:
        return report
    run.write_side_table(sorted(label_rows.values(), key=lambda r: r["key"]), LABELS_SCHEMA,
                         LABELS_FILE)
    migrations = run.info().get("taxonomy_migrations", [])
    run.update_info(taxonomy_migrations=migrations + [
        {"to_version": taxonomy.version, "date": _utc_now(), "taxonomy": taxonomy.source,
         "relabeled": report["relabeled"], "changes": report["changes"]}])
    report["samples_by_taxonomy_leaf"] = stats["samples_by_taxonomy_leaf"]
    log.info("migrated %s to taxonomy v%s: %d of %d labels changed", run.url, version,
             report["relabeled"], report["labeled"])
    return report


def _utc_now() -> str:
    """UTC, ISO 8601 with the Z it claims (local time stamped Z was wrong by the offset)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def current_labels(run: RunDir) -> dict[str, dict[str, Any]]:
    """key -> current label row from the sidecar (empty when the run was never migrated)."""
    return {r["key"]: r for r in run.read_side_table(LABELS_FILE)}


def apply_current_label(sample: Sample, labels: Mapping[str, Mapping[str, Any]]) -> Sample:
    """`sample` with its migrated label (if any) in ``meta["taxonomy"]``, old one in lineage."""
    from pipelines.label.stage import with_label

    row = labels.get(sample.key)
    if row is None:
        return sample
    current = dict(sample.meta.get("taxonomy") or {})
    if (current.get("leaf"), str(current.get("version"))) == (row["leaf"], row["version"]):
        return sample
    reason = (json.loads(row["history"] or "[]") or [{}])[-1].get("why") or "version bump"
    label = {**current, "leaf": row["leaf"], "path": json.loads(row["path"]),
             "version": int(row["version"]) if str(row["version"]).isdigit() else row["version"],
             "reason": f"migrated: {reason}", "method": "migration"}
    return with_label(sample, label)
