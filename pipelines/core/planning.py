"""Planning: which inputs form which task, in bounded memory.

Tasks are `task_size` inputs in input-id order, except that refs sharing a ``task_group``
(e.g. PDFs of equal size, the only ones that can be byte-identical) stay in one task, so a
per-task check in a worker sees all of them; a group takes the place of its smallest input
id, its members ordered by locator (the first is the one a dedup keeps). `assign_tasks` does
this over a list; `SpilledRefs` does the same over a stream of refs of any length without
holding them: refs are spilled to local Arrow files in buckets and each bucket is sorted on
its own (an external bucket sort), so the driver holds about `batch_rows` refs at a time.
The driver records the split once in the run's ``inputs.parquet`` (`RunDir.plan`); the
workers read the pending tasks from task lists (`pipelines.core.task_lists`).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import random
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

BATCH_ROWS = 50_000  # refs held at once while planning (and rows per written row group)
BUCKETS = 256  # spill buckets once the refs outgrow one batch
SAMPLE_SIZE = 32 * BUCKETS  # input ids sampled to place the ordered buckets' bounds

_SPILL_SCHEMA = pa.schema([("unit", pa.string()), ("locator", pa.string()),
                           ("input_id", pa.string()), ("input_ref", pa.string())])
OUTPUT_SCHEMA = pa.schema([("input_id", pa.string()), ("task", pa.string()),
                           ("input_ref", pa.string())])


class DuplicateInputError(ValueError):
    """Two refs of one plan have the same input id."""


def assign_tasks(refs: Sequence[dict[str, Any]], task_size: int) -> list[tuple[str, dict]]:
    """``(task_id, ref)`` for every ref: tasks of `task_size` in input-id order, groups kept
    whole (a group larger than `task_size` makes one larger task)."""
    ordered = sorted(refs, key=lambda ref: ref["input_id"])
    groups: dict[str, list[dict[str, Any]]] = {}
    units: list[list[dict[str, Any]]] = []
    for ref in ordered:
        group = ref.get("task_group")
        if not group:
            units.append([ref])
        elif group in groups:
            groups[group].append(ref)
        else:
            groups[group] = [ref]
            units.append(groups[group])
    assigned: list[tuple[str, dict]] = []
    index, filled = 0, 0
    for unit in units:
        # within a group, the first by locator (path order) is the one a dedup keeps
        unit = sorted(unit, key=lambda ref: (ref.get("locator", ""), ref["input_id"]))
        if filled and filled + len(unit) > task_size:
            index, filled = index + 1, 0
        assigned.extend((f"t{index:05d}", ref) for ref in unit)
        filled += len(unit)
    return assigned


def task_name(index: int) -> str:
    """The id of the `index`-th task of a first run."""
    return f"t{index:05d}"


class IdFingerprint:
    """An order-independent digest of a set of input ids (count and a sum of hashes), so
    two input lists can be compared without holding either."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, input_id: str) -> None:
        self.count += 1
        digest = hashlib.blake2b(input_id.encode("utf-8"), digest_size=16).digest()
        self._sum = (self._sum + int.from_bytes(digest, "big")) % (1 << 128)

    def add_all(self, input_ids: Iterable[str]) -> IdFingerprint:
        for input_id in input_ids:
            self.add(input_id)
        return self

    @property
    def value(self) -> str:
        return f"{self.count}:{self._sum:032x}"


