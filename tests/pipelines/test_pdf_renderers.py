"""Several renderer children per worker (``renderers``, issue 17): the records are those of
one renderer, in the same order; a crash, a time limit or a stage error costs one document
and never leaves a renderer out of step with its requests. And the page pHash the renderer
hands the sink is the one the sink would compute."""

import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.core import shards
from pipelines.core.outcome import Outcome
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import run_pipeline, seed_sample
from pipelines.core.sample import sha256_hex
from pipelines.core.shards import ShardWriter
from pipelines.core.signatures import image_phash
from pipelines.core.task_end import TaskEnd
from pipelines.pdf.pipeline import RenderPdfPagesFn, pdf_refs
from tests.pipelines.pdf_fixtures import write_corpus

CONFIG = {"ocr": None, "charts": False, "label": False}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(str(tmp_path_factory.mktemp("pdfs")))


def _seeds(paths, task="t00000"):
    return [seed_sample("pdf", ref, task) for ref in pdf_refs(paths)]


def _comparable(record):
    """A record without what differs between two runs (creation time, render timings)."""
    if isinstance(record, Outcome):
        return ("outcome", record.kind, record.reason, record.item_id, record.task)
    meta = json.loads(json.dumps(record.meta))
    meta["lineage"].pop("created", None)
    meta.get("pdf", {}).pop("render_s", None)
    meta.get("pdf", {}).pop("render_cpu_s", None)
    images = [hashlib.sha256(i).hexdigest() for i in record.images]
    return (record.key, images, record.text, record.markdown, json.dumps(meta, sort_keys=True))


def _page_images(records):
    return {r.key: r.image for r in records
            if not isinstance(r, Outcome) and r.meta["pdf"]["kind"] == "page"}


def test_documents_in_flight_give_the_records_of_one_renderer_in_order(corpus):
    paths = sorted(corpus.values())
    one = RenderPdfPagesFn().run_local(_seeds(paths))
    stage = RenderPdfPagesFn(renderers=3)
    several = stage.run_local([*_seeds(paths), TaskEnd.of("t00000")])
    assert several[-1] == TaskEnd.of("t00000")  # the task's end passes after its records
    assert [_comparable(r) for r in several[:-1]] == [_comparable(r) for r in one]
    assert sum(r.proc is not None or r.restarts for r in stage.pool) == 0  # all stopped


def test_a_task_is_finished_before_the_next_task_passes(corpus):
    paths = sorted(corpus.values())
    records = RenderPdfPagesFn(renderers=2).run_local(
        [*_seeds(paths[:4], "t00000"), TaskEnd.of("t00000"), *_seeds(paths[4:], "t00001"),
         TaskEnd.of("t00001")])
    tasks = [r.task if isinstance(r, Outcome) else r.lineage["task"] for r in records]
    first_end = records.index(TaskEnd.of("t00000"))
    assert set(tasks[:first_end]) == {"t00000"} and set(tasks[first_end + 1:]) == {"t00001"}


def test_pipeline_with_two_renderers_writes_the_same_run(corpus, tmp_path):
    paths = sorted(corpus.values())
    runs = {}
    for renderers, overlap in ((1, False), (2, False), (2, True)):
        out = str(tmp_path / f"r{renderers}{overlap}")
        stats = run_pipeline("pdf", pdf_refs(paths),
                             {**CONFIG, "renderers": renderers, "overlap_tasks": overlap}, out,
                             beam_args=["--runner=DirectRunner"], task_size=4)
        run = RunDir(out)
        runs[renderers, overlap] = (
            stats["written"], [_comparable(s) for s in run.iter_samples()],
            [(o.kind, o.reason, o.item_id) for o in run.outcomes()])
        assert run.info()["config"]["renderers"] == renderers
    assert runs[1, False][0] > 0
    assert runs[1, False] == runs[2, False] == runs[2, True]


