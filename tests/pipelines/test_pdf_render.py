"""The RenderPdfPages stage on real documents drawn with PyMuPDF, run outside Beam."""

import os
import signal

import pytest

from pipelines.core.outcome import Outcome
from pipelines.pdf.pipeline import RenderPdfPagesFn, pdf_refs
from pipelines.core.runner import seed_sample
from tests.pipelines.pdf_fixtures import write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(str(tmp_path_factory.mktemp("pdfs")))


@pytest.fixture(scope="module")
def rendered(corpus):
    """Every fixture through one stage instance, grouped by file name."""
    refs = pdf_refs(sorted(corpus.values()))
    records = RenderPdfPagesFn().run_local([seed_sample("pdf", r, "t00000") for r in refs])
    by_file: dict[str, list] = {}
    for record in records:
        ref = record.input_ref if isinstance(record, Outcome) else record.lineage["input_ref"]
        by_file.setdefault(os.path.basename(ref["path"]), []).append(record)
    return by_file


def _pages(records):
    return [r for r in records if not isinstance(r, Outcome) and r.meta["pdf"]["kind"] == "page"]


def _derived(records, kind):
    return [r for r in records if not isinstance(r, Outcome) and r.meta["pdf"]["kind"] == kind]


def _outcomes(records, kind=None):
    return [(r.reason, r.input_ref.get("page")) for r in records
            if isinstance(r, Outcome) and (kind is None or r.kind == kind)]