class _Buckets:
    """Rows in `count` buckets: kept in memory until `limit` rows are buffered in all,
    then appended to one Arrow IPC file per bucket (so nothing touches disk for a small
    plan)."""

    def __init__(self, count: int, schema: pa.Schema, directory: str, name: str, limit: int):
        self.count, self.schema, self.limit = count, schema, limit
        self.paths = [os.path.join(directory, f"{name}-{i:04d}.arrows") for i in range(count)]
        self._rows: list[list[tuple]] = [[] for _ in range(count)]
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self._buffered = 0

    def add(self, bucket: int, row: tuple) -> None:
        self._rows[bucket].append(row)
        self._buffered += 1
        if self._buffered >= self.limit:
            self.flush()

    def flush(self) -> None:
        for bucket, rows in enumerate(self._rows):
            if rows:
                writer = self._writers.get(bucket)
                if writer is None:
                    writer = self._writers[bucket] = pa.ipc.new_stream(self.paths[bucket],
                                                                      self.schema)
                writer.write_batch(_batch(rows, self.schema))
                self._rows[bucket] = []
        self._buffered = 0

    def close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def table(self, bucket: int) -> pa.Table:
        """One bucket's rows (what was spilled, then what is still in memory); the
        bucket's memory is released."""
        parts = []
        if bucket in self._writers:
            with pa.memory_map(self.paths[bucket]) as source:
                parts.append(pa.ipc.open_stream(source).read_all())
            os.remove(self.paths[bucket])
        if self._rows[bucket]:
            parts.append(pa.Table.from_batches([_batch(self._rows[bucket], self.schema)]))
            self._rows[bucket] = []
        return pa.concat_tables(parts) if parts else self.schema.empty_table()


def _batch(rows: list[tuple], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows)) if rows else [[] for _ in schema]
    return pa.record_batch([pa.array(c, type=f.type) for c, f in zip(columns, schema)],
                           schema=schema)


