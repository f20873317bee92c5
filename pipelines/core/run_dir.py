"""The run directory: the handoff contract between a pipeline run and its readers.

    RUN/
      run.json                  pipeline name, config, tool versions, attempts
      inputs.parquet            one row per input: input_id, task, input_ref
      <name>-<task>-000000.tar  shards (temporary name until complete)
      tasks/<task>.json         a task's done marker, written after its two files below
      tasks/<task>.manifest.parquet, tasks/<task>.outcomes.parquet
      manifest.parquet          one row per written sample (merged from tasks)
      outcomes.parquet          drops, errors, expansions (merged from tasks)
      stats.json                counts per stage, reason, source, taxonomy leaf
      _SUCCESS                  written last; readers only read runs that have it

A task is the resumable unit: a fixed group of inputs. Re-running a killed run skips the
tasks whose done marker exists and redoes the rest under the same deterministic names.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.outcome import Outcome
from pipelines.core.sample import Sample
from pipelines.core.shards import TMP_MARK, iter_shard_samples

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"

MANIFEST_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("source", pa.string()),
    ("locator", pa.string()), ("input_id", pa.string()), ("item_id", pa.string()),
    ("parent_item", pa.string()), ("derived_from", pa.string()), ("task", pa.string()),
    ("image_sha256", pa.string()), ("image_bytes", pa.int64()), ("num_images", pa.int64()),
    ("text_chars", pa.int64()), ("bytes", pa.int64()), ("taxonomy_leaf", pa.string()),
    ("taxonomy_version", pa.string()), ("taxonomy_confidence", pa.float64()),
])
OUTCOME_SCHEMA = pa.schema([
    ("kind", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
    ("message", pa.string()), ("input_id", pa.string()), ("item_id", pa.string()),
    ("parent_item", pa.string()), ("key", pa.string()), ("input_ref", pa.string()), ("parts", pa.int64()),
    ("task", pa.string()),
])
INPUT_SCHEMA = pa.schema([("input_id", pa.string()), ("task", pa.string()),
                          ("input_ref", pa.string())])


class RunDirError(RuntimeError):
    """A run directory that is missing, unfinished or inconsistent."""


@dataclass
class Task:
    """A resumable group of inputs; `attempt` 0 is the first run, retries count up."""

    task_id: str
    input_refs: list[dict[str, Any]]


class RunDir:
    """Reads and writes one run directory (a local path or any fsspec URL)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)

    # -- paths -------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    @property
    def complete(self) -> bool:
        return self.exists(SUCCESS)

    def require_complete(self) -> "RunDir":
        if not self.exists():
            raise RunDirError(f"{self.url}: no such run directory")
        if not self.complete:
            raise RunDirError(f"{self.url}: run is not finished (no {SUCCESS}); "
                              "re-run its pipeline with the same --out to complete it")
        return self

    # -- small files -------------------------------------------------------------------
    def read_json(self, *parts: str) -> Any:
        with self.fs.open(self.path(*parts), "r") as handle:
            return json.load(handle)

    def write_json(self, value: Any, *parts: str) -> None:
        self.fs.makedirs(self.path(*parts[:-1]) if len(parts) > 1 else self.root, exist_ok=True)
        tmp = self.path(*parts[:-1], f"{TMP_MARK}{parts[-1]}")
        with self.fs.open(tmp, "w") as handle:
            json.dump(value, handle, indent=2, sort_keys=True, default=str)
        self.fs.mv(tmp, self.path(*parts))

    def write_table(self, rows: list[dict[str, Any]], schema: pa.Schema, *parts: str) -> None:
        self.fs.makedirs(self.path(*parts[:-1]) if len(parts) > 1 else self.root, exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=schema)
        tmp = self.path(*parts[:-1], f"{TMP_MARK}{parts[-1]}")
        with self.fs.open(tmp, "wb") as handle:
            pq.write_table(table, handle)
        self.fs.mv(tmp, self.path(*parts))

    def read_table(self, *parts: str, schema: pa.Schema | None = None) -> pa.Table:
        if not self.exists(*parts):
            if schema is None:
                raise RunDirError(f"{self.url}: missing {'/'.join(parts)}")
            return schema.empty_table()
        # Read the bytes, then parse from memory: handing pyarrow a Python file object lets
        # its background scan threads outlive the call, and they can abort the interpreter
        # at exit ("terminate called without an active exception") when they need the GIL.
        with self.fs.open(self.path(*parts), "rb") as handle:
            data = handle.read()
        return pq.ParquetFile(pa.BufferReader(data)).read()

    # -- planning and resuming ---------------------------------------------------------
    def plan(self, pipeline: str, input_refs: list[dict[str, Any]], config: dict[str, Any],
             task_size: int, overwrite: bool = False) -> list[Task]:
        """Record the inputs and their task split; return the tasks not yet done.

        A first run writes run.json and inputs.parquet. A re-run with the same inputs
        returns only unfinished tasks; with different inputs it refuses (or, with
        `overwrite`, starts the directory afresh).
        """
        ids = [ref["input_id"] for ref in input_refs]
        if len(set(ids)) != len(ids):
            raise RunDirError("duplicate input ids in the input list")
        if self.exists("run.json"):
            previous = self.read_json("run.json")
            old_ids = sorted(self.read_table("inputs.parquet").column("input_id").to_pylist())
            if overwrite:
                self.fs.rm(self.root, recursive=True)
            elif previous.get("pipeline") != pipeline or old_ids != sorted(ids):
                raise RunDirError(
                    f"{self.url} already holds a different run ({previous.get('pipeline')}, "
                    f"{len(old_ids)} inputs); use a new --out or pass --overwrite")
        if not self.exists("run.json"):
            ordered = sorted(input_refs, key=lambda ref: ref["input_id"])
            rows = []
            for index, ref in enumerate(ordered):
                task_id = f"t{index // task_size:05d}"
                rows.append({"input_id": ref["input_id"], "task": task_id,
                             "input_ref": json.dumps(ref, sort_keys=True)})
            self.fs.makedirs(self.root, exist_ok=True)
            self.write_table(rows, INPUT_SCHEMA, "inputs.parquet")
            self.write_json({"pipeline": pipeline, "config": config, "task_size": task_size,
                             "created": _now(), "attempts": [], "tools": tool_versions()},
                            "run.json")
        tasks: dict[str, list[dict[str, Any]]] = {}
        for row in self.read_table("inputs.parquet").to_pylist():
            tasks.setdefault(row["task"], []).append(json.loads(row["input_ref"]))
        done = self.done_tasks()
        pending = [Task(task_id, refs) for task_id, refs in sorted(tasks.items())
                   if task_id not in done]
        self.clear_partial(pending, pipeline)
        return pending

    def done_tasks(self) -> set[str]:
        if not self.exists("tasks"):
            return set()
        names = self.fs.ls(self.path("tasks"), detail=False)
        return {n.rsplit("/", 1)[-1][:-5] for n in names
                if n.endswith(".json") and TMP_MARK not in n}

    def clear_partial(self, pending: Iterable[Task], pipeline: str) -> None:
        """Remove temporary files and any shards of tasks about to be (re)done."""
        pending_ids = {task.task_id for task in pending}
        for name in self.fs.ls(self.root, detail=False):
            base = name.rsplit("/", 1)[-1]
            task = _task_of_shard(base, pipeline)
            if base.startswith(TMP_MARK) or (task is not None and task in pending_ids):
                self.fs.rm(name)
        if self.exists(SUCCESS) and pending_ids:
            self.fs.rm(self.path(SUCCESS))

    def record_attempt(self, kind: str, tasks: list[Task]) -> None:
        info = self.read_json("run.json")
        info.setdefault("attempts", []).append(
            {"kind": kind, "started": _now(), "tasks": [t.task_id for t in tasks]})
        self.write_json(info, "run.json")

    # -- per-task results (written by the Beam sink) -----------------------------------
    def write_task(self, task_id: str, shards: list[str], manifest: list[dict[str, Any]],
                   outcomes: list[Outcome]) -> None:
        """Write one task's manifest and outcomes, then its done marker (last)."""
        self.write_table(manifest, MANIFEST_SCHEMA, "tasks", f"{task_id}.manifest.parquet")
        self.write_table([o.to_row() for o in outcomes], OUTCOME_SCHEMA,
                         "tasks", f"{task_id}.outcomes.parquet")
        self.write_json({"task": task_id, "shards": shards, "samples": len(manifest),
                         "outcomes": len(outcomes), "finished": _now()},
                        "tasks", f"{task_id}.json")

    # -- finalizing --------------------------------------------------------------------
    def finalize(self) -> dict[str, Any]:
        """Merge task results into manifest/outcomes/stats and write `_SUCCESS` last.

        Later attempts (retries) supersede earlier error outcomes for the same item.
        Returns the stats.
        """
        done = sorted(self.done_tasks(), key=_task_order)
        self._remove_orphan_shards(done)
        manifests, outcome_tables = [], []
        for task_id in done:
            manifests.append(self.read_table("tasks", f"{task_id}.manifest.parquet"))
            outcome_tables.append(self.read_table("tasks", f"{task_id}.outcomes.parquet"))
        manifest = pa.concat_tables(manifests or [MANIFEST_SCHEMA.empty_table()])
        outcomes = pa.concat_tables(outcome_tables or [OUTCOME_SCHEMA.empty_table()])
        outcomes = _supersede_retried(outcomes, manifest)
        self.write_table(manifest.to_pylist(), MANIFEST_SCHEMA, "manifest.parquet")
        self.write_table(outcomes.to_pylist(), OUTCOME_SCHEMA, "outcomes.parquet")
        stats = compute_stats(self.read_table("inputs.parquet"), manifest, outcomes)
        stats["tasks"] = {"done": len(done), "total": len(set(
            self.read_table("inputs.parquet").column("task").to_pylist()))}
        self.write_json(stats, "stats.json")
        if stats["tasks"]["done"] == stats["tasks"]["total"]:
            with self.fs.open(self.path(SUCCESS), "w") as handle:
                handle.write(_now() + "\n")
        return stats

    def _remove_orphan_shards(self, done: list[str]) -> None:
        """Delete tars no done task lists (left by a killed attempt) so globs see none."""
        listed = set()
        for task_id in done:
            listed.update(self.read_json("tasks", f"{task_id}.json").get("shards", []))
        for name in self.fs.ls(self.root, detail=False):
            base = name.rsplit("/", 1)[-1]
            if base.startswith(TMP_MARK) or (base.endswith(".tar") and base not in listed):
                log.info("removing leftover %s", base)
                self.fs.rm(name)

    # -- reading -----------------------------------------------------------------------
    def manifest(self) -> pa.Table:
        return self.read_table("manifest.parquet")

    def outcomes(self) -> list[Outcome]:
        return [Outcome.from_row(r) for r in self.read_table("outcomes.parquet").to_pylist()]

    def shard_urls(self) -> list[str]:
        shards = sorted(set(self.manifest().column("shard").to_pylist()))
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        prefix = "" if protocol in ("file", "local") else f"{protocol}://"
        return [prefix + self.path(name) for name in shards]

    def iter_samples(self) -> Iterator[Sample]:
        """Stream every sample of the run, shard by shard."""
        for url in self.shard_urls():
            yield from iter_shard_samples(url)