def test_overlapping_tasks_start_the_next_task_while_one_finishes(corpus):
    """With overlap_tasks, a slow last document of a task does not hold the next task's
    documents back, and records still leave in input order, each task's before its end."""
    paths = sorted(corpus.values())
    stage = RenderPdfPagesFn(renderers=2, overlap_tasks=True)
    stage.open()
    events = []
    submit = stage.jobs.submit

    def logged_submit(path, pages=None):
        events.append(("submit", os.path.basename(path)))
        return submit(path, pages)

    slow = stage.pool[0].render, stage.pool[1].render

    def slowly(original):
        def render(path, pages=None):
            if path == paths[1]:  # the first task's last document: its renderer lags
                time.sleep(1.0)
            yield from original(path, pages)
        return render

    stage.jobs.submit = logged_submit
    stage.pool[0].render, stage.pool[1].render = (slowly(r) for r in slow)
    inputs = [*_seeds(paths[:2], "t00000"), TaskEnd.of("t00000"),
              *_seeds(paths[2:4], "t00001"), TaskEnd.of("t00001")]
    records = []
    try:
        stream = itertools.chain((o for record in inputs for o in stage.process(record)),
                                 stage._drain())  # lazily: events keep their order
        for out in stream:
            records.append(out)
            if out == TaskEnd.of("t00000"):
                events.append(("end", "t00000"))
    finally:
        stage.close()
    assert events.index(("submit", os.path.basename(paths[2]))) < events.index(("end", "t00000"))
    expected = RenderPdfPagesFn().run_local(inputs)
    assert [_comparable(r) for r in records] == [_comparable(r) for r in expected]


def test_a_crash_on_one_renderer_costs_only_its_document(corpus):
    stage = RenderPdfPagesFn(renderers=2)
    stage.open()
    victim = stage.pool[0]
    original = victim.render

    def crashing(path, pages=None):
        for message in original(path, pages):
            yield message
            if message[0] == "doc" and path.endswith("text_table.pdf"):
                os.kill(victim.proc.pid, signal.SIGSEGV)

    victim.render = crashing
    # text_table goes to the first renderer, chart to the second, both in flight at once
    seeds = _seeds([corpus["text_table.pdf"], corpus["chart.pdf"], corpus["photo_scan.pdf"]])
    try:
        records = [out for s in [*seeds, TaskEnd.of("t00000")] for out in stage.process(s)]
    finally:
        stage.close()
    by_file: dict[str, list] = {}
    for r in records[:-1]:
        ref = r.input_ref if isinstance(r, Outcome) else r.lineage["input_ref"]
        by_file.setdefault(os.path.basename(ref["path"]), []).append(
            (r.kind, r.reason) if isinstance(r, Outcome) else r.meta["pdf"]["kind"])
    assert by_file["text_table.pdf"] == [("expanded", "expanded"),
                                         ("error", "renderer_crashed"),
                                         ("error", "renderer_crashed")]
    assert by_file["chart.pdf"].count("page") == 1
    assert by_file["photo_scan.pdf"].count("page") == 2  # on the restarted child
    assert victim.restarts == 1 and stage.pool[1].restarts == 0


@pytest.mark.parametrize("renderers", [1, 2])
def test_a_stage_error_mid_document_leaves_the_renderer_in_step(corpus, renderers):
    """The stage fails on a document's first page: that document is one error, and the
    next document gets its own pages (not the abandoned document's leftovers)."""
    stage = RenderPdfPagesFn(renderers=renderers)
    first, second = corpus["text_table.pdf"], corpus["photo_scan.pdf"]
    expected = _page_images(RenderPdfPagesFn().run_local(_seeds([second])))
    original = stage._page_records

    def failing(page_seed, sha, result, seed):
        if seed.lineage["input_ref"]["path"] == first:
            raise RuntimeError("a stage bug on this document")
        return original(page_seed, sha, result, seed)

    stage._page_records = failing
    records = stage.run_local([*_seeds([first, second]), TaskEnd.of("t00000")])
    errors = [r for r in records if isinstance(r, Outcome) and r.kind == "error"]
    assert [e.reason for e in errors] == ["RuntimeError"]
    assert errors[0].input_ref["path"] == first
    assert _page_images(records) == expected and len(expected) == 2