class SpilledRefs:
    """A stream of input refs, consumed once and kept (spilled) for planning.

    Reading the refs computes their `fingerprint` (see `IdFingerprint`) and `count` (of
    distinct ids); `assigned` then yields ``inputs.parquet`` rows (input_id, task, input_ref JSON) as
    record batches in task order, exactly as `assign_tasks` would split the same refs.
    Memory is bounded by `batch_rows` refs plus one bucket (about count / `buckets`
    rows); use as a context manager so the spill directory is removed.
    """

    def __init__(self, refs: Iterable[dict[str, Any]], batch_rows: int | None = None,
                 buckets: int | None = None, drop_duplicates: bool = False):
        # defaults read at call time (module settings a test or a caller may change)
        self.batch_rows = max(1, BATCH_ROWS if batch_rows is None else batch_rows)
        buckets = BUCKETS if buckets is None else buckets
        self.drop_duplicates = drop_duplicates
        self._dir = tempfile.mkdtemp(prefix="vlforge-plan-")
        self.fingerprint = IdFingerprint()
        self._sample: list[str] = []
        self._seen = 0
        self._rng = random.Random(0)
        try:
            self._read(iter(refs), buckets)
            self._units = self._by_unit()
        except BaseException:
            self.close()
            raise

    @property
    def count(self) -> int:
        """Distinct input ids read."""
        return self.fingerprint.count

    def __enter__(self) -> SpilledRefs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- pass 1: read the refs into buckets by group ------------------------------------
    def _read(self, refs: Iterator[dict[str, Any]], buckets: int) -> None:
        first: list[dict[str, Any]] = []
        for ref in refs:
            first.append(ref)
            if len(first) > self.batch_rows:
                break
        # refs that fit one batch are planned in memory: one bucket, no file written
        self.buckets = 1 if len(first) <= self.batch_rows else max(1, buckets)
        self._by_group = _Buckets(self.buckets, _SPILL_SCHEMA, self._dir, "group",
                                  self.batch_rows)
        for ref in first:
            self._add(ref)
        del first
        for ref in refs:
            self._add(ref)
        self._by_group.close_writers()

    def _add(self, ref: dict[str, Any]) -> None:
        input_id = ref["input_id"]
        self._keep_sample(input_id)
        group = ref.get("task_group")
        # the unit column holds the group key for now (a lone ref is a group of its own)
        key = f"g:{group}" if group else f"i:{input_id}"
        bucket = zlib.crc32(key.encode("utf-8")) % self.buckets
        self._by_group.add(bucket, (key, ref.get("locator", ""), input_id,
                                    json.dumps(ref, sort_keys=True)))

    def _keep_sample(self, input_id: str) -> None:
        # reservoir sample (seeded: the same refs give the same buckets)
        self._seen += 1
        if len(self._sample) < SAMPLE_SIZE:
            self._sample.append(input_id)
        else:
            slot = self._rng.randrange(self._seen)
            if slot < SAMPLE_SIZE:
                self._sample[slot] = input_id

    # -- pass 2: a group's unit key is its smallest input id; rebucket by it, ordered ---
    def _by_unit(self) -> _Buckets:
        ordered = sorted(self._sample)
        bounds = [ordered[len(ordered) * k // self.buckets] for k in range(1, self.buckets)]
        self._sample = []
        by_unit = _Buckets(self.buckets, _SPILL_SCHEMA, self._dir, "unit", self.batch_rows)
        for bucket in range(self.buckets):
            # every copy of an input id is in this bucket (same group key)
            table = self._without_duplicates(self._by_group.table(bucket))
            self.fingerprint.add_all(table.column("input_id").to_pylist())
            keys = table.column("unit").to_pylist()
            ids = table.column("input_id").to_pylist()
            smallest: dict[str, str] = {}
            for key, input_id in zip(keys, ids):
                if input_id < smallest.get(key, "\U0010ffff"):
                    smallest[key] = input_id
            locators = table.column("locator").to_pylist()
            refs = table.column("input_ref").to_pylist()
            del table
            for key, locator, input_id, ref in zip(keys, locators, ids, refs):
                unit = smallest[key]
                by_unit.add(bisect.bisect_right(bounds, unit), (unit, locator, input_id, ref))
        by_unit.close_writers()
        return by_unit

    # -- pass 3: each ordered bucket sorted on its own gives the global order ------------
    def assigned(self, task_size: int) -> Iterator[pa.RecordBatch]:
        """``inputs.parquet`` rows in task order, `batch_rows` at a time (`OUTPUT_SCHEMA`).

        Can be called once. A repeated input id raised `DuplicateInputError` when the
        refs were read, unless they were read with `drop_duplicates` (then the repeats are
        skipped: the first read is kept)."""
        by_unit, self._units = self._units, None
        if by_unit is None:
            raise RuntimeError("SpilledRefs.assigned can be called only once")
        out: list[tuple[str, str, str]] = []
        index, filled = 0, 0
        for bucket in range(self.buckets):
            table = by_unit.table(bucket).sort_by(
                [("unit", "ascending"), ("locator", "ascending"), ("input_id", "ascending")])
            if pc.count_distinct(table.column("input_id")).as_py() != table.num_rows:
                # an id given twice with different task groups (never from one ref maker)
                raise DuplicateInputError("duplicate input ids in the input list")
            unit_rows: list[tuple[str, str]] = []
            current = None
            for unit, input_id, ref in zip(table.column("unit").to_pylist(),
                                           table.column("input_id").to_pylist(),
                                           table.column("input_ref").to_pylist()):
                if unit != current and unit_rows:
                    index, filled = self._place(unit_rows, index, filled, task_size, out)
                    unit_rows = []
                current = unit
                unit_rows.append((input_id, ref))
                if len(out) >= self.batch_rows:
                    yield _batch(out, OUTPUT_SCHEMA)
                    out = []
            if unit_rows:  # a unit never spans buckets (bucketed by its key)
                index, filled = self._place(unit_rows, index, filled, task_size, out)
            del table
        if out:
            yield _batch(out, OUTPUT_SCHEMA)

    @staticmethod
    def _place(unit_rows: list[tuple[str, str]], index: int, filled: int, task_size: int,
               out: list[tuple[str, str, str]]) -> tuple[int, int]:
        if filled and filled + len(unit_rows) > task_size:
            index, filled = index + 1, 0
        task = task_name(index)
        out.extend((input_id, task, ref) for input_id, ref in unit_rows)
        return index, filled + len(unit_rows)

    def _without_duplicates(self, table: pa.Table) -> pa.Table:
        if pc.count_distinct(table.column("input_id")).as_py() == table.num_rows:
            return table
        ids = table.column("input_id").to_pylist()
        seen: set[str] = set()
        keep = []
        for input_id in ids:
            keep.append(input_id not in seen)
            seen.add(input_id)
        if not self.drop_duplicates:
            repeated = next(i for i, k in zip(ids, keep) if not k)
            raise DuplicateInputError(f"duplicate input ids in the input list, e.g. {repeated}")
        return table.filter(pa.array(keep))