def compute_stats(inputs: pa.Table, manifest: pa.Table, outcomes: pa.Table) -> dict[str, Any]:
    """Counts per stage, per reason, per source and per taxonomy leaf."""
    rows = manifest.to_pylist()
    primary = [r for r in rows if not r["derived_from"]]
    by_kind: dict[str, Counter] = {"dropped": Counter(), "error": Counter(), "expanded": Counter()}
    for row in outcomes.to_pylist():
        by_kind[row["kind"]][f"{row['stage']}:{row['reason']}"] += 1
    return {
        "inputs": inputs.num_rows,
        "written": len(primary),
        "derived": len(rows) - len(primary),
        "dropped": sum(by_kind["dropped"].values()),
        "errors": sum(by_kind["error"].values()),
        "expanded": sum(by_kind["expanded"].values()),
        "dropped_by_reason": dict(sorted(by_kind["dropped"].items())),
        "errors_by_reason": dict(sorted(by_kind["error"].items())),
        "samples_by_source": dict(sorted(Counter(r["source"] for r in rows).items())),
        "samples_by_taxonomy_leaf": dict(sorted(
            Counter(r["taxonomy_leaf"] or "unlabeled" for r in rows).items())),
        "bytes": sum(r["bytes"] for r in rows),
        "finished": _now(),
    }


