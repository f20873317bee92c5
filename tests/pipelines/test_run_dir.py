"""RunDir's public API: the one place that names shards, lists and reads samples, adds
inputs, writes side files and rewrites manifests (here without Beam: plan → writer →
write_task → finalize, as the sink does)."""

from __future__ import annotations

import os
import uuid

import pyarrow as pa
import pytest

from pipelines.core.audit import audit_run
from pipelines.core.run_dir import RunDir, RunDirError, SampleNotFound, SampleReader
from pipelines.core.runner import input_ref
from pipelines.core.shards import iter_shard_samples
from tests.pipelines.fixtures import make_sample


def write_run(url: str, count: int = 5, task_size: int = 3, max_count: int = 2,
              finish: bool = True) -> tuple[RunDir, list]:
    """A run of `count` test samples, one input each; `finish=False` leaves the last task
    undone and the run unfinalized."""
    samples = [make_sample(i) for i in range(count)]
    refs = {input_ref("test", s.locator)["input_id"]: (input_ref("test", s.locator), s)
            for s in samples}
    run = RunDir(url)
    tasks = run.plan("test", [r for r, _ in refs.values()], {"fixture": True},
                     task_size=task_size)
    for task in tasks[:-1] if not finish else tasks:
        with run.shard_writer("test", task.task_id, max_count=max_count) as writer:
            for ref in task.input_refs:
                sample = refs[ref["input_id"]][1]
                writer.write(sample.with_meta("lineage", {
                    **sample.lineage, "input_id": ref["input_id"], "item_id": ref["item_id"],
                    "task": task.task_id}))
        run.write_task(task.task_id, writer.shards, writer.rows, [])
    if finish:
        run.finalize()
    return run, samples


@pytest.fixture()
def local_run(tmp_path):
    return write_run(str(tmp_path / "run"))


def test_shards_are_named_by_task_and_listed_with_their_urls(local_run):
    run, samples = local_run
    names = run.shard_names()
    assert names == sorted(names) and all(n.startswith("test-t0000") for n in names)
    assert run.shard_urls() == [os.path.join(run.url, n) for n in names]
    # the URL is what the one streaming reader (and webdataset) opens
    assert sum(len(list(iter_shard_samples(u))) for u in run.shard_urls()) == len(samples)


def test_samples_stream_with_or_without_payloads(local_run):
    run, samples = local_run
    full = {s.key: s for s in run.iter_samples()}
    assert set(full) == {s.key for s in samples}
    assert all(s.image and s.text for s in full.values())
    light = list(run.iter_samples(payloads=False))
    assert {s.key for s in light} == set(full)
    assert all(s.image is None and s.text is None and s.meta["lineage"] for s in light)


def test_one_sample_is_read_by_key(local_run):
    run, samples = local_run
    row = run.manifest().to_pylist()[3]
    sample = run.read_sample(row["shard"], row["key"])
    original = next(s for s in samples if s.key == row["key"])
    assert (sample.image, sample.text) == (original.image, original.text)
    with pytest.raises(SampleNotFound):
        run.read_sample(row["shard"], "0" * 32)
    reader = SampleReader()
    assert reader.read(run.url, row["shard"], row["key"]).key == row["key"]
    reader.close()
    run.close()


def test_a_run_on_another_filesystem_goes_through_fsspec():
    url = f"memory://runs-{uuid.uuid4().hex[:8]}/run"
    run, samples = write_run(url)
    assert run.complete and all(u.startswith("memory://") for u in run.shard_urls())
    assert {s.key for s in run.iter_samples()} == {s.key for s in samples}
    row = run.manifest().to_pylist()[0]
    assert run.read_sample(row["shard"], row["key"]).key == row["key"]
    assert audit_run(url).ok


def test_added_inputs_become_new_tasks_and_duplicates_are_refused(local_run):
    run, _ = local_run
    before = run.input_refs()
    new = [input_ref("test", f"test://new/{i}") for i in range(4)]
    run.add_inputs(new, task_size=3)
    assert len(run.input_refs()) == len(before) + 4
    tasks = run.inputs().column("task").to_pylist()
    assert sorted(set(tasks)) == ["t00000", "t00001", "t00002", "t00003"]
    with pytest.raises(RunDirError, match="already in the run"):
        run.add_inputs(new[:1], task_size=3)
    # the added inputs are planned like any other: only their tasks are pending
    pending = run.plan("test", run.input_refs(), {}, task_size=3)
    assert [t.task_id for t in pending] == ["t00002", "t00003"]


