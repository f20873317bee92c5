"""The parts of interleaving one at a time: figure placement in reading order (columns,
labels inside a figure), caption pairs and their reasons, chapter bounds, the image limit
(rendered in-process), and the settings' flags and validation."""

from __future__ import annotations

import argparse

import pytest

from pipelines.core.text import IMAGE_PLACEHOLDER
from pipelines.pdf import render
from pipelines.pdf.commands import add_pdf_arguments, config_from_args
from pipelines.pdf.config import PdfConfig
from pipelines.pdf.interleave import (
    ChapterDocuments,
    Figure,
    InterleavedDocument,
    caption_pair,
    page_document,
)
from pipelines.pdf.settings import PdfRenderSettings
from tests.pipelines import pdf_interleave_fixtures as fx

# Two columns, each with a block at the top and one at the bottom (reading order: left
# column first).
BLOCKS = [([0.1, 0.1, 0.45, 0.3], "A left top"), ([0.1, 0.6, 0.45, 0.8], "B left bottom"),
          ([0.55, 0.1, 0.9, 0.3], "C right top"), ([0.55, 0.6, 0.9, 0.8], "D right bottom")]


def figure(box, name="f"):
    return Figure(name.encode(), 0, box, "image")


def order(document: InterleavedDocument) -> list[str]:
    return [s if isinstance(s, str) else s.image.decode() for s in document.segments]


def test_a_figure_goes_where_it_stands_in_its_column():
    left, right = figure([0.1, 0.35, 0.45, 0.55], "L"), figure([0.55, 0.35, 0.9, 0.55], "R")
    assert order(page_document(BLOCKS, [left], 0)) == [
        "A left top", "L", "B left bottom", "C right top", "D right bottom"]
    assert order(page_document(BLOCKS, [right, left], 0)) == [
        "A left top", "L", "B left bottom", "C right top", "R", "D right bottom"]
    # At the foot of a column it follows the column's last block; spanning both columns
    # at the top it comes first.
    foot = figure([0.1, 0.85, 0.45, 0.95], "F")
    top = figure([0.1, 0.0, 0.9, 0.08], "T")
    assert order(page_document(BLOCKS, [foot, top], 0)) == [
        "T", "A left top", "B left bottom", "F", "C right top", "D right bottom"]


def test_text_inside_a_figure_is_part_of_the_image():
    chart = figure([0.1, 0.35, 0.45, 0.58], "chart")
    labels = ([0.2, 0.4, 0.3, 0.45], "axis label 2021")
    document = page_document(BLOCKS[:2] + [labels], [chart], 3)
    assert order(document) == ["A left top", "chart", "B left bottom"]
    part = document.part(6, {"page": 3})
    assert part["text"] == f"A left top\n\n{IMAGE_PLACEHOLDER}\n\nB left bottom"
    assert part["meta"]["kind"] == "interleaved" and part["meta"]["pages"] == [3]


def test_images_over_the_limit_keep_their_text_not_their_place():
    figures = [figure([0.1, 0.32 + 0.01 * i, 0.45, 0.33 + 0.01 * i], f"f{i}") for i in range(3)]
    part = page_document(BLOCKS[:2], figures, 0).part(2, {})
    assert part["text"].count(IMAGE_PLACEHOLDER) == 2
    assert [part["image"], *part["extra_images"]] == [b"f0", b"f1"]
    assert [d["reason"] for d in part["meta"]["images_dropped"]] == ["over_limit"]
    assert page_document(BLOCKS, [], 0).part(2, {}) is None  # no figure, no document


@pytest.mark.parametrize("caption,expected", [
    ("Figure 1: A lighthouse at dusk", ("A lighthouse at dusk", None)),
    ("Fig. 2.3. Rainfall per month (mm)", ("Rainfall per month (mm)", None)),
    ("Table S4 - Harbour tonnage by year", ("Harbour tonnage by year", None)),
    ("Figure 2", (None, "empty")),
    ("Figure 5: image", (None, "boilerplate")),
    ("Figure 3: DSC0001", (None, "file_name")),
    ("Figure shows the harbour", (None, "unlabelled")),
    ("The harbour was busy all day.", (None, "unlabelled")),
    ("", (None, "empty")),
])
def test_caption_pairs_and_why_not(caption, expected):
    assert caption_pair(caption) == expected


def test_chapters_are_bounded_by_pages_and_images():
    def page(index, images):
        segments = [f"text of page {index}"] + [figure([0, 0, 1, 1], f"p{index}i{k}")
                                                 for k in range(images)]
        return InterleavedDocument(segments, [index])

    # chapter 0: pages 0-4; chapter 1: page 5. At most 2 pages and 3 images a document.
    chapters = ChapterDocuments([5, 1], max_pages=2, max_images=3)
    done = [chapters.add(i, page(i, 2)) for i in range(6)]
    finished = [(d[1], d[2], d[0].pages) for d in done if d is not None]
    assert finished == [(0, 0, [0, 1]), (0, 1, [2, 3]), (0, 2, [4]), (1, 0, [5])]
    first = next(d for d in done if d is not None)[0]
    # The fourth image's bytes were let go as it arrived; the document keeps three.
    assert [f.image for f in first.figures] == [b"p0i0", b"p0i1", b"p1i0", b""]
    part = first.part(3, {})
    assert part["text"].count(IMAGE_PLACEHOLDER) == 3 and len(part["extra_images"]) == 2


