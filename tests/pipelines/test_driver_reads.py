"""Driver-side readers of a whole run hold a few fields per sample, not whole rows.

A run of millions of samples is read by `vlforge audit` (the hand-over to training audits
every run), `shards inspect`, `label`, `retry`, the report's mix and the trainer's split
filters in one process. These tests pin *what* they read and hold (which manifest
columns, which outcomes, which keys), not how much memory that takes, so they cannot
flake; bench/driver_memory.py measures the memory per sample at two run sizes.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.audit import AuditReport, account_tables, audit_run
from pipelines.core.export import inspect_run
from pipelines.core.outcome import Outcome
from pipelines.core.run_dir import (
    DEDUP_REMOVED,
    MANIFEST,
    MANIFEST_SCHEMA,
    OUTCOME_SCHEMA,
    OUTCOMES,
    RunDir,
    RunDirError,
)
from pipelines.core.sample import Sample
from pipelines.core.shards import TMP_MARK
from pipelines.core.split import VALIDATION
from tests.pipelines.accounting_reference import check_accounting
from tests.pipelines.driver_fixtures import example_run, write_run
from tests.pipelines.fixtures import png_bytes


@pytest.fixture()
def run(tmp_path):
    return example_run(str(tmp_path / "run"))


class Reads:
    """Records every parquet read a RunDir makes: (file, columns or None for all)."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, tuple | None]] = []
        read_table, iter_batches = RunDir._read_table, RunDir._iter_batches

        def spy_table(run, *parts, schema=None, columns=None):
            self.calls.append(("/".join(parts), None if columns is None else tuple(columns)))
            return read_table(run, *parts, schema=schema, columns=columns)

        def spy_batches(run, name, columns, batch_rows=65_536):
            self.calls.append((name, tuple(columns)))
            return iter_batches(run, name, columns, batch_rows)

        monkeypatch.setattr(RunDir, "_read_table", spy_table)
        monkeypatch.setattr(RunDir, "_iter_batches", spy_batches)
        original = pq.ParquetFile.iter_batches

        def spy_file(parquet, *args, columns=None, **kwargs):
            if columns is None:
                self.calls.append(("<ParquetFile>", None))
            return original(parquet, *args, columns=columns, **kwargs)

        monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy_file)

    def columns_of(self, name: str) -> set[str]:
        """Every column of `name` read so far; fails on a read of all its columns."""
        read = set()
        for file, columns in self.calls:
            if file in (name, "<ParquetFile>"):
                assert columns is not None, f"{name} read whole"
                read.update(columns)
        return read


@pytest.mark.parametrize("reader, allowed", [
    (lambda run: run.shard_names(), {"shard"}),
    (lambda run: run.split_keys("train"), {"key", "split"}),
    (lambda run: run.split_of("nope"), {"key", "split"}),
    (lambda run: inspect_run(run.url), {"key", "shard", "bytes", "source", "taxonomy_leaf"}),
    (lambda run: audit_run(run.url, verify_shards=False),
     {"key", "shard", "item_id", "parent_item", "derived_from", "image_sha256"}),
    (lambda run: list(run.iter_samples(payloads=False)), {"shard"}),
    (lambda run: __import__("pipelines.label.pipeline", fromlist=["label_refs"])
     .label_refs([run.url]), {"key", "shard"}),
    (lambda run: __import__("pipelines.app.mix", fromlist=["run_categories"])
     .run_categories(run.url, sft=False),
     {"source", "taxonomy_leaf", "num_images", "locator", "derived_from", "split"}),
], ids=["shard_names", "split_keys", "split_of", "inspect", "audit", "iter_samples",
        "label_refs", "mix"])
def test_readers_read_only_the_manifest_columns_they_use(run, monkeypatch, reader, allowed):
    # a whole manifest row (content signatures included) is ~2 KB as a dict, the
    # columns a reader uses a few hundred bytes
    reads = Reads(monkeypatch)
    reader(run)
    assert reads.columns_of(MANIFEST) <= allowed


def test_the_audit_reads_only_the_outcome_columns_it_checks(run, monkeypatch):
    reads = Reads(monkeypatch)
    report = audit_run(run.url)
    assert report.ok and report.errors == 1 and report.dropped == 1
    assert "message" not in reads.columns_of(OUTCOMES)
    assert "input_ref" not in reads.columns_of(OUTCOMES)


