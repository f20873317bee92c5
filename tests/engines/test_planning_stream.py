"""Planning streams: the driver never holds every input ref, and plans exactly as before."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from pipelines.core import planning
from pipelines.core.audit import AuditReport
from pipelines.core.completion import MAX_LISTED, accounting_problems
from pipelines.core.inputs import expand_paths, iter_paths
from pipelines.core.run_dir import (
    INPUT_SCHEMA,
    MANIFEST_SCHEMA,
    OUTCOME_SCHEMA,
    RunDir,
    RunDirError,
)
from pipelines.core.runner import run_pipeline
from pipelines.core.task_lists import ReadTaskListFn, partition_count, write_task_lists
from pipelines.images.pipeline import iter_image_refs
from tests.pipelines.accounting_reference import check_accounting
from tests.pipelines.fixtures import write_images


def random_refs(rng: random.Random, count: int, hex_ids: bool) -> list[dict]:
    refs, ids = [], set()
    while len(refs) < count:
        input_id = f"{rng.getrandbits(40):010x}" if hex_ids else f"id{rng.randint(0, 10**6)}"
        if input_id in ids:
            continue
        ids.add(input_id)
        ref = {"input_id": input_id, "locator": f"loc{rng.randint(0, 40)}"}
        if rng.random() < 0.4:  # equal-size PDFs: a group must stay in one task
            ref["task_group"] = f"size:{rng.randint(0, 15)}"
        refs.append(ref)
    return refs


def streamed(refs, task_size: int, **kwargs) -> list[tuple[str, str, str]]:
    with planning.SpilledRefs(iter(refs), **kwargs) as spilled:
        return [(row["task"], row["input_id"], row["input_ref"])
                for batch in spilled.assigned(task_size) for row in batch.to_pylist()]


@pytest.mark.parametrize("batch_rows,buckets", [(7, 4), (10_000, 256), (3, 1), (5, 64)])
def test_streamed_plan_equals_the_in_memory_split(batch_rows, buckets):
    rng = random.Random(batch_rows * 1000 + buckets)
    for trial in range(12):
        refs = random_refs(rng, rng.randint(0, 200), hex_ids=trial % 2 == 0)
        task_size = rng.randint(1, 9)
        expected = [(task, ref["input_id"], json.dumps(ref, sort_keys=True))
                    for task, ref in planning.assign_tasks(refs, task_size)]
        assert streamed(refs, task_size, batch_rows=batch_rows, buckets=buckets) == expected
    grouped = streamed(refs, 3, batch_rows=batch_rows, buckets=buckets)
    task_of = {}
    for task, _, ref in grouped:
        group = json.loads(ref).get("task_group")
        if group:
            assert task_of.setdefault(group, task) == task  # groups stay whole


def test_the_driver_holds_a_batch_of_refs_not_all_of_them(tmp_path):
    alive = most = 0

    class Ref(dict):
        """A ref that counts itself while it lives."""

        def __del__(self):
            nonlocal alive
            alive -= 1

    def refs():
        nonlocal alive, most
        for index in range(2_000):
            ref = Ref(input_id=f"{index * 7919 % 2003:06d}-{index}", locator=f"l{index}")
            alive += 1
            most = max(most, alive)
            yield ref

    old = planning.BATCH_ROWS
    planning.BATCH_ROWS = 50
    try:
        pending = RunDir(str(tmp_path / "run")).plan_pending("images", refs(), {}, task_size=8)
    finally:
        planning.BATCH_ROWS = old
    assert most <= 52  # the first batch plus one (the peek that decides to spill)
    assert len(pending) == 250 and pending.inputs == 2_000
    assert sum(len(task.input_refs) for task in pending) == 2_000


def test_duplicates_are_refused_or_dropped(tmp_path):
    refs = [{"input_id": f"{i:03d}", "locator": f"l{i}"} for i in range(30)]
    twice = refs + refs[5:9]
    for batch_rows in (4, 1000):
        with pytest.raises(planning.DuplicateInputError, match="duplicate input ids"):
            streamed(twice, 4, batch_rows=batch_rows, buckets=3)
        assert streamed(twice, 4, batch_rows=batch_rows, buckets=3,
                        drop_duplicates=True) == streamed(refs, 4)
    with pytest.raises(RunDirError, match="duplicate input ids"):
        RunDir(str(tmp_path / "run")).plan("images", twice, {}, task_size=4)


def test_a_streamed_run_resumes_refuses_other_inputs_and_lists_tasks(tmp_path, monkeypatch):
    monkeypatch.setattr(planning, "BATCH_ROWS", 3)  # the spill path on a small run
    monkeypatch.setattr(planning, "BUCKETS", 4)
    paths = write_images(str(tmp_path / "in"), 9)
    out = str(tmp_path / "run")
    # a directory and one of its files: the file is planned once
    refs = iter_image_refs(iter_paths([str(tmp_path / "in"), paths[0]], (".png",)))
    stats = run_pipeline("images", refs, {"min_side": 8}, out, task_size=2,
                         drop_duplicates=True)
    assert stats["written"] == 9 and stats["tasks"] == {"done": 5, "total": 5}
    run = RunDir(out)
    assert run.inputs().num_rows == 9

    # resume: only the tasks whose markers are gone run again
    for task in ("t00001", "t00003"):
        run.fs.rm(run.path("tasks", f"{task}.json"))
    again = RunDir(out).plan_pending("images", iter_image_refs(expand_paths(
        [str(tmp_path / "in")], (".png",))), {}, task_size=2)
    assert list(again.task_ids()) == ["t00001", "t00003"] and len(again) == 2
    assert [t.task_id for t in again] == ["t00001", "t00003"]
    stats = run_pipeline("images", iter_image_refs(paths), {"min_side": 8}, out, task_size=2)
    assert stats["written"] == 9 and RunDir(out).complete

    with pytest.raises(RunDirError, match="different run"):
        RunDir(out).plan_pending("images", iter_image_refs(paths[:-1]), {}, task_size=2)


def test_task_lists_are_contiguous_parts_covering_every_pending_task(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    refs = [{"input_id": f"{i:04d}", "locator": f"l{i}"} for i in range(103)]
    tasks = run.plan("images", refs, {}, task_size=2)
    for partitions in (1, 7, partition_count(len(tasks))):
        write_task_lists(run.url, tasks, partitions)
        read = [list(ReadTaskListFn(run.url).process(p)) for p in range(partitions)]
        flat = [task for part in read for task in part]
        assert flat == [(t.task_id, t.input_refs) for t in tasks]  # in order, each once
        assert all(part for part in read)  # no partition is left without work


def _reference_problems(inputs: pa.Table, manifest: pa.Table, outcomes: pa.Table) -> dict:
    """The audit's rule row by row (as the completion check computed it before)."""
    input_rows = inputs.select(["input_id", "task"]).to_pylist()
    manifest_rows, outcome_rows = manifest.to_pylist(), outcomes.to_pylist()
    report = check_accounting([r["input_id"] for r in input_rows], manifest_rows,
                              outcome_rows, AuditReport(run=""))
    if report.accounted:
        return {}
    task_of = {r["input_id"]: r["task"] for r in input_rows}
    for row in [*outcome_rows, *manifest_rows]:
        task_of.setdefault(row["item_id"], row["task"])
    faulty = set(report.unaccounted) | set(report.duplicated) | {
        line.split(":", 1)[0] for line in report.missing_children}
    return {"unaccounted": report.unaccounted[:MAX_LISTED],
            "duplicated": report.duplicated[:MAX_LISTED],
            "missing_children": report.missing_children[:MAX_LISTED],
            "counts": {"unaccounted": len(report.unaccounted),
                       "duplicated": len(report.duplicated),
                       "missing_children": len(report.missing_children)},
            "tasks": sorted({task_of[i] for i in faulty if task_of.get(i)})}