def test_time_waiting_for_the_consumer_is_not_charged_to_the_document(corpus):
    """A document's time limit counts the renderer's time, not the stage's: here the
    consumer spends longer on the pages than the whole document may take."""
    stage = RenderPdfPagesFn(doc_timeout=2.0)
    stage.open()
    try:
        records = []
        for record in stage.process(_seeds([corpus["text_table.pdf"]])[0]):
            time.sleep(1.2)
            records.append(record)
    finally:
        stage.close()
    assert not [r for r in records if isinstance(r, Outcome) and r.kind == "error"]
    assert len(_page_images(records)) == 2


def test_the_renderers_perceptual_hash_is_the_writers(corpus, tmp_path):
    """The renderer hands the sink the manifest pHash of each page and of each crop
    (computed from the pixels before PNG encoding; caption pairs and interleaved
    documents reuse a crop's image); the manifest must hold what decoding the PNG
    gives, for every sample."""
    records = RenderPdfPagesFn().run_local(_seeds(sorted(corpus.values())))
    samples = [r for r in records if not isinstance(r, Outcome)]
    kinds = {s.meta["pdf"]["kind"] for s in samples if s.image}
    assert {"page", "figure", "caption", "interleaved"} <= kinds
    handed_over = [sha256_hex(s.image) in shards._KNOWN_PHASHES for s in samples if s.image]
    assert handed_over and all(handed_over)  # the writer uses these, not its own decode
    with ShardWriter(str(tmp_path), "s") as writer:
        rows = [writer.write(s) for s in samples]
    pages = [r for r, s in zip(rows, samples) if s.meta["pdf"]["kind"] == "page"]
    assert len(pages) >= 8 and all(r["image_phash"] for r in rows)
    assert [r["image_phash"] for r in rows] == [image_phash(s.image) for s in samples]
    assert [r["image_sha256"] for r in rows] == [sha256_hex(s.image) for s in samples]


def test_the_renderer_child_makes_text_boxes_as_before_without_pymupdf4llm():
    """The child skips pymupdf4llm (0.2 CPU-s a start), whose import switched MuPDF's quad
    corrections off for the whole process; the renderer now does that itself, so words
    and lines keep the boxes every earlier run (and the golden files) had. On the shared
    corpus the boxes of 48 pages differ when it is on."""
    probe = ("import sys; sys.modules['pymupdf4llm'] = None; "
             "import pymupdf; before = pymupdf.TOOLS.unset_quad_corrections(); "
             "from pipelines.pdf import render; "
             "print(bool(before), bool(pymupdf.TOOLS.unset_quad_corrections()))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__))))).stdout.split()
    assert out == ["False", "True"]


def test_renderers_default_to_the_cores_when_the_pipeline_runs_in_one_process(monkeypatch):
    from pipelines.pdf import config as pdf_config

    monkeypatch.setattr(pdf_config.os, "sched_getaffinity", lambda pid: set(range(6)))
    assert pdf_config.default_renderers([]) == 6
    assert pdf_config.default_renderers(["--runner=DirectRunner"]) == 6
    assert pdf_config.default_renderers(["--direct_num_workers", "1"]) == 6
    # several Beam workers, or another engine: one renderer each
    assert pdf_config.default_renderers(["--direct_num_workers=2",
                                          "--direct_running_mode=multi_processing"]) == 1
    assert pdf_config.default_renderers(["--direct_num_workers=0"]) == 1
    assert pdf_config.default_renderers(["--runner=DaskRunner"]) == 1
    assert pdf_config.default_renderers(["--runner", "PortableRunner"]) == 1
    monkeypatch.setattr(pdf_config.os, "sched_getaffinity", lambda pid: set(range(64)))
    assert pdf_config.default_renderers([]) == pdf_config.MAX_DEFAULT_RENDERERS
