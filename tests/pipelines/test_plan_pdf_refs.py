"""`vlforge pdf` plans from a stream of refs: every listed size is a task group, which the
spilling planner keeps whole, so byte-identical files still meet in one task (run-wide
duplicate drop) without the driver holding the listing."""

from __future__ import annotations

import json
import random
import shutil

from pipelines.cli import main as vlforge
from pipelines.core.audit import audit_run
from pipelines.core.inputs import InputFile
from pipelines.core.planning import SpilledRefs, assign_tasks
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.pdf.pipeline import iter_pdf_refs
from tests.pipelines import pdf_fixtures


def listing(count: int, seed: int = 0) -> list[InputFile]:
    rng = random.Random(seed)
    # few distinct sizes among many files: many groups of two or more, some of one
    return [InputFile(f"s3://b/docs/{i:05d}.pdf", rng.choice([rng.randint(1, 40), None,
                                                               rng.randint(10**6, 10**9)]))
            for i in range(count)]


def grouped_only_when_shared(items: list[InputFile]) -> list[dict]:
    """The former refs: a task group only for sizes two or more files share."""
    sizes: dict[int, int] = {}
    for item in items:
        if item.size is not None:
            sizes[item.size] = sizes.get(item.size, 0) + 1
    refs = []
    for item in items:
        fields = {"path": item.url}
        if item.size is not None:
            fields["size"] = item.size
            if sizes[item.size] > 1:
                fields["task_group"] = f"size:{item.size}"
        refs.append(input_ref("pdf", item.url, **fields))
    return refs


def test_streamed_refs_plan_as_the_grouped_list_did():
    items = listing(3000)
    consumed = []
    refs = iter_pdf_refs(item for item in items if not consumed.append(item))
    next(refs)
    assert len(consumed) == 1  # a stream: nothing is listed ahead
    refs = iter_pdf_refs(items)
    # small batches and buckets: the refs are spilled and sorted bucket by bucket
    with SpilledRefs(refs, batch_rows=200, buckets=16) as spilled:
        rows = [row for batch in spilled.assigned(task_size=5) for row in batch.to_pylist()]
    streamed = {row["input_id"]: row["task"] for row in rows}
    before = {ref["input_id"]: task
              for task, ref in assign_tasks(grouped_only_when_shared(items), task_size=5)}
    assert streamed == before
    by_size: dict[int, set[str]] = {}
    for row in rows:
        size = json.loads(row["input_ref"]).get("size")
        if size is not None:
            by_size.setdefault(size, set()).add(row["task"])
    assert all(len(tasks) == 1 for tasks in by_size.values())
    assert len({row["task"] for row in rows}) > 100


def test_copies_in_far_apart_tasks_and_a_file_named_twice(tmp_path):
    corpus = pdf_fixtures.write_corpus(str(tmp_path / "all"))
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("text_table.pdf", "photo_scan.pdf", "blank_dup.pdf", "garbage.pdf"):
        shutil.copy(corpus[name], docs / name)
    # the same bytes under names far apart: with one file per task they would never meet
    shutil.copy(corpus["chart.pdf"], docs / "aaa.pdf")
    shutil.copy(corpus["chart.pdf"], docs / "zzz.pdf")
    out = str(tmp_path / "run")
    assert vlforge(["pdf", str(docs), str(docs / "aaa.pdf"), "--out", out, "--task-size", "1",
                    "--ocr", "none", "--no-charts", "--no-label"]) == 0
    report = audit_run(out)
    assert report.ok, report.to_dict()
    stats = RunDir(out).stats()
    assert stats["inputs"] == 6  # aaa.pdf named twice, planned once
    assert stats["dropped_by_reason"]["RenderPdfPages:duplicate_file"] == 1
    assert stats["errors_by_reason"] == {"RenderPdfPages:corrupt_file": 1}
