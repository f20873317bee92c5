"""The run directory: the handoff contract between a pipeline run and its readers.

    RUN/
      run.json                  pipeline name, config, tool versions, attempts
      inputs.parquet            one row per input: input_id, task, input_ref
      inputs/part-00001.parquet inputs added during the run (crawl rounds), one part each
      <name>-<task>-000000.tar  shards (temporary name until complete)
      tasks/<task>.json         a task's done marker, written after its two files below
      tasks/<task>.manifest.parquet, tasks/<task>.outcomes.parquet
      manifest.parquet          one row per written sample (merged from tasks)
      outcomes.parquet          drops, errors, expansions (merged from tasks)
      stats.json                counts per stage, reason, source, taxonomy leaf
      _SUCCESS                  written last; readers only read runs that have it

A task is the resumable unit: a fixed group of inputs. Re-running a killed run skips the
tasks whose done marker exists and redoes the rest under the same deterministic names.

`RunDir` owns this layout: it is the one place that names shards and builds their URLs,
lists and reads samples (all of them, or one by key), adds inputs, and rewrites manifests.
Code outside `pipelines.core` never opens a tar or a parquet file of a run; it calls the
methods here. Every path goes through ``self.fs`` so a run can live on any fsspec URL.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.core.outcome import Outcome
from pipelines.core.planning import DuplicateInputError, IdFingerprint, SpilledRefs
from pipelines.core.sample import Sample
from pipelines.core.shards import (  # noqa: F401 (SampleNotFound: re-exported)
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_COUNT,
    TMP_MARK,
    SampleNotFound,
    ShardIndex,
    ShardWriter,
    group_to_sample,
    read_shard_groups,
)
from pipelines.core.split import (
    DEFAULT_VALIDATION_FRACTION,
    SPLITS,
    TRAIN,
    VALIDATION,
    assign_splits,
)

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
RUN_JSON = "run.json"
INPUTS = "inputs.parquet"
# Inputs added during a run (`RunDir.add_inputs`: a crawl's rounds) go into new parts here,
# never by rewriting inputs.parquet; readers read inputs.parquet, then the parts in order.
INPUT_PARTS = "inputs"
MANIFEST = "manifest.parquet"
OUTCOMES = "outcomes.parquet"
STATS = "stats.json"
TASKS = "tasks"
# Files of the contract itself: side files (labels, reports) may not take these names.
RESERVED = {SUCCESS, RUN_JSON, INPUTS, INPUT_PARTS, MANIFEST, OUTCOMES, STATS, TASKS}
# Parquet row groups of this many rows: a worker can read one slice of a big manifest
# (`iter_manifest_rows(start=, stop=)`) without decoding the rest of the file.
ROW_GROUP_ROWS = 65_536
DEDUP_REMOVED = "dedup_removed.parquet"  # side table: samples readers skip (vlforge dedup)
OPEN_SHARDS = 4  # shard files a RunDir keeps open for `read_sample` (LRU)
KEPT_INDEXES = 64  # shard header indexes it keeps (offsets only; reopening is cheap)
LISTED_TASKS = 1000  # task ids an attempt lists in run.json (the count is always there)

MANIFEST_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("source", pa.string()),
    ("locator", pa.string()), ("input_id", pa.string()), ("item_id", pa.string()),
    ("parent_item", pa.string()), ("derived_from", pa.string()), ("task", pa.string()),
    ("image_sha256", pa.string()), ("image_bytes", pa.int64()), ("num_images", pa.int64()),
    ("text_chars", pa.int64()), ("bytes", pa.int64()), ("taxonomy_leaf", pa.string()),
    ("taxonomy_version", pa.string()), ("taxonomy_confidence", pa.float64()),
    # the source document and its side of the held-out split (pipelines.core.split)
    ("document", pa.string()), ("split", pa.string()),
    # content signatures (pipelines.core.signatures): de-duplication reads only these
    ("text_hash", pa.string()), ("text_minhash", pa.binary()), ("image_phash", pa.string()),
])
SIGNATURE_COLUMNS = ("text_hash", "text_minhash", "image_phash")
# What finalizing reads of each manifest row besides copying it: the stats, the split, the
# retries' superseding and the accounting check (input_id and key: an old task's document)
MERGE_COLUMNS = ("key", "input_id", "item_id", "parent_item", "derived_from", "task",
                 "source", "taxonomy_leaf", "bytes", "document", "split")
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
    """A resumable group of inputs: ``t<index>`` on a first run, ``r<attempt>-t<index>``
    for the tasks of the `attempt`-th retry."""

    task_id: str
    input_refs: list[dict[str, Any]]


class RunDir:
    """Reads and writes one run directory (a local path or any fsspec URL)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self._indexes: OrderedDict[str, ShardIndex] = OrderedDict()

    # -- paths -------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """The filesystem path (no protocol) of a file in the run, for ``self.fs``."""
        return "/".join([self.root, *parts])

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    @property
    def complete(self) -> bool:
        """All tasks done and merged: ``_SUCCESS`` exists (readers only read such runs)."""
        return self.exists(SUCCESS)

    @property
    def finalized(self) -> bool:
        """`finalize` has merged a manifest (true also for a run with unfinished tasks)."""
        return self.exists(MANIFEST)

    def require_complete(self) -> RunDir:
        if not self.exists():
            raise RunDirError(f"{self.url}: no such run directory")
        if not self.complete:
            raise RunDirError(f"{self.url}: run is not finished (no {SUCCESS}); "
                              "re-run its pipeline with the same --out to complete it")
        return self

    def remove(self) -> None:
        """Delete the whole run directory (``--overwrite``)."""
        if self.exists():
            self.fs.rm(self.root, recursive=True)

    # -- small files -------------------------------------------------------------------
    def read_json(self, *parts: str) -> Any:
        with self.fs.open(self.path(*parts), "r") as handle:
            return json.load(handle)

    def write_json(self, value: Any, *parts: str) -> None:
        """Write JSON atomically (temporary name, then a rename)."""
        self._write_atomic(json.dumps(value, indent=2, sort_keys=True, default=str).encode(),
                           *parts)

    def write_text(self, text: str, name: str) -> None:
        """A side file of the run (e.g. ``pdf_links.txt``), written atomically."""
        self._write_atomic(text.encode("utf-8"), _side_name(name))

    def write_bytes(self, data: bytes, name: str) -> None:
        """A binary side file of the run (e.g. a report plot), written atomically."""
        self._write_atomic(data, _side_name(name))

    def write_side_table(self, rows: list[dict[str, Any]], schema: pa.Schema, name: str) -> None:
        """A parquet side table next to the manifest (never one of the contract's files)."""
        self._write_table(rows, schema, _side_name(name))

    def write_side_table_rows(self, rows: Iterable[dict[str, Any]], schema: pa.Schema,
                              name: str) -> None:
        """`write_side_table` for any number of rows, streamed: written a row group of
        `ROW_GROUP_ROWS` rows at a time, never held whole."""
        def batches() -> Iterator[pa.RecordBatch]:
            chunk: list[dict[str, Any]] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) == ROW_GROUP_ROWS:
                    yield pa.RecordBatch.from_pylist(chunk, schema=schema)
                    chunk = []
            if chunk:
                yield pa.RecordBatch.from_pylist(chunk, schema=schema)

        self._write_batches(batches(), schema, _side_name(name))

    def read_side_table(self, name: str) -> list[dict[str, Any]]:
        """Rows of a side table written by `write_side_table` (empty when absent)."""
        name = _side_name(name)
        return self._read_table(name).to_pylist() if self.exists(name) else []

    def side_files(self, pattern: str = "*") -> list[str]:
        """Names of the side files at the run's top level matching the glob `pattern`
        (e.g. ``"*mixture*.json"``), sorted; the contract's own files are never listed."""
        found = self.fs.glob(self.path(pattern))
        names = sorted(p.rsplit("/", 1)[-1] for p in found)
        return [n for n in names if n not in RESERVED and not n.startswith(TMP_MARK)
                and not n.endswith(".tar")]

    def info(self) -> dict[str, Any]:
        """run.json: pipeline name, config, task size, tool versions, attempts."""
        return self.read_json(RUN_JSON)

    def update_info(self, **fields: Any) -> None:
        """Merge top-level fields into run.json (e.g. a history list a tool appends to)."""
        self.write_json({**self.info(), **fields}, RUN_JSON)

    @property
    def pipeline(self) -> str:
        return self.info().get("pipeline", "")

    def stats(self) -> dict[str, Any]:
        """stats.json (empty before the first `finalize`)."""
        return self.read_json(STATS) if self.exists(STATS) else {}

    def _write_atomic(self, data: bytes, *parts: str) -> None:
        self.fs.makedirs(self.path(*parts[:-1]) if len(parts) > 1 else self.root, exist_ok=True)
        tmp = self.path(*parts[:-1], f"{TMP_MARK}{parts[-1]}")
        with self.fs.open(tmp, "wb") as handle:
            handle.write(data)
        self.fs.mv(tmp, self.path(*parts))

    def _write_table(self, rows: list[dict[str, Any]] | pa.Table, schema: pa.Schema,
                     *parts: str) -> None:
        """Rows (or an Arrow table, written without becoming Python rows) as parquet."""
        self.fs.makedirs(self.path(*parts[:-1]) if len(parts) > 1 else self.root, exist_ok=True)
        table = rows.select(schema.names).cast(schema) if isinstance(rows, pa.Table) else \
            pa.Table.from_pylist(rows, schema=schema)
        tmp = self.path(*parts[:-1], f"{TMP_MARK}{parts[-1]}")
        with self.fs.open(tmp, "wb") as handle:
            pq.write_table(table, handle, row_group_size=ROW_GROUP_ROWS)
        self.fs.mv(tmp, self.path(*parts))

    def _write_batches(self, batches: Iterable[pa.RecordBatch], schema: pa.Schema,
                       *parts: str) -> None:
        """A parquet file written a row group per batch (never held whole), atomically."""
        self.fs.makedirs(self.path(*parts[:-1]) if len(parts) > 1 else self.root, exist_ok=True)
        tmp = self.path(*parts[:-1], f"{TMP_MARK}{parts[-1]}")
        with self.fs.open(tmp, "wb") as handle, pq.ParquetWriter(handle, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        self.fs.mv(tmp, self.path(*parts))

    def _iter_batches(self, name: str, columns: Sequence[str],
                      batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """`columns` of a parquet file of the run (a path relative to the run), a record
        batch at a time."""
        with self.fs.open(self.path(name), "rb") as handle:
            parquet = pq.ParquetFile(handle, pre_buffer=False)
            yield from parquet.iter_batches(batch_size=batch_rows, columns=list(columns),
                                            use_threads=False)

    def _input_files(self) -> list[str]:
        """inputs.parquet, then the parts `add_inputs` wrote, in the order they were added
        (paths relative to the run; empty before planning). A run written before parts
        existed has only inputs.parquet, added inputs included."""
        if not self.exists(INPUTS):
            return []
        # parts come from this driver, but a listing cached by another RunDir on the same
        # filesystem instance would miss the newest
        self.fs.invalidate_cache(self.path(INPUT_PARTS))
        if not self.exists(INPUT_PARTS):
            return [INPUTS]
        parts = sorted(n.rsplit("/", 1)[-1] for n in self.fs.ls(self.path(INPUT_PARTS),
                                                                 detail=False))
        return [INPUTS] + [f"{INPUT_PARTS}/{n}" for n in parts if _is_input_part(n)]

    def _iter_input_batches(self, columns: Sequence[str],
                            batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """`columns` of every input of the run (inputs.parquet, then the added parts), a
        record batch at a time."""
        for name in self._input_files():
            yield from self._iter_batches(name, columns, batch_rows)

    def _read_columns(self, name: str, columns: Sequence[str]) -> pa.Table:
        """Only `columns` of a parquet file of the run, as one table: the file is read a
        record batch at a time (`_iter_batches`), so neither its whole bytes nor its other
        columns are ever held."""
        schema = self._file_schema(name)
        schema = pa.schema([schema.field(c) for c in columns])
        return pa.Table.from_batches(list(self._iter_batches(name, columns)), schema=schema)

    def _file_schema(self, name: str) -> pa.Schema:
        """The Arrow schema of a parquet file of the run, from its footer alone."""
        if not self.exists(name):
            raise RunDirError(f"{self.url}: missing {name}")
        with self.fs.open(self.path(name), "rb") as handle:
            return pq.ParquetFile(handle, pre_buffer=False).schema_arrow

    def _read_inputs(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Every input of the run as one table (inputs.parquet and the added parts)."""
        files = self._input_files()
        if not files:
            raise RunDirError(f"{self.url}: missing {INPUTS}")
        # with `columns`, a batch at a time: the refs (most of a file) are never loaded
        tables = [self._read_table(*name.split("/")) if columns is None else
                  self._read_columns(name, columns) for name in files]
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    def _read_table(self, *parts: str, schema: pa.Schema | None = None,
                    columns: Sequence[str] | None = None) -> pa.Table:
        if not self.exists(*parts):
            if schema is None:
                raise RunDirError(f"{self.url}: missing {'/'.join(parts)}")
            return schema.empty_table()
        # Read the bytes, then parse from memory on THIS thread (use_threads=False): pyarrow's
        # pool threads release their column readers after the call returns, and a reader
        # holding a Python buffer needs the GIL to let go of it; at interpreter exit that
        # thread is torn down in a noexcept destructor and the process aborts ("terminate
        # called without an active exception", 2 in 12 `vlforge pdf` runs; a core dump
        # showed arrow::py::PyBuffer::~PyBuffer on an arrow pool thread).
        with self.fs.open(self.path(*parts), "rb") as handle:
            data = handle.read()
        return pq.ParquetFile(pa.BufferReader(data)).read(
            columns=list(columns) if columns is not None else None, use_threads=False)

    # -- inputs, planning and resuming -------------------------------------------------
    def input_refs(self) -> list[dict[str, Any]]:
        """Every input ref of the run (first-run inputs and any added since), by input id."""
        if not self.exists(INPUTS):
            return []
        return [json.loads(r) for r in self._read_inputs(["input_ref"]).column(
            "input_ref").to_pylist()]

    def plan(self, pipeline: str, input_refs: Iterable[dict[str, Any]],
             config: Mapping[str, Any], task_size: int, overwrite: bool = False,
             settings: Mapping[str, Any] | None = None) -> list[Task]:
        """Record the inputs and their task split; return the tasks not yet done.

        `plan_pending` with every pending task held as a list (for small callers).
        """
        return list(self.plan_pending(pipeline, input_refs, config, task_size,
                                      overwrite=overwrite, settings=settings))

    def plan_pending(self, pipeline: str, input_refs: Iterable[dict[str, Any]],
                     config: Mapping[str, Any], task_size: int, overwrite: bool = False,
                     settings: Mapping[str, Any] | None = None,
                     drop_duplicates: bool = False) -> PendingTasks:
        """Record the inputs and their task split; return the tasks not yet done, streamed.

        A first run writes run.json (pipeline, `config`, run `settings`: task size and
        shard bounds) and inputs.parquet. A re-run with the same inputs returns only
        unfinished tasks; with different inputs it refuses (or, with `overwrite`, starts
        the directory afresh). `input_refs` may be a generator of any length: it is read
        once and planned in bounded memory (`pipelines.core.planning.SpilledRefs`), and
        inputs.parquet is written a row group at a time. A repeated input id raises,
        unless `drop_duplicates` (the same file named by two arguments) keeps the first.
        """
        try:
            spilled = SpilledRefs(input_refs, drop_duplicates=drop_duplicates)
        except DuplicateInputError as exc:
            raise RunDirError(str(exc)) from None
        with spilled:
            if self.exists(RUN_JSON):
                previous = self.info()
                old = IdFingerprint().add_all(
                    i for batch in self._iter_input_batches(["input_id"])
                    for i in batch.column("input_id").to_pylist())
                if overwrite:
                    self.remove()
                elif (previous.get("pipeline") != pipeline
                      or old.value != spilled.fingerprint.value):
                    raise RunDirError(
                        f"{self.url} already holds a different run "
                        f"({previous.get('pipeline')}, {old.count} inputs); use a new --out "
                        "or pass --overwrite")
            if not self.exists(RUN_JSON):
                self.fs.makedirs(self.root, exist_ok=True)
                self._write_batches(spilled.assigned(task_size), INPUT_SCHEMA, INPUTS)
                self.write_json({"pipeline": pipeline, "config": dict(config),
                                 "run": dict(settings or {"task_size": task_size}),
                                 "task_size": task_size, "created": _now(), "attempts": [],
                                 "tools": tool_versions()}, RUN_JSON)
        pending = PendingTasks(self)
        self.clear_partial(pending.task_ids(), pipeline)
        return pending

    def add_inputs(self, refs: list[dict[str, Any]], task_size: int) -> None:
        """Append inputs found during a run (a crawl's links) as new tasks after the last.

        `audit` then accounts for them like any first-run input; ids already present (or
        given twice) are refused, since one input must have exactly one outcome. They are
        written as a new part (``inputs/part-NNNNN.parquet``), never by rewriting what is
        there: the recorded inputs are only read (a column at a time, so memory follows
        `refs`, not the run), and the part appears whole (written under a temporary name
        and moved: on an object store the move is a copy, visible only once complete).
        The run loses ``_SUCCESS`` until the added inputs are done.
        """
        if not refs:
            return
        new = [ref["input_id"] for ref in refs]
        wanted = set(new)
        if len(wanted) != len(new):
            repeated = next(i for i in new if new.count(i) > 1)
            raise RunDirError(f"{self.url}: input given twice, e.g. {repeated}")
        last, files, given = -1, self._input_files(), pa.array(new, pa.string())
        for name in files:
            for batch in self._iter_batches(name, ["input_id", "task"]):
                ids = batch.column("input_id")
                clash = pc.filter(ids, pc.is_in(ids, value_set=given))
                if len(clash):
                    raise RunDirError(f"{self.url}: input(s) already in the run, "
                                      f"e.g. {clash[0].as_py()}")
                tasks = pc.unique(batch.column("task")).to_pylist()
                last = max([last, *(i for i in map(_first_run_index, tasks) if i is not None)])
        rows = [{"input_id": ref["input_id"],
                 "task": f"t{last + 1 + index // task_size:05d}",
                 "input_ref": json.dumps(ref, sort_keys=True)} for index, ref in enumerate(refs)]
        number = 1 + max((int(n.rsplit("-", 1)[1].split(".")[0]) for n in files[1:]), default=0)
        self._write_table(rows, INPUT_SCHEMA, INPUT_PARTS, f"part-{number:05d}.parquet")
        if self.exists(SUCCESS):  # not complete until the added inputs are done too
            self.fs.rm(self.path(SUCCESS))

    def done_tasks(self) -> set[str]:
        # Workers elsewhere write done markers: drop cached listings first (s3fs/gcsfs keep
        # a directory cache per filesystem instance; a stale one hid finished tasks).
        self.fs.invalidate_cache()
        if not self.exists(TASKS):
            return set()
        names = self.fs.ls(self.path(TASKS), detail=False)
        return {n.rsplit("/", 1)[-1][:-5] for n in names
                if n.endswith(".json") and TMP_MARK not in n}

    def clear_partial(self, pending: Iterable[Task | str], pipeline: str) -> None:
        """Remove temporary files and any shards of tasks about to be (re)done (given as
        Tasks or task ids)."""
        pending_ids = {t.task_id if isinstance(t, Task) else t for t in pending}
        self._remove_temporaries()
        for name in self.fs.ls(self.root, detail=False):
            base = name.rsplit("/", 1)[-1]
            task = _task_of_shard(base, pipeline)
            if task is not None and task in pending_ids:
                self.fs.rm(name)
        if self.exists(SUCCESS) and pending_ids:
            self.fs.rm(self.path(SUCCESS))

    def record_attempt(self, kind: str, tasks: Iterable[Task | str]) -> None:
        """Note an attempt in run.json: its kind, start and tasks (Tasks or ids; only the
        first `LISTED_TASKS` ids are listed, with the count, so run.json stays small)."""
        listed: list[str] = []
        count = 0
        for task in tasks:
            count += 1
            if len(listed) < LISTED_TASKS:
                listed.append(task.task_id if isinstance(task, Task) else task)
        info = self.info()
        info.setdefault("attempts", []).append(
            {"kind": kind, "started": _now(), "tasks": listed, "task_count": count})
        self.write_json(info, RUN_JSON)

    # -- per-task results (written by the Beam sink) -----------------------------------
    def shard_writer(self, pipeline: str, task_id: str, max_bytes: int = DEFAULT_MAX_BYTES,
                     max_count: int = DEFAULT_MAX_COUNT) -> ShardWriter:
        """The writer of one task's shards, named ``<pipeline>-<task>-<index>.tar``."""
        return ShardWriter(self.url, prefix=f"{pipeline}-{task_id}", max_bytes=max_bytes,
                           max_count=max_count)

    def write_task(self, task_id: str, shards: list[str], manifest: list[dict[str, Any]],
                   outcomes: list[Outcome]) -> None:
        """Write one task's manifest and outcomes, then its done marker (last)."""
        self._write_table(manifest, MANIFEST_SCHEMA, TASKS, f"{task_id}.manifest.parquet")
        self._write_table([o.to_row() for o in outcomes], OUTCOME_SCHEMA,
                          TASKS, f"{task_id}.outcomes.parquet")
        self.write_json({"task": task_id, "shards": shards, "samples": len(manifest),
                         "outcomes": len(outcomes), "finished": _now()},
                        TASKS, f"{task_id}.json")

    # -- finalizing --------------------------------------------------------------------
    def merged(self, columns: Sequence[str] | None = None
               ) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
        """Manifest, outcomes and stats merged from the done tasks, without writing; with
        `columns` the merged manifest holds only those (`MERGE_COLUMNS` are what the
        stats, the split and the accounting check read)."""
        return self._merge(sorted(self.done_tasks(), key=_task_order), columns)

    def _merge(self, done: list[str], columns: Sequence[str] | None
               ) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
        manifests = [self._task_manifest(t, columns) for t in done]
        empty = MANIFEST_SCHEMA.empty_table()
        manifest = pa.concat_tables(manifests or [
            empty if columns is None else empty.select(list(columns))])
        manifest = self._assign_splits(manifest)
        outcome_tables = [self._read_table(TASKS, f"{t}.outcomes.parquet") for t in done]
        outcomes = pa.concat_tables(outcome_tables or [OUTCOME_SCHEMA.empty_table()])
        outcomes = _supersede_retried(outcomes, manifest)
        inputs = self._read_inputs(["input_id", "task"])  # refs not needed
        stats = compute_stats(inputs, manifest, outcomes)
        planned = set(inputs.column("task").to_pylist())
        # retry tasks (r<N>-t...) are done on top of the planned ones, not instead of them
        stats["tasks"] = {"done": len(planned & set(done)), "total": len(planned)}
        return manifest, outcomes, stats

    def _task_manifest(self, task_id: str, columns: Sequence[str] | None = None) -> pa.Table:
        """One done task's manifest, its split columns filled in for merging
        (`_with_split_columns`); with `columns` only those."""
        name = f"{task_id}.manifest.parquet"
        if columns is None:
            return _with_split_columns(self._read_table(TASKS, name), "")
        present = set(self._file_schema(f"{TASKS}/{name}").names)
        table = self._read_table(TASKS, name, columns=[c for c in columns if c in present])
        return _with_split_columns(table, "").select(list(columns))

    def _write_manifest(self, done: list[str], split: pa.ChunkedArray) -> None:
        """The merged manifest written a row group at a time: the done tasks' rows in
        order, with `split` (the merged split column) set, the same bytes as writing the
        merged table whole (`_write_table`) without ever holding it."""
        if not len(split):
            self._write_table(MANIFEST_SCHEMA.empty_table(), MANIFEST_SCHEMA, MANIFEST)
            return
        index = MANIFEST_SCHEMA.get_field_index("split")

        def row_groups() -> Iterator[pa.Table]:
            pending: list[pa.Table] = []
            rows = start = 0

            def group(table: pa.Table) -> pa.Table:
                table = table.set_column(index, "split", split.slice(start, table.num_rows))
                return table.select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA)

            for task_id in done:
                table = self._task_manifest(task_id)
                pending.append(table.select(MANIFEST_SCHEMA.names))
                rows += table.num_rows
                while rows >= ROW_GROUP_ROWS:
                    joined = pa.concat_tables(pending)
                    yield group(joined.slice(0, ROW_GROUP_ROWS))
                    start += ROW_GROUP_ROWS
                    pending, rows = [joined.slice(ROW_GROUP_ROWS)], rows - ROW_GROUP_ROWS
            if rows:
                yield group(pa.concat_tables(pending))

        self.fs.makedirs(self.root, exist_ok=True)
        tmp = self.path(f"{TMP_MARK}{MANIFEST}")
        with self.fs.open(tmp, "wb") as handle, pq.ParquetWriter(handle,
                                                                 MANIFEST_SCHEMA) as writer:
            for table in row_groups():
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.fs.mv(tmp, self.path(MANIFEST))

    def validation_fraction(self) -> float:
        """The share of source documents this run holds out (run.json's run settings)."""
        settings = (self.info().get("run") or {}) if self.exists(RUN_JSON) else {}
        return float(settings.get("validation_fraction", DEFAULT_VALIDATION_FRACTION))

    def _assign_splits(self, manifest: pa.Table) -> pa.Table:
        """`manifest` with its ``split`` column decided per document (`assign_splits`)."""
        documents = manifest.column("document").to_pylist()
        # a sample read from another run (label, sft) keeps that run's side: a document
        # held out there stays held out here (validation wins when its samples disagree)
        preset = manifest.column("split").to_pylist()
        inherited: dict[str, str] = {}
        for doc, split in zip(documents, preset):
            if split in SPLITS:
                inherited[doc] = VALIDATION if VALIDATION in (split, inherited.get(doc)) else split
        fresh = assign_splits([d for d in documents if d not in inherited],
                              self.validation_fraction())
        column = pa.array([split if split in SPLITS else inherited.get(doc) or fresh[doc]
                           for doc, split in zip(documents, preset)], type=pa.string())
        return manifest.set_column(manifest.schema.get_field_index("split"), "split", column)

    def finalize(self) -> dict[str, Any]:
        """Merge task results into manifest/outcomes/stats and write `_SUCCESS` last.

        Later attempts (retries) supersede earlier error outcomes for the same item.
        Returns the stats.
        """
        self.fs.invalidate_cache()  # shards and markers came from other processes
        done = sorted(self.done_tasks(), key=_task_order)
        self._remove_orphan_shards(done)
        # the merge reads a few columns of each row (~0.3 KB, not the ~1.5 KB of a whole
        # row with its signatures); the whole rows are written task by task after
        manifest, outcomes, stats = self._merge(done, MERGE_COLUMNS)
        self._write_manifest(done, manifest.column("split"))
        self._write_table(outcomes, OUTCOME_SCHEMA, OUTCOMES)
        all_done = stats["tasks"]["done"] == stats["tasks"]["total"]
        if all_done:  # never mark complete a run that lost inputs (pipelines.core.completion)
            from pipelines.core.completion import accounting_problems

            problems = accounting_problems(
                self._read_inputs(["input_id", "task"]), manifest, outcomes)
            if problems:
                stats["accounting_problems"] = problems
        self.write_json(stats, STATS)
        if all_done and not stats.get("accounting_problems"):
            with self.fs.open(self.path(SUCCESS), "w") as handle:
                handle.write(_now() + "\n")
        elif self.exists(SUCCESS):
            self.fs.rm(self.path(SUCCESS))
        return stats

    def rewrite_manifests(self, update: Callable[[dict[str, Any]], None],
                          dry_run: bool = False) -> dict[str, Any] | None:
        """Apply `update` (which edits a row in place) to every manifest row, then finalize.

        Only the label-like columns of the manifest are meant to change (shards are
        immutable); the task manifests are rewritten too, so a later `retry`, which
        re-merges them, keeps the change. With `dry_run`, rows are visited but nothing is
        written and None is returned.
        """
        # One task's rows at a time: each rewritten task manifest is staged under a
        # temporary name (a killed migration leaves only temporaries, which the run's next
        # attempt or finalize removes) and all are moved into place once every row is updated, so an
        # `update` that raises still changes nothing, without holding the run's rows.
        staged: list[tuple[str, str]] = []
        try:
            for task_id in sorted(self.done_tasks(), key=_task_order):
                rows = _with_split_columns(
                    self._read_table(TASKS, f"{task_id}.manifest.parquet"), "").to_pylist()
                for row in rows:
                    update(row)
                if not dry_run:
                    name = f"{task_id}.manifest.parquet"
                    self._write_table(rows, MANIFEST_SCHEMA, TASKS, f"{TMP_MARK}new-{name}")
                    staged.append((self.path(TASKS, f"{TMP_MARK}new-{name}"),
                                   self.path(TASKS, name)))
        except BaseException:
            for path, _ in staged:
                self.fs.rm(path)
            raise
        if dry_run:
            return None
        for path, final in staged:
            self.fs.mv(path, final)
        return self.finalize()

    def _remove_orphan_shards(self, done: list[str]) -> None:
        """Delete tars no done task lists (left by a killed attempt) so globs see none."""
        listed = set()
        for task_id in done:
            listed.update(self.read_json(TASKS, f"{task_id}.json").get("shards", []))
        self._remove_temporaries()
        for name in self.fs.ls(self.root, detail=False):
            base = name.rsplit("/", 1)[-1]
            if base.endswith(".tar") and base not in listed:
                log.info("removing leftover %s", base)
                self.fs.rm(name)

    def _remove_temporaries(self) -> None:
        """Delete the temporary files a killed attempt left: in the run's root and in the
        folders markers and input parts are written to (on object storage a kill between a
        marker's copy and its delete leaves its temporary beside the marker). Called only
        while no attempt writes (before one starts, and when one finalizes)."""
        for folder in (self.root, self.path(TASKS), self.path(INPUT_PARTS)):
            for name in self.fs.ls(folder, detail=False) if self.fs.exists(folder) else []:
                base = name.rsplit("/", 1)[-1]
                if base.startswith(TMP_MARK):
                    log.info("removing leftover %s", base)
                    self.fs.rm(name)

    # -- reading -----------------------------------------------------------------------
    def manifest(self, columns: Sequence[str] | None = None) -> pa.Table:
        """One row per written sample (see `MANIFEST_SCHEMA`); a run written before the
        split existed reads with every sample in ``train``. With `columns`, only those are
        read (the file's other column chunks are never loaded): what a driver-side reader
        of a big run should ask for, since a whole row (signatures included) is ~1.5 KB."""
        if columns is None:
            return _with_split_columns(self._read_table(MANIFEST))
        present = self.manifest_file_columns()
        wanted = [c for c in columns if c in present]
        if "document" in columns and "document" not in present:  # derived from these
            wanted += [c for c in ("input_id", "key") if c not in wanted]
        table = self._read_columns(MANIFEST, wanted)
        for name in columns:
            if name not in present:  # an older run: filled in as `_with_split_columns` does
                table = table.append_column(name, _default_column(table, name, TRAIN))
        return table.select(list(columns))

    def manifest_file_columns(self) -> list[str]:
        """The columns the manifest file holds (from its footer; an older run lacks some
        that `manifest` fills in)."""
        return self._file_schema(MANIFEST).names

    def manifest_columns(self) -> list[str]:
        """The columns `manifest` gives, without reading a row."""
        present = self.manifest_file_columns()
        return present + [c for c in ("document", "split", *SIGNATURE_COLUMNS)
                          if c not in present]

    def manifest_num_rows(self) -> int:
        """Rows in the manifest, from its footer alone (no row is decoded)."""
        with self.fs.open(self.path(MANIFEST), "rb") as handle:
            return pq.ParquetFile(handle, pre_buffer=False).metadata.num_rows

    def iter_manifest_rows(self, columns: Sequence[str], batch_rows: int = 65_536,
                           start: int = 0, stop: int | None = None
                           ) -> Iterator[dict[str, Any]]:
        """The manifest's rows (only `columns`), streamed a record batch at a time, so a
        worker's memory stays flat however many samples the run holds; with `start` /
        `stop` only that range of rows, decoding only the row groups it overlaps (workers
        each read a slice). Columns an older run lacks read as empty values."""
        with self.fs.open(self.path(MANIFEST), "rb") as handle:
            manifest = pq.ParquetFile(handle, pre_buffer=False)
            present = set(manifest.schema_arrow.names)
            wanted = [c for c in columns if c in present]
            missing = {c: (b"" if MANIFEST_SCHEMA.field(c).type == pa.binary() else "")
                       for c in columns if c not in present}
            stop = manifest.metadata.num_rows if stop is None else stop
            groups, position, first = [], 0, None
            for index in range(manifest.num_row_groups):
                size = manifest.metadata.row_group(index).num_rows
                if position < stop and position + size > start:
                    groups.append(index)
                    first = position if first is None else first
                position += size
            if not groups:
                return
            position = first
            for batch in manifest.iter_batches(batch_size=batch_rows, row_groups=groups,
                                               columns=wanted, use_threads=False):
                low, high = max(start - position, 0), min(stop - position, batch.num_rows)
                position += batch.num_rows
                if low >= high:
                    continue
                for row in batch.slice(low, high - low).to_pylist():
                    row.update(missing)
                    yield row

    def write_success(self) -> None:
        """Mark a directory that is not a pipeline run (a `vlforge dedup` result) complete:
        its writer calls this last, as `finalize` does for runs."""
        with self.fs.open(self.path(SUCCESS), "w") as handle:
            handle.write("")

    def split_of(self, key: str) -> str:
        """The split of one sample of this run (the manifest is read once and kept)."""
        if getattr(self, "_splits", None) is None:
            # only the keys off the default side are kept (a few per cent of a run: the
            # held-out documents), not a dict entry per sample in every worker
            table = self.manifest(["key", "split"])
            other = pc.invert(pc.fill_null(pc.is_in(table.column("split"),
                                                    value_set=pa.array(["", TRAIN])), False))
            table = table.filter(other)
            self._splits = dict(zip(table.column("key").to_pylist(),
                                    table.column("split").to_pylist()))
        return self._splits.get(key) or TRAIN

    def split_keys(self, split: str) -> set[str]:
        """Keys of the samples on one side of the held-out split ("train"/"validation")."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        table = self.manifest(["key", "split"])
        chosen = pc.fill_null(pc.equal(table.column("split"), split), False)
        return set(table.column("key").filter(chosen).to_pylist())

    def outcome_table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """One row per drop, error and expansion (see `OUTCOME_SCHEMA`); with `columns`
        only those are read (messages and input refs are most of a row)."""
        if columns is not None:
            return self._read_columns(OUTCOMES, columns)
        return self._read_table(OUTCOMES)

    def outcomes(self, kind: str | None = None) -> list[Outcome]:
        """The outcomes as objects; with `kind` ("error", "dropped", "expanded") only those,
        chosen on the table before any row becomes an object."""
        table = self.outcome_table()
        if kind is not None:
            table = table.filter(pc.fill_null(pc.equal(table.column("kind"), kind), False))
        return [Outcome.from_row(r) for r in table.to_pylist()]

    def inputs(self, columns: Sequence[str] | None = None) -> pa.Table:
        """One row per input: input_id, task, input_ref (JSON); added inputs included; with
        `columns` only those (the refs are most of a row)."""
        return self._read_inputs(columns)

    def shard_names(self) -> list[str]:
        """The run's shard file names, sorted (from the manifest)."""
        return sorted(pc.unique(self.manifest(["shard"]).column("shard")).to_pylist())

    def shard_url(self, shard: str) -> str:
        """The URL of one shard of this run, as `webdataset`, HF `datasets` or
        `iter_shard_samples` take it: a plain path locally, ``protocol://path`` elsewhere."""
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        prefix = "" if protocol in ("file", "local") else f"{protocol}://"
        return prefix + self.path(shard)

    def shard_urls(self) -> list[str]:
        return [self.shard_url(name) for name in self.shard_names()]

    def iter_shard(self, shard: str, payloads: bool = True) -> Iterator[Sample]:
        """Stream the samples of one shard; without `payloads` only their JSON members are
        read (key, source, locator, meta: no images or texts), much less to hold."""
        exts = None if payloads else ("json",)
        for group in read_shard_groups(self.fs, self.path(shard), exts):
            yield group_to_sample(group, self.shard_url(shard))

    def iter_samples(self, payloads: bool = True, split: str | None = None,
                     deduplicated: bool = True) -> Iterator[Sample]:
        """Stream every sample of the run, shard by shard (see `iter_shard`); with `split`
        only that side of the held-out split ("train" or "validation"). Samples that
        ``vlforge dedup`` found to duplicate another are skipped unless `deduplicated` is
        False (see `removed_keys`)."""
        for _, sample in self.iter_located(payloads, split, deduplicated):
            yield sample

    def iter_located(self, payloads: bool = True, split: str | None = None,
                     deduplicated: bool = True) -> Iterator[tuple[str, Sample]]:
        """`iter_samples` with the shard each sample was read from: (shard, sample), for
        a reader that keeps only (shard, key) and reads a sample again (`read_sample`)."""
        keys = None if split is None else self.split_keys(split)
        removed = self.removed_keys() if deduplicated else set()
        for shard in self.shard_names():
            for sample in self.iter_shard(shard, payloads):
                if (keys is None or sample.key in keys) and sample.key not in removed:
                    yield shard, sample

    def document_counts(self, split: str | None = None,
                        deduplicated: bool = True) -> dict[str, int] | None:
        """How many samples `iter_samples` (same arguments) yields per source document,
        from the manifest's columns alone: a reader that gathers a document's samples can
        hand it on once its last one has passed instead of holding the whole run. None for
        a run written before the manifest had a document column (its fill-in is not
        always what `pipelines.core.split.document_id` says of a sample)."""
        if "document" not in self.manifest_file_columns():
            return None
        table = self.manifest(["key", "document", "split"])
        keep = pa.array([True] * table.num_rows, pa.bool_())
        if split is not None:
            keep = pc.and_(keep, pc.fill_null(pc.equal(table.column("split"), split), False))
        removed = self.removed_keys() if deduplicated else set()
        if removed:
            keep = pc.and_(keep, pc.invert(pc.is_in(table.column("key"),
                                                    value_set=pa.array(list(removed),
                                                                       pa.string()))))
        documents = table.filter(keep).column("document")
        return {row["document"]: row["count"]
                for row in _counts(pa.table({"document": documents}), ["document"])}

    def removed_keys(self) -> set[str]:
        """Keys of this run's samples that a de-duplication removed (kept in the shards,
        skipped by readers): the side table `DEDUP_REMOVED` written by ``vlforge dedup``."""
        if not self.exists(DEDUP_REMOVED):
            return set()
        return set(self._read_columns(DEDUP_REMOVED, ["key"]).column("key").to_pylist())

    def read_sample(self, shard: str, key: str) -> Sample:
        """One sample by key, from its shard's header index (kept open for the next reads).

        Raises `SampleNotFound` when the key is not in that shard.
        """
        index = self._indexes.get(shard)
        if index is None:
            index = self._indexes[shard] = ShardIndex(self.fs, self.path(shard))
            while len(self._indexes) > KEPT_INDEXES:
                self._indexes.popitem(last=False)[1].close()
        self._indexes.move_to_end(shard)
        sample = index.sample(key)
        # Files stay open for the most recently used shards only; older indexes keep
        # their offsets and reopen their file on the next lookup.
        for stale in list(self._indexes.values())[:-OPEN_SHARDS]:
            stale.close()
        return sample

    def close(self) -> None:
        """Close the shard indexes `read_sample` keeps open."""
        for index in self._indexes.values():
            index.close()
        self._indexes.clear()


class PendingTasks:
    """The tasks of a run not yet done, read from inputs.parquet a batch at a time.

    ``len()`` is their number; iterating yields each `Task` (its refs parsed) in task
    order, so a run of any size is handed to the task lists without holding its refs.
    The done markers are read once, when this is made.
    """

    def __init__(self, run: RunDir, batch_rows: int = 65_536):
        self.run, self.batch_rows = run, batch_rows
        self.done = run.done_tasks()
        self.inputs = 0
        count, last, last_index = 0, None, -1
        for task in self._tasks_column():
            if task != last:
                # rows of a task are contiguous (planned in order, crawled inputs appended)
                index = _first_run_index(task)
                if index is not None and index <= last_index:
                    raise RunDirError(f"{run.url}: inputs of task {task} are not contiguous")
                last, last_index = task, index if index is not None else last_index
                count += task not in self.done
            self.inputs += task not in self.done
        self.count = count

    def __len__(self) -> int:
        return self.count

    def _tasks_column(self) -> Iterator[str]:
        for batch in self.run._iter_input_batches(["task"], self.batch_rows):
            yield from batch.column("task").to_pylist()

    def task_ids(self) -> Iterator[str]:
        """The pending task ids, in order."""
        last = None
        for task in self._tasks_column():
            if task != last and task not in self.done:
                yield task
            last = task

    def __iter__(self) -> Iterator[Task]:
        current: Task | None = None
        for batch in self.run._iter_input_batches(["task", "input_ref"], self.batch_rows):
            for task, ref in zip(batch.column("task").to_pylist(),
                                 batch.column("input_ref").to_pylist()):
                if task in self.done:
                    continue
                if current is None or current.task_id != task:
                    if current is not None:
                        yield current
                    current = Task(task, [])
                current.input_refs.append(json.loads(ref))
        if current is not None:
            yield current


def _is_input_part(name: str) -> bool:
    """A complete part of added inputs (not a temporary name of one being written)."""
    return name.startswith("part-") and name.endswith(".parquet")


def _first_run_index(task_id: str) -> int | None:
    """The number of a first-run task ``t<N>`` (None for any other name)."""
    return int(task_id[1:]) if task_id[:1] == "t" and task_id[1:].isdigit() else None


class SampleReader:
    """Reads single samples by ``(run, shard, key)`` across runs, for a stage's workers.

    Refs of one task tend to name the same few shards, so each run's recent shard indexes
    stay open between calls; call `close` in the stage's teardown.
    """

    def __init__(self) -> None:
        self._runs: dict[str, RunDir] = {}

    def read(self, run: str, shard: str, key: str) -> Sample:
        run_dir = self._runs.get(run)
        if run_dir is None:
            run_dir = self._runs[run] = RunDir(run)
        sample = run_dir.read_sample(shard, key)
        # the side of the held-out split it is on in that run, carried into what is made
        # of it (`pipelines.core.split`): held-out data never becomes training data
        return sample.with_meta("lineage", {**sample.lineage, "split": run_dir.split_of(key)})

    def close(self) -> None:
        for run_dir in self._runs.values():
            run_dir.close()
        self._runs.clear()


def compute_stats(inputs: pa.Table, manifest: pa.Table, outcomes: pa.Table) -> dict[str, Any]:
    """Counts per stage, per reason, per source and per taxonomy leaf.

    Computed on Arrow columns (grouped counts), never a Python dict per sample, so
    finalizing a run of millions of samples stays cheap on the driver.
    """
    derived = _nonempty(manifest.column("derived_from"))
    written = manifest.num_rows - pc.sum(derived).as_py() if manifest.num_rows else 0
    by_kind: dict[str, dict[str, int]] = {"dropped": {}, "error": {}, "expanded": {}}
    for row in _counts(outcomes.select(["kind", "stage", "reason"]), ["kind", "stage", "reason"]):
        by_kind[row["kind"]][f"{row['stage']}:{row['reason']}"] = row["count"]
    split = _or_default(manifest.column("split"), TRAIN)
    documents = pa.table({"document": manifest.column("document"), "split": split})
    documents = documents.group_by(["document", "split"], use_threads=False).aggregate([])
    return {
        "inputs": inputs.num_rows,
        "written": written,
        "derived": manifest.num_rows - written,
        "dropped": sum(by_kind["dropped"].values()),
        "errors": sum(by_kind["error"].values()),
        "expanded": sum(by_kind["expanded"].values()),
        "dropped_by_reason": dict(sorted(by_kind["dropped"].items())),
        "errors_by_reason": dict(sorted(by_kind["error"].items())),
        "samples_by_source": _count_by(manifest.column("source")),
        "samples_by_split": _count_by(split),
        "documents_by_split": _count_by(documents.column("split")),
        "samples_by_taxonomy_leaf": _count_by(
            _or_default(manifest.column("taxonomy_leaf"), "unlabeled")),
        "bytes": (pc.sum(manifest.column("bytes")).as_py() or 0) if manifest.num_rows else 0,
        "finished": _now(),
    }


def _nonempty(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where a string column holds a non-empty value (null and "" are empty)."""
    return pc.fill_null(pc.not_equal(column, ""), False)


def _or_default(column: pa.ChunkedArray, default: str) -> pa.ChunkedArray:
    """A string column with null and "" replaced by `default`."""
    return pc.if_else(_nonempty(column), column, default)


def _counts(table: pa.Table, keys: list[str]) -> list[dict[str, Any]]:
    return table.group_by(keys, use_threads=False).aggregate([([], "count_all")]).rename_columns(
        [*keys, "count"]).to_pylist()


def _count_by(column: pa.ChunkedArray) -> dict[str, int]:
    """{value: rows with it}, sorted by value."""
    return dict(sorted((row["value"], row["count"]) for row in _counts(
        pa.table({"value": column}), ["value"])))


def _with_split_columns(table: pa.Table, split: str = TRAIN) -> pa.Table:
    """A manifest written before the split columns existed, with them filled in: the
    document is the root input (as `document_id` would say), the split `split` (``train``
    for a finished manifest; "" for a task manifest, so that merging decides it)."""
    for name in ("document", "split", *SIGNATURE_COLUMNS):
        if name not in table.schema.names:
            table = table.append_column(name, _default_column(table, name, split))
    return table


def _default_column(table: pa.Table, name: str, split: str) -> pa.Array:
    """The value of a manifest column that `table` (of an older run) lacks: the document
    is the root input (``input_id``, else the key), the split `split`, signatures empty."""
    if name == "document":
        documents = [row["input_id"] or row["key"]
                     for row in table.select(["input_id", "key"]).to_pylist()]
        return pa.array(documents, type=pa.string())
    if name == "split":
        return pa.array([split] * table.num_rows, type=pa.string())
    field = MANIFEST_SCHEMA.field(name)  # KeyError for a column no manifest has
    empty = b"" if field.type == pa.binary() else ""
    return pa.array([empty] * table.num_rows, field.type)


def _supersede_retried(outcomes: pa.Table, manifest: pa.Table) -> pa.Table:
    """Keep, per item, only the outcomes of its latest attempt (retries come later).

    Columnar: a task's order (`_task_order`) becomes one sortable string per distinct
    task, and the latest per item is a grouped max, so no row becomes a Python dict."""
    primary = manifest.filter(pc.invert(_nonempty(manifest.column("derived_from"))))
    tasks = pc.unique(pa.concat_arrays([
        outcomes.column("task").combine_chunks().cast(pa.string()),
        primary.column("task").combine_chunks().cast(pa.string())])).to_pylist()
    orders = pa.array([_order_key(t) for t in tasks], type=pa.string())
    task_set = pa.array(tasks, type=pa.string())

    def order_of(table: pa.Table) -> pa.Array:
        return _chunks(pc.take(orders, pc.index_in(table.column("task"), value_set=task_set)))

    outcome_order = order_of(outcomes)
    both = pa.table({
        "item_id": pa.concat_arrays([_chunks(outcomes.column("item_id")),
                                     _chunks(primary.column("item_id"))]),
        "order": pa.concat_arrays([outcome_order, order_of(primary)])})
    latest = both.group_by("item_id", use_threads=False).aggregate([("order", "max")])
    latest_of = _chunks(pc.take(latest.column("order_max"), pc.index_in(
        outcomes.column("item_id"), value_set=latest.column("item_id"))))
    keep = pc.greater_equal(outcome_order, latest_of)
    return outcomes.filter(keep).select(OUTCOME_SCHEMA.names).cast(OUTCOME_SCHEMA)


def _chunks(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _order_key(task_id: str) -> str:
    """`_task_order` as one string that sorts the same way."""
    attempt, rest = _task_order(task_id)
    return f"{attempt:09d}|{rest}"


def _task_order(task_id: str) -> tuple:
    """Retry tasks are named ``r<attempt>-t<index>`` and sort after first-run tasks."""
    if task_id.startswith("r") and "-" in task_id:
        attempt, _, rest = task_id.partition("-")
        return (int(attempt[1:]), rest)
    return (0, task_id)


def _side_name(name: str) -> str:
    if name in RESERVED or name.startswith((TASKS + "/", INPUT_PARTS + "/", TMP_MARK)) or \
            name.endswith(".tar"):
        raise RunDirError(f"{name!r} is part of the run directory contract, not a side file")
    return name


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
