"""Inputs added during a run (crawl rounds) are appended as new parts, never by rewriting
inputs.parquet; every reader sees all parts, and runs written before parts existed still
read. `check_added_inputs` is shared with the object-store variant
(tests/engines/test_gcs_added_inputs.py)."""

from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.audit import audit_run
from pipelines.core.run_dir import RunDir, RunDirError
from pipelines.core.runner import input_ref
from tests.pipelines.fixtures import make_sample
from tests.pipelines.test_run_dir import write_run


def refs_for(indexes) -> list[dict]:
    return [input_ref("test", make_sample(i).locator) for i in indexes]


def finish_pending(run: RunDir, count: int) -> list:
    """Do every pending task as the sink would (the run's samples are make_sample(0..count))
    and finalize; returns the tasks that were pending."""
    samples = {input_ref("test", s.locator)["input_id"]: s
               for s in (make_sample(i) for i in range(count))}
    pending = run.plan("test", run.input_refs(), {"fixture": True}, task_size=3)
    for task in pending:
        with run.shard_writer("test", task.task_id, max_count=2) as writer:
            for ref in task.input_refs:
                sample = samples[ref["input_id"]]
                writer.write(sample.with_meta("lineage", {
                    **sample.lineage, "input_id": ref["input_id"], "item_id": ref["item_id"],
                    "task": task.task_id}))
        run.write_task(task.task_id, writer.shards, writer.rows, [])
    run.finalize()
    return pending


def parts(run: RunDir) -> list[str]:
    if not run.fs.exists(run.path("inputs")):
        return []
    return sorted(p.rsplit("/", 1)[-1] for p in run.fs.ls(run.path("inputs"), detail=False))


def check_added_inputs(url: str) -> None:
    """Two rounds of added inputs on a finished run at `url`, a leftover temporary part
    between them, then the added tasks done: every reader sees every input."""
    run, _ = write_run(url, count=5, task_size=3)  # t00000, t00001
    first = run.fs.cat(run.path("inputs.parquet"))
    run.add_inputs(refs_for(range(5, 9)), task_size=3)  # t00002, t00003
    # a writer killed mid-part leaves only a temporary name: readers never see it
    run.fs.pipe(run.path("inputs", ".tmp-part-00002.parquet"), b"half a parquet file")
    run.add_inputs(refs_for(range(9, 11)), task_size=3)  # t00004
    assert run.fs.cat(run.path("inputs.parquet")) == first  # never rewritten
    assert [p for p in parts(run) if not p.startswith(".tmp-")] == [
        "part-00001.parquet", "part-00002.parquet"]

    assert len(run.input_refs()) == 11
    tasks = run.inputs().column("task").to_pylist()
    assert tasks == ["t00000"] * 3 + ["t00001"] * 2 + ["t00002"] * 3 + ["t00003"] + \
        ["t00004"] * 2
    for clash in (refs_for([0]), refs_for([6]), refs_for([12, 12])):
        with pytest.raises(RunDirError, match="already in the run|given twice"):
            run.add_inputs(clash, task_size=3)
    assert not run.complete and not audit_run(url).ok  # the added inputs are not done yet

    pending = finish_pending(run, 11)
    assert [t.task_id for t in pending] == ["t00002", "t00003", "t00004"]
    assert run.complete and run.stats()["inputs"] == 11
    assert run.stats()["tasks"] == {"done": 5, "total": 5}
    report = audit_run(url)
    assert report.ok, report.to_dict()
    # a re-run with the same inputs (first run's and added) has nothing left to do
    assert run.plan("test", run.input_refs(), {"fixture": True}, task_size=3) == []
    assert "inputs" not in run.side_files()


def test_added_inputs_are_new_parts_local(tmp_path):
    check_added_inputs(str(tmp_path / "run"))


def test_added_inputs_are_new_parts_on_an_fsspec_filesystem():
    check_added_inputs(f"memory://runs-{uuid.uuid4().hex[:8]}/run")


def test_a_run_whose_added_inputs_were_written_into_inputs_parquet_still_reads(tmp_path):
    run, _ = write_run(str(tmp_path / "run"), count=5, task_size=3)
    # the former add_inputs: inputs.parquet rewritten with the new rows appended
    path = run.path("inputs.parquet")
    table = pq.read_table(path)
    extra = pa.table({"input_id": [r["input_id"] for r in refs_for([5, 6])],
                      "task": ["t00002", "t00002"],
                      "input_ref": [json.dumps(r, sort_keys=True) for r in refs_for([5, 6])]})
    pq.write_table(pa.concat_tables([table, extra.cast(table.schema)]), path)
    assert len(run.input_refs()) == 7
    run.add_inputs(refs_for([7]), task_size=3)  # after the last task, old rows included
    assert parts(run) == ["part-00001.parquet"]
    assert run.inputs().column("task").to_pylist()[-3:] == ["t00002", "t00002", "t00003"]
    pending = finish_pending(run, 8)
    assert [t.task_id for t in pending] == ["t00002", "t00003"]
    assert audit_run(run.url).ok