def test_text_page_has_image_words_lines_and_markdown(rendered):
    page = _pages(rendered["text_table.pdf"])[0]
    meta = page.meta["pdf"]
    assert page.image.startswith(b"\x89PNG")
    assert max(meta["width"], meta["height"]) == 1024
    assert meta["page"] == 0 and meta["page_count"] == 2 and not meta["needs_ocr"]
    assert meta["pymupdf_version"] and len(meta["file_sha256"]) == 64
    assert page.locator == f"sha256:{meta['file_sha256']}#page=0"
    assert page.markdown.startswith("# Quarterly Report")
    assert meta["lines"][0]["text"] == "Quarterly Report"  # reading order: heading first
    words = [w["text"] for w in meta["words"]]
    assert words[:2] == ["Quarterly", "Report"]
    for item in meta["words"] + meta["lines"]:
        x0, y0, x1, y1 = item["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    # the heading sits at the top left of the page image
    assert meta["lines"][0]["box"][1] < 0.15 and meta["lines"][0]["box"][0] < 0.2


def test_page_lineage_allows_retrying_one_page(rendered):
    expanded = [r for r in rendered["text_table.pdf"] if isinstance(r, Outcome)]
    assert [(o.kind, o.parts) for o in expanded] == [("expanded", 2)]
    for page in _pages(rendered["text_table.pdf"]):
        lineage = page.lineage
        assert lineage["parent_item"] == expanded[0].item_id
        assert lineage["input_id"] == expanded[0].input_id and lineage["task"] == "t00000"
        assert lineage["input_ref"]["page"] == page.meta["pdf"]["page"]
        assert lineage["item_id"] == lineage["input_ref"]["item_id"] != lineage["parent_item"]


def test_table_becomes_a_derived_sample_with_markdown_csv_and_caption(rendered):
    records = rendered["text_table.pdf"]
    page1 = [p for p in _pages(records) if p.meta["pdf"]["page"] == 1][0]
    [table] = _derived(records, "table")
    assert table.lineage["derived_from"] == page1.key
    assert table.meta["pdf"]["page_key"] == page1.key
    assert table.text.splitlines()[:2] == ["Region,Units,Revenue", "North,120,3400"]
    assert "|Region|Units|Revenue|" in table.markdown.replace(" ", "")
    assert table.meta["pdf"]["caption"].startswith("Table 1")
    assert (table.meta["pdf"]["rows"], table.meta["pdf"]["cols"]) == (4, 3)
    assert "|Region|Units|Revenue|" in page1.markdown.replace(" ", "")


def test_vector_chart_keeps_drawings_and_labels_for_chart_extraction(rendered):
    [page] = _pages(rendered["chart.pdf"])
    bars = [d for d in page.meta["pdf"]["drawings"] if d["type"] == "f"]
    assert len(bars) == 4 and all(d["fill"] == [0.2, 0.4, 0.8] for d in bars)
    heights = [d["box"][3] - d["box"][1] for d in sorted(bars, key=lambda d: d["box"][0])]
    assert heights[2] > heights[1] > heights[3] > heights[0]  # bars of 40, 65, 80, 55
    assert heights[2] / heights[0] == pytest.approx(80 / 40, rel=0.02)
    [figure] = _derived(rendered["chart.pdf"], "figure")
    meta = figure.meta["pdf"]
    assert meta["figure_source"] == "vector"
    assert meta["caption"] == "Figure 1: Sales by year (units)"
    assert {"0", "100", "2021", "2024"} <= {w["text"] for w in meta["words"]}
    assert len([d for d in meta["drawings"] if d["type"] == "f"]) == 4
    for drawing in meta["drawings"]:  # re-normalised to the crop
        assert all(-0.01 <= v <= 1.01 for v in drawing["box"])


def test_embedded_photo_is_a_figure_and_image_only_page_needs_ocr(rendered):
    records = rendered["photo_scan.pdf"]
    pages = {p.meta["pdf"]["page"]: p for p in _pages(records)}
    assert not pages[0].meta["pdf"]["needs_ocr"]
    assert pages[1].meta["pdf"]["needs_ocr"] and pages[1].meta["pdf"]["text_layer"] == "none"
    [figure] = _derived(records, "figure")
    assert figure.meta["pdf"]["figure_source"] == "image"
    assert figure.meta["pdf"]["caption"].startswith("Figure 2")
    assert figure.lineage["derived_from"] == pages[0].key
    width, height = figure.meta["pdf"]["width"], figure.meta["pdf"]["height"]
    assert 1.2 < width / height < 1.5  # the 360x270 pt photo, cropped at page scale


def test_blank_and_near_duplicate_pages_are_dropped_with_reasons(rendered):
    records = rendered["blank_dup.pdf"]
    assert [p.meta["pdf"]["page"] for p in _pages(records)] == [0]
    assert sorted(_outcomes(records, "dropped")) == [("blank_page", 1),
                                                     ("near_duplicate_page", 2)]


def test_bad_files_end_as_clear_records(rendered):
    assert _outcomes(rendered["encrypted.pdf"]) == [("encrypted", None)]
    assert _outcomes(rendered["garbage.pdf"]) == [("corrupt_file", None)]
    assert _outcomes(rendered["zero_pages.pdf"]) == [("no_pages", None)]
    assert _outcomes(rendered["chart_copy.pdf"]) == [("duplicate_file", None)]
    assert _outcomes(rendered["bomb.pdf"], "dropped") == [("image_too_large", 0)]
    [error] = [r for r in rendered["garbage.pdf"] if isinstance(r, Outcome)]
    assert error.kind == "error" and "garbage.pdf" in error.message


def test_truncated_file_is_accounted_page_by_page(rendered):
    records = rendered["truncated.pdf"]
    outcomes = [r for r in records if isinstance(r, Outcome)]
    if outcomes[0].kind == "expanded":  # MuPDF repaired what it could
        pages = {r.lineage["input_ref"]["page"] for r in records if not isinstance(r, Outcome)
                 and r.meta["pdf"]["kind"] == "page"}
        pages |= {o.input_ref["page"] for o in outcomes[1:]}
        assert pages == set(range(outcomes[0].parts))
    else:
        assert outcomes[0].kind == "error"


def test_enormous_page_renders_at_lower_dpi_and_a_degenerate_strip_is_dropped(rendered):
    [poster] = _pages(rendered["enormous.pdf"])
    meta = poster.meta["pdf"]
    assert (meta["width"], meta["height"]) == (1024, 1024) and meta["dpi"] < 6
    assert _outcomes(rendered["enormous.pdf"], "dropped") == [("degenerate_page", 1)]


def test_epub_pages_are_rendered_with_text_and_markdown(rendered):
    pages = _pages(rendered["book.epub"])
    assert len(pages) >= 1
    first = pages[0]
    assert first.meta["pdf"]["format"] == "EPUB" and not first.meta["pdf"]["needs_ocr"]
    assert "Chapter One" in first.text and first.markdown.lstrip().startswith("#")


def test_retry_of_one_page_renders_only_that_page(corpus, rendered):
    page = [p for p in _pages(rendered["text_table.pdf"]) if p.meta["pdf"]["page"] == 1][0]
    ref = page.lineage["input_ref"]
    records = RenderPdfPagesFn().run_local([seed_sample("pdf", dict(ref), "r1-t00000")])
    [again] = _pages(records)
    assert not [r for r in records if isinstance(r, Outcome)]  # no expansion on a retry
    assert len(_derived(records, "table")) == 1
    assert again.key == page.key and again.item_id == page.item_id
    assert again.lineage["parent_item"] == page.lineage["parent_item"]
    assert again.lineage["task"] == "r1-t00000" and again.image == page.image


def test_renderer_crash_mid_document_loses_only_its_remaining_pages(corpus):
    """A real crash: the renderer child is killed with SIGSEGV after it opened the document."""
    fn = RenderPdfPagesFn()
    fn.open()
    original = fn.renderer.render

    def crashing(path, pages=None):
        for message in original(path, pages):
            yield message
            if message[0] == "doc" and path.endswith("text_table.pdf"):
                os.kill(fn.renderer.proc.pid, signal.SIGSEGV)

    fn.renderer.render = crashing
    refs = pdf_refs([corpus["text_table.pdf"], corpus["chart.pdf"]])
    try:
        records = [out for r in refs for out in fn.process(seed_sample("pdf", r, "t0"))]
    finally:
        fn.close()
    by_kind = [(r.kind, r.reason) if isinstance(r, Outcome) else "page" for r in records]
    # text_table: expanded into 2 pages, both errors naming the crash; chart: rendered fine
    assert by_kind[:3] == [("expanded", "expanded"), ("error", "renderer_crashed"),
                           ("error", "renderer_crashed")]
    assert "SIGSEGV" in records[1].message
    assert "page" in by_kind[3:] and fn.renderer.restarts == 1


def test_time_limit_kills_a_slow_render_and_the_next_document_still_works(corpus):
    fn = RenderPdfPagesFn()
    fn.open()
    try:
        [first] = [r for r in fn.process(seed_sample("pdf", pdf_refs([corpus["chart.pdf"]])[0],
                                                     "t0")) if isinstance(r, Outcome)]
        fn.renderer.page_timeout = 1e-4  # no page can be rendered this fast
        slow = list(fn.process(seed_sample("pdf", pdf_refs([corpus["text_table.pdf"]])[0], "t0")))
        fn.renderer.page_timeout = 60
        after = list(fn.process(seed_sample("pdf", pdf_refs([corpus["photo_scan.pdf"]])[0], "t0")))
    finally:
        fn.close()
    assert first.kind == "expanded"
    reasons = [r.reason for r in slow if isinstance(r, Outcome) and r.kind == "error"]
    assert reasons and set(reasons) == {"timeout"}
    assert "time limit" in [r for r in slow if isinstance(r, Outcome)][-1].message
    assert len(_pages(after)) == 2 and fn.renderer.restarts >= 1


def test_crops_are_png_by_mupdf_with_the_same_pixels():
    import io

    from PIL import Image

    from pipelines.pdf import render as pdf_render

    image = Image.new("RGB", (61, 37), (250, 250, 250))
    for x in range(61):
        image.putpixel((x, x % 37), (x * 4, 255 - x * 4, (x * 37) % 256))
    png = pdf_render._png(image)
    assert png.startswith(b"\x89PNG")
    decoded = Image.open(io.BytesIO(png))
    assert decoded.mode == "RGB" and decoded.tobytes() == image.tobytes()
    grey = image.convert("L")  # other modes keep Pillow's encoder
    assert Image.open(io.BytesIO(pdf_render._png(grey))).tobytes() == grey.tobytes()


def test_the_image_size_check_falls_back_to_get_images_on_other_bindings(corpus, monkeypatch):
    """The decompression-bomb check walks pymupdf's low-level bindings; where they are not
    what it was written for, it uses `Page.get_images` and still finds the bomb."""
    import pymupdf

    from pipelines.pdf import render

    def other_bindings(*args):
        raise AttributeError("module 'pymupdf.mupdf' has no attribute 'pdf_dict_geta'")

    monkeypatch.setattr(render, "_oversized_image_scan", other_bindings)
    with pymupdf.open(corpus["bomb.pdf"]) as doc:
        assert "likely a decompression bomb" in render._oversized_image(doc[0], 150_000_000)
    with pymupdf.open(corpus["text_table.pdf"]) as doc:
        assert render._oversized_image(doc[0], 150_000_000) == ""


def test_the_image_size_check_keeps_what_each_xobject_is(tmp_path):
    """What each XObject is (an image and its size, another dict, a broken entry) is kept
    per document for the pages after the first; every page gets the answer and the
    MuPDF warnings a scan of its own gives: forms that name each other, a bomb reached
    through a form and a missing object, on pages with resource dicts of their own."""
    import pymupdf

    from pipelines.core.sample import as_png
    from pipelines.pdf import render
    from tests.pipelines.pdf_fixtures import photo_png

    doc = pymupdf.open()
    for _ in range(4):
        doc.new_page()
    image = doc[0].insert_image(pymupdf.Rect(0, 0, 50, 50), stream=as_png(photo_png(16, 16)))
    bomb = doc[0].insert_image(pymupdf.Rect(60, 0, 90, 50), stream=photo_png(8, 8))
    doc.xref_set_key(bomb, "Width", "100000")
    doc.xref_set_key(bomb, "Height", "100000")
    first, second, third = doc.get_new_xref(), doc.get_new_xref(), doc.get_new_xref()
    for xref, names in ((first, f"/Im {image} 0 R /Other {second} 0 R"),
                        (second, f"/Back {first} 0 R"),
                        (third, f"/Big {bomb} 0 R /Self {third} 0 R")):
        doc.update_object(xref, "<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] "
                                f"/Resources << /XObject << {names} >> >> >>")
        doc.update_stream(xref, b"q Q")
    pages = [f"/F {first} 0 R /Gone 9999 0 R", f"/A {image} 0 R /G {second} 0 R",
             f"/T {third} 0 R", f"/A {image} 0 R /F {first} 0 R"]
    for page, names in zip(doc, pages):
        doc.xref_set_key(page.xref, "Resources", f"<< /XObject << {names} >> >>")
    path = str(tmp_path / "forms.pdf")
    doc.save(path)

    render.quiet_mupdf()
    pymupdf.TOOLS.mupdf_warnings(reset=True)

    def scans(checked):
        answers = []
        with pymupdf.open(path) as reopened:
            for page in reopened:
                found = render._oversized_image(page, 1_000_000, checked)
                answers.append((found, pymupdf.TOOLS.mupdf_warnings(reset=True)))
        return answers

    kept = render.ImageChecks()
    alone = scans(None)
    assert scans(kept) == alone
    assert kept.xobjects  # what was kept served the pages after the first
    assert [bool(found) for found, _ in alone] == [False, False, True, False]
    assert f"xref {bomb} is 100000x100000" in alone[2][0]
    assert "is no image dict (9999 0 R)" in alone[0][1]
    assert all(render.CIRCULAR in warnings for _, warnings in (alone[0], alone[1], alone[3]))
