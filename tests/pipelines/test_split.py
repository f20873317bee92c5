"""The held-out split: decided per source document, recorded in the manifest, read by the
trainer (train) and by `vlforge eval` (validation)."""

from __future__ import annotations

import os
from collections import defaultdict

import pyarrow as pa
import pymupdf
import pytest

from pipelines.core.run_dir import RunDir
from pipelines.core.runner import run_pipeline
from pipelines.core.split import TRAIN, VALIDATION, assign_splits
from pipelines.pdf.pipeline import pdf_refs

CONFIG = {"ocr": None, "charts": False, "label": False}


def multi_page_pdf(path: str, number: int, pages: int) -> None:
    """A PDF of `pages` pages, each with its own words (so no page is a near-duplicate)."""
    doc = pymupdf.open()
    for page_no in range(pages):
        page = doc.new_page()
        page.insert_text((72, 80), f"Document {number} page {page_no}", fontsize=20)
        words = " ".join(f"w{number}x{page_no}x{i}" for i in range(60))
        page.insert_textbox(pymupdf.Rect(72, 110, 540, 700), words, fontsize=11)
        page.draw_rect(pymupdf.Rect(72 + 30 * page_no, 600, 200 + 30 * number, 700),
                       color=(0, 0, 0), fill=(0.1 * (number % 9), 0.5, 0.2), width=1)
    doc.save(path)


@pytest.fixture(scope="module")
def pdf_run(tmp_path_factory):
    """A real pdf pipeline run over 8 PDFs of 2-4 pages, 30% of documents held out."""
    base = tmp_path_factory.mktemp("split")
    paths = []
    for number in range(8):
        path = os.path.join(base, f"doc{number}.pdf")
        multi_page_pdf(path, number, pages=2 + number % 3)
        paths.append(path)
    out = str(base / "run")
    run_pipeline("pdf", pdf_refs(paths), CONFIG, out, task_size=3, validation_fraction=0.3)
    return RunDir(out).require_complete()


@pytest.mark.slow
def test_no_document_straddles_the_split(pdf_run):
    rows = pdf_run.manifest().to_pylist()
    sides: dict[str, set[str]] = defaultdict(set)
    files: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        sides[row["document"]].add(row["split"])
        files[row["document"]].add(row["input_id"])
    assert len(rows) >= 16  # several multi-page PDFs, every page written
    assert len(sides) == 8  # one document per PDF file
    assert all(len(found) == 1 for found in sides.values()), sides
    assert all(len(found) == 1 for found in files.values())
    counts = {split: sum(1 for found in sides.values() if split in found)
              for split in (TRAIN, VALIDATION)}
    assert counts[TRAIN] >= 1 and counts[VALIDATION] >= 1
    assert pdf_run.stats()["documents_by_split"] == counts
    # the readers: train and validation keys partition the run
    train, validation = pdf_run.split_keys(TRAIN), pdf_run.split_keys(VALIDATION)
    assert train and validation and not train & validation
    assert train | validation == {row["key"] for row in rows}
    assert {s.key for s in pdf_run.iter_samples(payloads=False, split=VALIDATION)} == validation


@pytest.mark.slow
def test_split_is_deterministic_and_recorded(pdf_run):
    before = {row["key"]: row["split"] for row in pdf_run.manifest().to_pylist()}
    pdf_run.finalize()  # re-merging the tasks decides the same sides
    after = {row["key"]: row["split"] for row in pdf_run.manifest().to_pylist()}
    assert before == after
    assert pdf_run.info()["run"]["validation_fraction"] == 0.3


@pytest.mark.slow
def test_trainer_stream_never_sees_validation(pdf_run):
    from training.data import run_streams

    stream = run_streams([pdf_run.url], {}, seed=0, rank=0, world_size=1, shuffle_buffer=4)
    seen = {next(stream).key for _ in range(200)}
    assert seen == pdf_run.split_keys(TRAIN)


def test_assign_splits_rules():
    docs = [f"doc{i}" for i in range(50)]
    splits = assign_splits(docs, 0.2)
    assert splits == assign_splits(list(reversed(docs)), 0.2)  # order does not matter
    assert 2 <= sum(s == VALIDATION for s in splits.values()) <= 20
    # at least one document each side from two documents on, whatever the fraction
    for fraction in (0.001, 0.999):
        two = assign_splits(["a", "b"], fraction)
        assert sorted(two.values()) == [TRAIN, VALIDATION]
    assert set(assign_splits(["only"], 0.5).values()) <= {TRAIN, VALIDATION}
    assert set(assign_splits(docs, 0).values()) == {TRAIN}
    with pytest.raises(ValueError):
        assign_splits(docs, 1.0)


def test_old_manifest_reads_as_train(tmp_path):
    """A manifest written before the split columns existed reads as all train."""
    from pipelines.core.run_dir import MANIFEST, MANIFEST_SCHEMA

    run = RunDir(str(tmp_path / "old"))
    old_schema = pa.schema([f for f in MANIFEST_SCHEMA if f.name not in ("document", "split")])
    row = {name: "" for name in old_schema.names}
    row.update(key="k1", input_id="in1", image_bytes=0, num_images=0, text_chars=0, bytes=0,
               taxonomy_confidence=0.0)
    run._write_table([row], old_schema, MANIFEST)
    table = run.manifest()
    assert table.column("split").to_pylist() == [TRAIN]
    assert table.column("document").to_pylist() == ["in1"]
    assert run.split_keys(VALIDATION) == set()


@pytest.mark.slow
def test_samples_read_from_a_run_carry_its_split(pdf_run):
    from pipelines.core.run_dir import SampleReader

    reader = SampleReader()
    try:
        for row in pdf_run.manifest().to_pylist()[:6]:
            sample = reader.read(pdf_run.url, row["shard"], row["key"])
            assert sample.lineage["split"] == row["split"]
    finally:
        reader.close()


def test_a_derived_run_keeps_the_split_its_samples_carry(tmp_path):
    """A run of samples read from other runs (label, sft) keeps their sides; a document
    with one held-out sample is held out whole; samples without a side get one by hash."""
    from pipelines.core.runner import input_ref
    from pipelines.core.sample import Sample
    from tests.training.conftest import write_run_dir

    samples = []
    for index, (document, split) in enumerate([("a", VALIDATION), ("a", ""), ("b", TRAIN),
                                               ("b", TRAIN), ("c", ""), ("d", "")]):
        locator = f"fixture://{index}"
        ref = input_ref("label", locator)
        lineage = {"input_id": ref["input_id"], "item_id": ref["item_id"],
                   "document": document, **({"split": split} if split else {})}
        samples.append(Sample.create("label", locator, lineage=lineage, text="x"))
    run = RunDir(write_run_dir(tmp_path / "derived", "label", samples))
    sides = {row["key"]: row["split"] for row in run.manifest().to_pylist()}
    assert [sides[s.key] for s in samples[:4]] == [VALIDATION, VALIDATION, TRAIN, TRAIN]
    assert {sides[s.key] for s in samples[4:]} <= {TRAIN, VALIDATION}