def test_the_image_limit_and_switches_in_the_renderer(tmp_path):
    path = str(tmp_path / "figures.pdf")
    fx.figures_page(path)

    def derived(**settings):
        pages = [m[2] for m in render.iter_document(path, None, PdfRenderSettings(**settings))
                 if m[0] == "page"]
        return [part for result in pages for part in result["derived"]]

    [doc] = [p for p in derived(max_document_images=1) if p["kind"] == "interleaved"]
    assert doc["text"].count(IMAGE_PLACEHOLDER) == 1 and doc["extra_images"] == []
    assert fx.CHART_CAPTION in doc["text"]  # the second figure's text stays
    assert [d["reason"] for d in doc["meta"]["images_dropped"]] == ["over_limit"]
    kinds = [p["kind"] for p in derived(interleaved=False, captions=False)]
    assert kinds == ["figure", "figure"]
    # A figure under the minimum side is dropped as too small, with it its document.
    big = derived(min_figure_side=5000)
    assert big == []


def test_flags_reach_the_settings_and_bad_values_are_named():
    parser = argparse.ArgumentParser()
    add_pdf_arguments(parser)
    args = parser.parse_args(
        ["x.pdf", "--out", "o", "--max-document-images", "3", "--min-figure-side", "48",
         "--max-chapter-pages", "5", "--no-captions"])
    settings = config_from_args(args).render
    assert (settings.max_document_images, settings.min_figure_side, settings.max_chapter_pages,
            settings.captions, settings.interleaved) == (3, 48, 5, False, True)
    bad = PdfConfig(render=PdfRenderSettings(max_document_images=0, min_figure_side=0,
                                             max_chapter_pages=0))
    problems = " ".join(bad.problems())
    for name in ("max_document_images", "min_figure_side", "max_chapter_pages"):
        assert f"render.{name} must be >= 1" in problems


def test_the_chart_stage_reads_figures_not_their_documents_and_pairs():
    from pipelines.charts.stage import _worth_raster
    from pipelines.core.sample import Sample

    def sample(kind):
        return Sample.create("pdf", f"x&{kind}=0", image=b"png", meta={"pdf": {"kind": kind}})

    assert _worth_raster(sample("figure"))
    assert not _worth_raster(sample("interleaved")) and not _worth_raster(sample("caption"))


def test_a_failing_document_costs_only_the_document(tmp_path, monkeypatch):
    path = str(tmp_path / "figures.pdf")
    fx.figures_page(path)

    def broken(*args, **kwargs):
        raise ValueError("no place for this figure")

    monkeypatch.setattr(render, "_add_document", broken)
    [result] = [m[2] for m in render.iter_document(path, None, PdfRenderSettings())
                if m[0] == "page"]
    assert result["meta"]["interleaved_error"] == "ValueError: no place for this figure"
    assert [p["kind"] for p in result["derived"]] == ["figure", "figure", "caption", "caption"]
    assert "document" not in result  # never sent to the parent


def test_an_fb2_book_gives_its_images_in_order(tmp_path):
    path = str(tmp_path / "lighthouse.fb2")
    fx.illustrated_fb2(path)
    parts = [p for m in render.iter_document(path, None, PdfRenderSettings())
             if m[0] == "page" for p in m[2]["derived"] if p["kind"] == "interleaved"]
    [doc] = parts
    assert doc["meta"]["format"] == "FictionBook2" and doc["meta"]["chapter"] == 0
    assert [fx.tint(png) for png in [doc["image"], *doc["extra_images"]]] == ["warm", "cool"]
    pieces = [p.strip() for p in doc["text"].split(IMAGE_PLACEHOLDER)]
    assert pieces[0].endswith(fx.CHAPTER_TWO[0]) and pieces[1:] == list(fx.CHAPTER_TWO[1:])


def test_a_page_without_a_text_layer_gives_no_document(tmp_path):
    import pymupdf

    path = str(tmp_path / "scan.pdf")
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(pymupdf.Rect(100, 100, 500, 400), stream=fx.tinted_photo("warm"))
    page.insert_text((100, 420), "Fig. 1", fontsize=10)  # too little text to trust
    doc.save(path)
    [result] = [m[2] for m in render.iter_document(path, None, PdfRenderSettings())
                if m[0] == "page"]
    assert result["meta"]["interleaved_skipped"] == "text_layer_none"
    assert [p["kind"] for p in result["derived"]] == ["figure"]