def _row(schema: pa.Schema, **fields) -> dict:
    empty = {pa.string(): "", pa.int64(): 0, pa.float64(): 0.0, pa.binary(): b""}
    return {**{f.name: empty[f.type] for f in schema}, **fields}


def test_columnar_accounting_agrees_with_the_audit_rule():
    rng = random.Random(7)
    clean = problems = 0
    for _ in range(300):
        ids = [f"i{k}" for k in range(rng.randint(0, 25))]
        inputs = [_row(INPUT_SCHEMA, input_id=i, task=f"t{k // 3:05d}") for k, i in enumerate(ids)]
        manifest, outcomes = [], []
        sloppy = rng.random() < 0.5  # else: every input accounted once, expansions whole
        for index, item in enumerate(ids):
            if rng.random() < 0.3:
                kids = [f"{item}/p{j}" for j in range(rng.randint(1, 3))]
                outcomes.append(_row(OUTCOME_SCHEMA, kind="expanded", item_id=item,
                                     parts=len(kids), task=inputs[index]["task"]))
                for kid in kids:
                    manifest.append(_row(MANIFEST_SCHEMA, key=kid, item_id=kid,
                                         parent_item=item, task=inputs[index]["task"]))
            elif rng.random() < 0.8:
                manifest.append(_row(MANIFEST_SCHEMA, key=item, item_id=item,
                                     task=inputs[index]["task"]))
                if rng.random() < 0.3:  # derived samples never count
                    manifest.append(_row(MANIFEST_SCHEMA, key=item + "&d", item_id=item,
                                         derived_from=item, task=inputs[index]["task"]))
            else:
                outcomes.append(_row(OUTCOME_SCHEMA, kind=rng.choice(["dropped", "error"]),
                                     item_id=item, stage="s", reason="r",
                                     task=inputs[index]["task"]))
        for _ in range(rng.randint(0, 4) if sloppy else 0):
            if rng.random() < 0.5 and manifest:
                manifest.pop(rng.randrange(len(manifest)))
            elif ids:
                outcomes.append(_row(OUTCOME_SCHEMA, kind="error", item_id=rng.choice(ids),
                                     parent_item=rng.choice(ids + [""]), task="r1-t00000",
                                     stage="s", reason="r", parts=rng.randint(0, 2)))
        tables = (pa.Table.from_pylist(inputs, schema=INPUT_SCHEMA),
                  pa.Table.from_pylist(manifest, schema=MANIFEST_SCHEMA),
                  pa.Table.from_pylist(outcomes, schema=OUTCOME_SCHEMA))
        expected = _reference_problems(*tables)
        assert accounting_problems(*tables) == expected
        clean += not expected
        problems += bool(expected)
    assert clean > 50 and problems > 50  # both sides of the rule were exercised