def test_removed_keys_read_only_the_key_column(run, monkeypatch):
    key = next(iter(run.iter_samples())).key
    schema = pa.schema([("key", pa.string()), ("duplicate_of", pa.string()),
                        ("reason", pa.string())])
    run.write_side_table([{"key": key, "duplicate_of": "x" * 32, "reason": "same_text"}],
                         schema, DEDUP_REMOVED)
    reads = Reads(monkeypatch)
    assert run.removed_keys() == {key}
    assert reads.columns_of(DEDUP_REMOVED) == {"key"}


def test_split_of_keeps_only_the_keys_off_the_train_side(run):
    held_out = run.split_keys(VALIDATION)
    assert held_out  # the split puts at least one document on each side
    keys = [row["key"] for row in run.iter_manifest_rows(["key"])]
    assert {k for k in keys if run.split_of(k) == VALIDATION} == held_out
    assert set(run._splits) == held_out  # not an entry per sample


def test_retry_makes_objects_of_the_errors_only(run, monkeypatch):
    made = []
    from_row = Outcome.from_row.__func__
    monkeypatch.setattr(Outcome, "from_row",
                        classmethod(lambda cls, row: made.append(row) or from_row(cls, row)))
    errors = run.outcomes("error")
    assert [o.kind for o in errors] == ["error"] and len(made) == 1
    assert len(run.outcomes()) == 8  # 6 expansions, a drop, the error


def random_rows(rng: random.Random) -> tuple[list, list, list]:
    """Inputs, manifest rows and outcome rows over a few ids, some outside the inputs."""
    ids = [f"i{n}" for n in range(rng.randint(0, 12))]

    def pick() -> str:
        return rng.choice(ids) if ids and rng.random() < 0.9 else f"x{rng.randint(0, 3)}"

    def parent() -> str | None:
        return pick() if rng.random() < 0.4 else rng.choice(["", None])

    manifest = [{"key": f"k{n}", "shard": f"s{rng.randint(0, 2)}", "item_id": pick(),
                 "parent_item": parent(), "derived_from": rng.choice(["", "", None, "k0"]),
                 "image_sha256": ""} for n in range(rng.randint(0, 15))]
    outcomes = [{"kind": rng.choice(["dropped", "error", "expanded"]),
                 "stage": rng.choice(["A", "B"]), "reason": rng.choice(["r", "s"]),
                 "item_id": pick(), "parent_item": parent(),
                 "parts": rng.choice([0, 1, 2, 3, None])} for _ in range(rng.randint(0, 10))]
    return [pick() for _ in range(rng.randint(0, 8))], manifest, outcomes


def test_the_columnar_audit_reports_what_the_row_by_row_rule_does():
    """`account_tables` against `check_accounting` on random runs with every fault the
    rule knows: items without an outcome, with two, expansions missing parts."""
    rng = random.Random(7)
    manifest_schema = pa.schema([MANIFEST_SCHEMA.field(c) for c in (
        "key", "shard", "item_id", "parent_item", "derived_from", "image_sha256")])
    outcome_schema = pa.schema([OUTCOME_SCHEMA.field(c) for c in (
        "kind", "stage", "reason", "item_id", "parent_item", "parts")])
    faults = set()
    for _ in range(200):
        inputs, manifest, outcomes = random_rows(rng)
        rows = check_accounting(inputs, manifest, outcomes, AuditReport(run="r"))
        tables = account_tables(pa.chunked_array([pa.array(inputs, pa.string())]),
                                pa.Table.from_pylist(manifest, schema=manifest_schema),
                                pa.Table.from_pylist(outcomes, schema=outcome_schema),
                                AuditReport(run="r"))
        assert tables.to_dict() == rows.to_dict()
        faults.update(f for f in ("unaccounted", "duplicated", "missing_children")
                      if getattr(rows, f))
    assert faults == {"unaccounted", "duplicated", "missing_children"}  # all were tried


