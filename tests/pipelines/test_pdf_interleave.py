"""PDF pages and e-book chapters with figures become interleaved documents, figure captions
become caption pairs, and none of it leaks into the text-only corpus: real PyMuPDF-drawn
documents through the real `vlforge pdf` CLI (Beam DirectRunner, in-process)."""

from __future__ import annotations

import glob
import io
import json
import os

import pytest
from PIL import Image

from model.collate import VLCollator
from model.processor import build_processor
from model.tokenizer import train_tiny_tokenizer
from pipelines.cli import main as vlforge
from pipelines.core.audit import audit_run
from pipelines.core.run_dir import RunDir
from pipelines.core.text import IMAGE_PLACEHOLDER
from tests.pipelines import pdf_interleave_fixtures as fx

POST_FLAGS = ["--ocr", "none", "--no-charts", "--no-label"]
FILES = {"figures.pdf": fx.figures_page, "junk.pdf": fx.junk_caption_page,
         "lighthouse.epub": fx.illustrated_epub}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One `vlforge pdf` run over the three fixtures: {file name: [samples]} plus the run."""
    base = tmp_path_factory.mktemp("interleave")
    paths = []
    for name, make in FILES.items():
        paths.append(str(base / name))
        make(paths[-1])
    out = str(base / "run")
    assert vlforge(["pdf", *paths, "--out", out, "--json", *POST_FLAGS]) == 0
    by_file: dict[str, list] = {name: [] for name in FILES}
    for sample in RunDir(out).iter_samples():
        by_file[os.path.basename(sample.meta["pdf"]["path"])].append(sample)
    return {"out": out, "samples": by_file}


def of_kind(samples, kind):
    return [s for s in samples if s.meta["pdf"]["kind"] == kind]


def test_every_derived_sample_is_accounted_for(run):
    report = audit_run(run["out"])
    assert report.ok, report.to_dict()
    manifest = RunDir(run["out"]).manifest().to_pylist()
    kinds = sorted(r["locator"].rsplit("&", 1)[1].split("=")[0] for r in manifest
                   if r["derived_from"])
    # figures.pdf: 2 figures, 2 captions, 1 document; junk.pdf: 1 figure, 1 document;
    # the book: 2 figures, 1 chapter document (its figures have no labelled caption)
    assert kinds == ["caption"] * 2 + ["figure"] * 5 + ["interleaved"] * 3
    assert report.derived == 10
    two = [r for r in manifest if r["locator"].endswith("&interleaved=0") and r["num_images"] == 2]
    assert len(two) == 2  # figures.pdf and the book's chapter


def test_a_page_with_two_figures_is_one_interleaved_document(run):
    samples = run["samples"]["figures.pdf"]
    [page] = of_kind(samples, "page")
    [doc] = of_kind(samples, "interleaved")
    assert doc.locator == f"{page.locator}&interleaved=0"
    assert doc.lineage["derived_from"] == page.key
    assert len(doc.images) == 2 and doc.text.count(IMAGE_PLACEHOLDER) == 2
    # Reading order: the photo after the opening paragraph, the chart after the middle one,
    # each caption after its figure.
    before, between, after = doc.text.split(IMAGE_PLACEHOLDER)
    assert before.strip() == fx.OPENING
    assert between.split() == f"{fx.PHOTO_CAPTION} {fx.MIDDLE}".split()
    assert after.split() == f"{fx.CHART_CAPTION} {fx.CLOSING}".split()
    assert [f["source"] for f in doc.meta["pdf"]["figures"]] == ["image", "vector"]
    # The first image is the (warm) photo's crop, the second the chart's (mostly white).
    assert fx.tint(doc.images[0]) == "warm"
    with Image.open(io.BytesIO(doc.images[1])) as chart:
        assert chart.convert("L").resize((1, 1)).getpixel((0, 0)) > 150
    figures = of_kind(samples, "figure")
    assert [f.image for f in figures] == list(doc.images)  # the same crops, in order


def test_the_training_sequence_holds_two_576_token_blocks_in_place(run):
    [doc] = of_kind(run["samples"]["figures.pdf"], "interleaved")
    processor = build_processor("7b", train_tiny_tokenizer())
    tok, image, n = processor.tokenizer, processor.image_token_id, processor.num_image_tokens
    assert n == 576
    encoded = VLCollator(processor, max_length=None).encode(doc)
    ids = encoded.input_ids
    starts = [i for i, t in enumerate(ids) if t == image and ids[i - 1] != image]
    assert len(starts) == 2 and ids.count(image) == 2 * 576
    for start in starts:
        assert ids[start:start + 576] == [image] * 576 and ids[start + 576] != image
    parts = doc.text.split(IMAGE_PLACEHOLDER)
    assert tok.decode(ids[1:starts[0]]) == parts[0]
    assert tok.decode(ids[starts[0] + 576:starts[1]]) == parts[1]
    assert tok.decode(ids[starts[1] + 576:-1]) == parts[2]
    assert len(encoded.images) == 2


def test_an_epub_chapter_with_two_images_is_one_document(run):
    samples = run["samples"]["lighthouse.epub"]
    [doc] = of_kind(samples, "interleaved")  # chapter 1 has no image; no per-page documents
    meta = doc.meta["pdf"]
    assert meta["chapter"] == 1 and meta["chapter_part"] == 0 and meta["format"] == "EPUB"
    assert [fx.tint(png) for png in doc.images] == ["warm", "cool"]
    pieces = [p.strip() for p in doc.text.split(IMAGE_PLACEHOLDER)]
    assert pieces[0].endswith(fx.CHAPTER_TWO[0]) and pieces[0].startswith("The Lamp")
    assert pieces[1:] == [fx.CHAPTER_TWO[1], fx.CHAPTER_TWO[2]]
    assert "keeper's log" not in doc.text  # chapter 1 is a document of its own (no images)


def test_figure_captions_become_caption_pairs_and_junk_is_dropped(run):
    figures_pdf = run["samples"]["figures.pdf"]
    pairs = of_kind(figures_pdf, "caption")
    assert sorted(p.text for p in pairs) == ["Rainfall per month at the harbour gauge",
                                             "The harbour at dawn, seen from the lighthouse"]
    crops = {f.meta["pdf"]["caption"]: f.image for f in of_kind(figures_pdf, "figure")}
    for pair in pairs:  # the picture is its figure's crop; the label is cut off the text
        assert pair.image == crops[pair.meta["pdf"]["caption"]]
        assert pair.meta["pdf"]["caption"].endswith(pair.text)
    junk = run["samples"]["junk.pdf"]
    assert of_kind(junk, "caption") == []
    [figure] = of_kind(junk, "figure")
    assert figure.meta["pdf"]["caption"] == fx.JUNK_CAPTION
    assert figure.meta["pdf"]["caption_problem"] == "file_name"
    # the book's figures sit next to body text, not a caption
    assert {f.meta["pdf"]["caption_problem"]
            for f in of_kind(run["samples"]["lighthouse.epub"], "figure")} == {"unlabelled"}


def test_tiny_and_decorative_images_are_dropped_with_a_reason(run):
    junk = run["samples"]["junk.pdf"]
    [page] = of_kind(junk, "page")
    assert page.meta["pdf"]["figures_dropped"] == {"decorative": 1, "too_small": 1}
    [doc] = of_kind(junk, "interleaved")
    assert len(doc.images) == 1 and doc.text.count(IMAGE_PLACEHOLDER) == 1
    assert sorted(d["reason"] for d in doc.meta["pdf"]["images_dropped"]) == [
        "decorative", "too_small"]


def test_hf_datasets_loads_the_multi_image_shards(run):
    import datasets

    from pipelines.core.export import hf_features_for

    # Plain inference reads the image members off the first five samples, so it fails
    # or drops 1.png whenever (by input-id order, i.e. the temporary path) a two-image
    # document is or is not among them; the run's manifest says which members exist.
    urls = sorted(glob.glob(os.path.join(run["out"], "*.tar")))
    count = len(RunDir(run["out"]).manifest())
    features = hf_features_for([run["out"]])
    assert {"png", "1.png"} <= set(features) and "2.png" not in features
    typed = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train",
                                  features=features)
    assert typed.num_rows == count
    rows = [r for r in typed if r["json"]["num_images"] == 2]
    assert len(rows) == 2 and all(r["1.png"] is not None for r in rows)
    assert all(r["txt"].count(IMAGE_PLACEHOLDER) == 2 for r in rows)


def test_text_build_has_no_placeholder_and_counts_each_document_once(run, tmp_path):
    out = str(tmp_path / "corpus.jsonl")
    assert vlforge(["text", "build", run["out"], "--out", out, "--split", "all",
                    "--min-chars", "10"]) == 0
    with open(out, encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle]
    assert docs and not any(IMAGE_PLACEHOLDER in d["text"] for d in docs)
    with open(f"{out}.stats.json", encoding="utf-8") as handle:
        stats = json.load(handle)
    # one document per source file; the 10 derived samples are read and skipped
    assert stats["documents_seen"] == 3 and stats["derived_skipped"] == 10
    book = next(d for d in docs if "keeper" in d["text"])
    assert fx.CHAPTER_TWO[1] in book["text"] and book["parts"] == 2  # its two pages