def test_side_files_cannot_overwrite_the_contract(local_run):
    run, _ = local_run
    run.write_text("a\n", "notes.txt")
    run.write_bytes(b"\x89PNG", "plot.png")
    schema = pa.schema([("key", pa.string())])
    run.write_side_table([{"key": "k"}], schema, "labels.parquet")
    assert run.read_side_table("labels.parquet") == [{"key": "k"}]
    assert run.side_files() == ["labels.parquet", "notes.txt", "plot.png"]
    assert run.side_files("*.txt") == ["notes.txt"]
    assert run.read_side_table("absent.parquet") == []
    for name in ("manifest.parquet", "inputs.parquet", "run.json", "_SUCCESS",
                 "tasks/t00000.json", "test-t00000-000000.tar"):
        with pytest.raises(RunDirError, match="contract"):
            run.write_text("x", name)
    assert audit_run(run.url).ok


def test_manifest_rewrites_reach_the_task_manifests(local_run):
    run, _ = local_run

    def label(row):
        row["taxonomy_leaf"] = "ocr"

    assert run.rewrite_manifests(label, dry_run=True) is None
    assert set(run.manifest().column("taxonomy_leaf").to_pylist()) == {""}
    stats = run.rewrite_manifests(label)
    assert stats["samples_by_taxonomy_leaf"] == {"ocr": 5}
    run.finalize()  # re-merging the task files (as a retry does) keeps the change
    assert set(run.manifest().column("taxonomy_leaf").to_pylist()) == {"ocr"}


def snapshot(root: str) -> dict[str, tuple[int, int]]:
    found = {}
    for base, _, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            found[os.path.relpath(path, root)] = (os.stat(path).st_mtime_ns,
                                                  os.path.getsize(path))
    return found


def test_audit_writes_nothing_even_on_an_unfinished_run(tmp_path):
    run, _ = write_run(str(tmp_path / "run"), finish=False)
    before = snapshot(run.url)
    report = audit_run(run.url)
    assert snapshot(run.url) == before
    assert not report.complete and not report.ok
    assert report.written == 3 and len(report.unaccounted) == 2
    assert not run.finalized and not run.exists("stats.json")


def test_reads_across_many_shards_keep_few_files_open(tmp_path):
    from pipelines.core.run_dir import OPEN_SHARDS

    run, samples = write_run(str(tmp_path / "run"), count=7, task_size=7, max_count=1)
    rows = run.manifest().to_pylist()
    assert len(run.shard_names()) == 7 > OPEN_SHARDS
    for row in rows + rows[::-1]:  # the second pass reopens files of indexed shards
        assert run.read_sample(row["shard"], row["key"]).text == \
            next(s.text for s in samples if s.key == row["key"])
        assert sum(index.is_open for index in run._indexes.values()) <= OPEN_SHARDS
    indexes = list(run._indexes.values())
    run.close()
    assert indexes and not any(index.is_open for index in indexes)


def _temporaries(run: RunDir) -> list[str]:
    return sorted(p[len(run.root) + 1:] for p in run.fs.find(run.root) if "/.tmp-" in p)


def test_a_killed_attempts_temporaries_are_removed_wherever_they_were_left(tmp_path):
    # A kill between a write and its rename (on object storage: between the copy and the
    # delete) leaves a temporary beside the file: in tasks/, inputs/ or the run's root.
    run, _ = write_run(str(tmp_path / "run"), count=5, task_size=3, finish=False)
    left = ["tasks/.tmp-t00000.json", "inputs/.tmp-part-00001.parquet",
            ".tmp-1a2b3c4d-test-t00001-000000.tar"]
    for name in left:
        run.fs.makedirs(run.path(name).rsplit("/", 1)[0], exist_ok=True)
        run.fs.pipe(run.path(name), b"half a file")
    assert _temporaries(run) == sorted(left)

    pending = run.plan("test", run.input_refs(), {"fixture": True}, task_size=3)
    assert [t.task_id for t in pending] == ["t00001"]  # a done task's temporary too
    assert _temporaries(run) == []

    run.fs.pipe(run.path("tasks", ".tmp-t00001.json"), b"half a file")
    run.finalize()  # finalizing (no attempt writing) removes them as well
    assert _temporaries(run) == []