def test_a_manifest_rewrite_lets_go_of_each_task_before_the_next(run):
    """`rewrite_manifests` (taxonomy migrations) stages each task's rewritten manifest
    before reading the next, instead of holding every task's rows until the end."""
    tasks = sorted(run.done_tasks())
    assert len(tasks) > 1
    staged_when_seen: dict[str, list[str]] = {}

    def update(row):
        staged_when_seen.setdefault(row["task"], [
            n.rsplit("/", 1)[-1] for n in run.fs.ls(run.path("tasks"), detail=False)
            if n.rsplit("/", 1)[-1].startswith(TMP_MARK)])
        row["taxonomy_leaf"] = "x"

    run.rewrite_manifests(update)
    assert staged_when_seen[tasks[0]] == []
    assert len(staged_when_seen[tasks[-1]]) == len(tasks) - 1  # the earlier ones, written
    assert set(run.manifest(["taxonomy_leaf"]).column("taxonomy_leaf").to_pylist()) == {"x"}
    assert not [n for n in run.fs.ls(run.path("tasks"), detail=False) if TMP_MARK in n]


def test_a_manifest_rewrite_that_fails_changes_nothing(run):
    def manifests() -> dict[str, bytes]:
        return {t: Path(run.path("tasks", f"{t}.manifest.parquet")).read_bytes()
                for t in run.done_tasks()}

    before = manifests()
    last = max(run.done_tasks())

    def update(row):
        if row["task"] == last:
            raise ValueError("no such leaf")
        row["taxonomy_leaf"] = "x"

    with pytest.raises(ValueError):
        run.rewrite_manifests(update)
    assert manifests() == before
    assert not [n for n in run.fs.ls(run.path("tasks"), detail=False) if TMP_MARK in n]


def test_ocr_eval_keeps_ids_of_the_chosen_samples_not_the_samples(tmp_path):
    from pipelines.ocr.evaluate import select_samples

    def with_lines(number: int, text: str) -> Sample:
        return Sample.create("pdf", f"file://d.pdf#page={number}", image=png_bytes(seed=number),
                             text=text, meta={"pdf": {"page": number, "lines": [
                                 {"box": [0, 0, 1, 1], "text": text}]}})

    run = write_run(str(tmp_path / "run"), {"d": [with_lines(n, f"line {n}") for n in range(5)]
                                            + [with_lines(5, "")]})
    selected = select_samples(run.url, None)
    assert len(selected) == 5 and all(
        isinstance(shard, str) and isinstance(key, str) for shard, key in selected.chosen)
    expected = [s for s in run.iter_samples() if s.text]
    assert [(s, origin, ref) for s, origin, ref in selected] == [
        (s, "pdf", s.text) for s in expected]
    assert len(select_samples(run.url, 2)) == 2


def test_label_refs_stream_into_planning_and_refuse_an_unfinished_run_first(run, tmp_path):
    from pipelines.label.pipeline import iter_label_refs, label_refs

    refs = iter_label_refs([run.url])
    assert not isinstance(refs, list)  # planning reads them a batch at a time
    assert list(refs) == label_refs([run.url]) and len(label_refs([run.url])) == 11
    unfinished = RunDir(str(tmp_path / "nothing"))
    with pytest.raises(RunDirError):
        iter_label_refs([run.url, unfinished.url])  # before a single ref is asked for


def test_finalize_writes_the_manifest_a_row_group_at_a_time(run, monkeypatch):
    """The merged manifest is written as the done tasks are read (a row group at a
    time), the same bytes as the merged table written whole; the merge itself reads only
    `MERGE_COLUMNS` of each row."""
    import pipelines.core.run_dir as run_dir_module

    manifest, _, _ = run.merged()
    monkeypatch.setattr(run_dir_module, "ROW_GROUP_ROWS", 2)
    run._write_table(manifest, MANIFEST_SCHEMA, MANIFEST)  # the whole table, small groups
    expected = Path(run.path(MANIFEST)).read_bytes()

    whole_reads: list[str] = []  # task manifests read with every column, in order
    events: list[tuple[str, int]] = []
    read_table, write_table = RunDir._read_table, pq.ParquetWriter.write_table

    def spy_read(self, *parts, schema=None, columns=None):
        if parts[-1].endswith(".manifest.parquet") and columns is None:
            whole_reads.append(parts[-1])
        return read_table(self, *parts, schema=schema, columns=columns)

    def spy_write(writer, table, *args, **kwargs):
        events.append(("group", len(whole_reads)))
        return write_table(writer, table, *args, **kwargs)

    monkeypatch.setattr(RunDir, "_read_table", spy_read)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", spy_write)
    run.finalize()
    assert Path(run.path(MANIFEST)).read_bytes() == expected
    tasks = len(run.done_tasks())
    assert len(whole_reads) == tasks  # each task's rows read whole once: to be written
    assert events and events[0][1] < tasks  # the first group left before the last task
