"""The renderer's cost rules (issue 17), checked by what it does rather than by time: grid
clustering gives pymupdf's regions, caps are applied and recorded, one text page and one
drawings read per page, markdown from the extracted blocks."""

import random

import pymupdf
import pytest

from pipelines.core.clusters import cluster_boxes
from pipelines.pdf import render
from pipelines.pdf.markdown import HeadingLevels, page_markdown
from pipelines.pdf.settings import PdfRenderSettings
from tests.pipelines.pdf_fixtures import bar_chart, text_and_table
from tests.pipelines.pdf_golden import dense_vectors


def _fixed_point(boxes, tol):
    """Reference: merge regions within `tol` of each other until none are (quadratic)."""
    regions = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if not (a[2] < b[0] - tol or a[0] > b[2] + tol or a[3] < b[1] - tol
                        or a[1] > b[3] + tol):
                    regions[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                  max(a[3], b[3])]
                    del regions[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(tuple(r) for r in regions)


@pytest.mark.parametrize("seed", range(5))
def test_grid_clusters_equal_the_pairwise_fixed_point(seed):
    rng = random.Random(seed)
    boxes = []
    for _ in range(300):
        x, y = rng.uniform(0, 500), rng.uniform(0, 700)
        w, h = rng.choice([(rng.uniform(0, 4), rng.uniform(0, 4)),
                           (rng.uniform(20, 200), rng.uniform(0, 2)),
                           (rng.uniform(0, 2), rng.uniform(20, 200))])
        boxes.append((x, y, x + w, y + h))
    got = sorted(cluster_boxes(boxes, 3.0, 3.0, min_size=False))
    assert got == _fixed_point(boxes, 3.0)


def test_grid_clusters_match_pymupdf_on_a_chart_page(tmp_path):
    path = str(tmp_path / "chart.pdf")
    bar_chart(path)
    with pymupdf.open(path) as doc:
        page = doc[0]
        expected = sorted(tuple(r) for r in page.cluster_drawings())
        got = sorted(cluster_boxes([d["rect"] for d in page.get_cdrawings()]))
    assert len(got) == len(expected) >= 1
    for a, b in zip(got, expected):
        assert a == pytest.approx(b)


def test_cluster_cap_is_applied_and_recorded(tmp_path):
    path = str(tmp_path / "dense.pdf")
    dense_vectors(path)
    with pymupdf.open(path) as doc:
        capped = render.render_page(doc, 0, PdfRenderSettings(max_cluster_paths=500,
                                                              markdown=False))
        full = render.render_page(doc, 0, PdfRenderSettings(markdown=False))
    assert capped["meta"]["clusters_truncated"] and capped["meta"]["clustered_paths"] == 500
    assert capped["meta"]["cluster_cap"] == 500
    assert not full["meta"]["clusters_truncated"]
    assert full["meta"]["clustered_paths"] == full["meta"]["drawings_total"] > 2500


def test_one_text_page_and_one_drawings_read_per_page(tmp_path, monkeypatch):
    paths = {"text": str(tmp_path / "text.pdf"), "chart": str(tmp_path / "chart.pdf")}
    text_and_table(paths["text"])
    bar_chart(paths["chart"])
    calls = {"textpage": 0, "drawings": 0, "cdrawings": 0}

    def counting(name, original):
        def wrapper(self, *args, **kwargs):
            calls[name] += 1
            return original(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(pymupdf.Page, "get_textpage",
                        counting("textpage", pymupdf.Page.get_textpage))
    monkeypatch.setattr(pymupdf.Page, "get_drawings",
                        counting("drawings", pymupdf.Page.get_drawings))
    monkeypatch.setattr(pymupdf.Page, "get_cdrawings",
                        counting("cdrawings", pymupdf.Page.get_cdrawings))
    def render_counted(name, page_index, **settings):
        with pymupdf.open(paths[name]) as doc:
            for key in calls:
                calls[key] = 0
            return render.render_page(doc, page_index, PdfRenderSettings(**settings))

    for name in ("text", "chart"):
        # words, lines, text, markdown and chart spans: one text page
        result = render_counted(name, 0, figures=False)
        assert result["markdown"] and result["meta"]["words"]
        assert calls == {"textpage": 1, "drawings": 0, "cdrawings": 1}, name
        # figures add pymupdf's image census (its own text page, with images)
        render_counted(name, 0)
        assert calls == {"textpage": 2, "drawings": 0, "cdrawings": 1}, name
    # a page with a ruled table: find_tables builds its own character list and its header
    # check reads the text above the table (pymupdf internals: 3 more text pages, only
    # on pages with ruling lines both ways), but no drawings are read again
    result = render_counted("text", 1, figures=False)
    assert [d["kind"] for d in result["derived"]] == ["table"]
    assert calls == {"textpage": 4, "drawings": 0, "cdrawings": 1}


def _block(lines):
    """A dict-extraction block of single-span lines: (text, size, flags, y)."""
    return {"type": 0, "lines": [
        {"bbox": (72, y, 300, y + size), "spans": [
            {"text": text, "size": size, "flags": flags, "char_flags": 16, "alpha": 255,
             "bbox": (72, y, 300, y + size)}]} for text, size, flags, y in lines]}


def test_markdown_from_blocks_headings_lists_links_and_tables():
    blocks = [_block([("Annual Report", 24, 16, 50)]),
              _block([("Body text in eleven point type.", 11, 0, 100),
                      ("• first point", 11, 0, 114)]),
              _block([("Visit the site", 11, 0, 300)])]
    headings = HeadingLevels()
    headings.add(blocks)
    links = [{"kind": pymupdf.LINK_URI, "uri": "https://example.org/a(b)",
              "from": pymupdf.Rect(72, 300, 300, 311)}]
    table = ((72, 150, 300, 250), "|A|B|\n|---|---|\n|1|2|\n")
    markdown = page_markdown(blocks, headings, [table], links)
    lines = markdown.splitlines()
    assert lines[0] == "# **Annual Report**"
    assert "- first point" in lines
    assert "[Visit the site](https://example.org/a%0x28b%0x29)" in markdown
    # the table sits between the text above it and the text below it
    assert markdown.index("point") < markdown.index("|A|B|") < markdown.index("Visit")


def test_layout_model_stays_off_unless_asked(tmp_path, monkeypatch):
    path = str(tmp_path / "text.pdf")
    text_and_table(path)
    seen = []
    original = pymupdf.Page.find_tables

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("use_layout"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pymupdf.Page, "find_tables", spy)
    with pymupdf.open(path) as doc:
        render.render_page(doc, 0, PdfRenderSettings())  # prose only: no table search
        render.render_page(doc, 1, PdfRenderSettings())
    assert seen == [False]


def test_layout_model_setting_runs_the_model(tmp_path, monkeypatch):
    path = str(tmp_path / "text.pdf")
    text_and_table(path)
    seen = []
    original = pymupdf.Page.find_tables

    def spy(self, *args, **kwargs):
        seen.append((kwargs.get("use_layout"), pymupdf._get_layout is not None))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pymupdf.Page, "find_tables", spy)
    with pymupdf.open(path) as doc:
        result = render.render_page(doc, 1, PdfRenderSettings(layout_model=True))
    assert seen == [(True, True)] and not isinstance(result, render.Outcome)


def _tables(page, clip):
    page._table_drawings_cache = [render._as_drawings(page.get_cdrawings())]
    try:
        found = page.find_tables(strategy="lines_strict", use_layout=False,
                                 **({"clip": clip} if clip is not None else {})).tables
    finally:
        del page._table_drawings_cache
    return [(tuple(t.bbox), t.extract(), t.to_markdown(clean=False)) for t in found]


@pytest.mark.parametrize("fixture, index", [(text_and_table, 1), (dense_vectors, 0)])
def test_table_search_is_clipped_to_the_drawings_without_changing_tables(tmp_path, fixture,
                                                                          index):
    # dense.pdf: pymupdf decides whether a box of joined paths holds text on the y-up
    # coordinates of the characters, so the clip must take in the drawings' mirror image
    # (the box diagram's table is lost when it does not).
    path = str(tmp_path / "doc.pdf")
    fixture(path)
    with pymupdf.open(path) as doc:
        page = doc[index]
        clip = render._table_search_area(page, page.get_cdrawings())
        assert clip is not None and clip.get_area() < 0.9 * page.rect.get_area()
        whole = _tables(page, None)
        assert whole and _tables(page, clip) == whole
        wrong = (pymupdf.Rect(min(d["rect"][0] for d in page.get_cdrawings()), clip.y0,
                              clip.x1, min(clip.y1, 600)) if fixture is dense_vectors else None)
        if wrong is not None:  # the drawings' extent alone, without the mirror image
            assert _tables(page, wrong) != whole


def test_the_table_search_clip_is_skipped_where_it_saves_nothing(tmp_path):
    path = str(tmp_path / "doc.pdf")
    text_and_table(path)
    with pymupdf.open(path) as doc:
        page = doc[1]
        assert render._table_search_area(page, []) is None
        framed = [{"rect": (1, 1, page.rect.width - 1, page.rect.height - 1)}]
        assert render._table_search_area(page, framed) is None  # a page frame
        page.set_rotation(90)
        assert render._table_search_area(page, page.get_cdrawings()) is None


def test_a_table_s_markdown_reads_the_page_text_once_not_once_per_cell(tmp_path, monkeypatch):
    # pymupdf's Table.to_markdown extracts the whole page's rawdict again for every cell
    path = str(tmp_path / "doc.pdf")
    text_and_table(path)
    calls = []
    original = pymupdf.TextPage.extractRAWDICT

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    with pymupdf.open(path) as doc:
        page = doc[1]
        norm = render._Normaliser(pymupdf.Identity, page.rect.width, page.rect.height)
        monkeypatch.setattr(pymupdf.TextPage, "extractRAWDICT", counted)
        tables = render._find_tables(page, page.get_cdrawings(), norm)
    assert [(t["rows"], t["cols"]) for t in tables] == [(4, 3)]
    assert "|Region|Units|Revenue|" in tables[0]["markdown"].replace(" ", "")
    assert len(calls) <= 2  # the table search's own, and one for all 12 cells


def _ruled_but_no_table(path):
    """Rules across and down that pass `may_hold_ruled_table` but make no 2x2 grid of
    cells: underlined headings and two margin bars, over body text."""
    doc = pymupdf.open()
    page = doc.new_page()
    for y in (100, 300, 500):
        page.insert_text((72, y - 6), f"Section at {y}", fontsize=14)
        page.draw_line((72, y), (300, y), color=(0, 0, 0), width=0.8)
    page.draw_line((40, 80), (40, 700), color=(0, 0, 0), width=0.8)
    page.draw_line((570, 80), (570, 700), color=(0, 0, 0), width=0.8)
    page.insert_textbox(pymupdf.Rect(72, 520, 540, 760), "Body text goes on. " * 60,
                        fontsize=10)
    doc.save(path)


def test_the_table_pre_check_keeps_pages_with_tables_and_skips_ruled_pages_without(
        tmp_path):
    from pymupdf import table as pdf_tables

    original = pdf_tables.chars_in_rect
    pages = []
    for name, fixture, index, has_table in [("t.pdf", text_and_table, 1, True),
                                            ("d.pdf", dense_vectors, 0, True),
                                            ("r.pdf", _ruled_but_no_table, 0, False)]:
        path = str(tmp_path / name)
        fixture(path)
        pages.append((path, index, has_table))
    for path, index, has_table in pages:
        with pymupdf.open(path) as doc:
            page = doc[index]
            drawings = page.get_cdrawings()
            assert render.may_hold_ruled_table(drawings)
            assert bool(_tables(page, None)) is has_table
            page._table_drawings_cache = [render._as_drawings(drawings)]
            try:
                possible = render._table_possible(page, render._table_search_area(page,
                                                                                  drawings))
            finally:
                del page._table_drawings_cache
            assert possible is has_table, path
            assert pdf_tables.chars_in_rect is original  # pymupdf's own again


@pytest.mark.parametrize("seed", range(3))
def test_figure_label_words_join_as_pymupdf_rects_did(seed):
    """`_take_in` (plain tuples) gives the rect that ``rect |= word`` for every word
    intersecting the grown rect gave, float32 rounding of MuPDF's union included; empty
    words are never taken in."""
    rng = random.Random(seed)
    for _ in range(200):
        x, y = rng.uniform(0, 500), rng.uniform(0, 700)
        rect = pymupdf.Rect(x, y, x + rng.uniform(1, 200), y + rng.uniform(1, 200))
        raw = []
        for n in range(rng.randrange(0, 30)):
            wx, wy = rng.uniform(-50, 650), rng.uniform(-50, 850)
            w, h = rng.choice([0.0, rng.uniform(0.1, 1.0) / 3, rng.uniform(1, 60)]), rng.uniform(0, 12)
            raw.append((wx, wy, wx + w, wy + h, "w", 0, n, n))
        expected = pymupdf.Rect(rect)
        margin = pymupdf.Rect(rect.x0 - 15, rect.y0 - 15, rect.x1 + 15, rect.y1 + 15)
        for word in [pymupdf.Rect(w[:4]) for w in raw]:
            if word.intersects(margin):
                expected |= word
        got = render._take_in(rect, render._label_words(raw), 15)
        assert tuple(got) == tuple(expected)


def test_chart_spans_glyph_edges_equal_the_box_normaliser(tmp_path):
    """The glyphs' x edges (`_Normaliser.x_edges`) are `boxes`' x0 and x1, rotated too."""
    rng = random.Random(1)
    bboxes = [(x, y, x + rng.uniform(0, 9), y + rng.uniform(0, 12))
              for x, y in ((rng.uniform(-20, 620), rng.uniform(-20, 820)) for _ in range(500))]
    for rotation in (0, 90, 180, 270):
        doc = pymupdf.open()
        page = doc.new_page(width=600, height=800)
        page.set_rotation(rotation)
        norm = render._Normaliser(page.rotation_matrix, page.rect.width, page.rect.height)
        x0s, x1s = norm.x_edges(bboxes)
        boxes = norm.boxes(bboxes)
        assert x0s == [b[0] for b in boxes] and x1s == [b[2] for b in boxes]


def test_the_cyclic_collector_is_paused_per_page_and_restored(tmp_path, monkeypatch):
    """No collection walks a page's containers while it is made; the collector is on
    again after each page (and stays off for a caller that had turned it off)."""
    import gc

    path = str(tmp_path / "t.pdf")
    text_and_table(path)
    seen = []
    original = render.render_page

    def recording(*args, **kwargs):
        seen.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(render, "render_page", recording)
    assert gc.isenabled()
    pages = [m for m in render.iter_document(path, None, PdfRenderSettings()) if m[0] == "page"]
    assert len(pages) == len(seen) >= 2 and not any(seen)
    assert gc.isenabled()
    gc.disable()
    try:
        list(render.iter_document(path, [0], PdfRenderSettings()))
        assert not gc.isenabled()
    finally:
        gc.enable()