def _supersede_retried(outcomes: pa.Table, manifest: pa.Table) -> pa.Table:
    """Keep, per item, only the outcomes of its latest attempt (retries come later)."""
    rows = outcomes.to_pylist()
    latest: dict[str, tuple] = {}
    for row in rows + manifest.to_pylist():
        if row.get("derived_from"):
            continue
        order = _task_order(row["task"])
        if row["item_id"] not in latest or order > latest[row["item_id"]]:
            latest[row["item_id"]] = order
    kept = [r for r in rows if _task_order(r["task"]) >= latest.get(r["item_id"], ())]
    return pa.Table.from_pylist(kept, schema=OUTCOME_SCHEMA)


def _task_order(task_id: str) -> tuple:
    """Retry tasks are named ``r<attempt>-t<index>`` and sort after first-run tasks."""
    if task_id.startswith("r") and "-" in task_id:
        attempt, _, rest = task_id.partition("-")
        return (int(attempt[1:]), rest)
    return (0, task_id)


def _task_of_shard(name: str, pipeline: str) -> str | None:
    if not (name.startswith(pipeline + "-") and name.endswith(".tar")):
        return None
    return name[len(pipeline) + 1:].rsplit("-", 1)[0]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def tool_versions() -> dict[str, str]:
    """Versions of the libraries that shape the data (recorded in run.json)."""
    from importlib import metadata

    versions = {}
    for dist in ("vlforge", "apache-beam", "pymupdf", "playwright", "rapidocr", "transformers",
                 "torch", "webdataset"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions
