"""`pipelines.pdf.table_chars.fast_make_chars` gives the table search exactly the
characters pymupdf's `make_chars` gives it (every key, every value, signed zeros
included), on pages that take the fast path and on pages that do not."""

import pymupdf
import pytest
from pymupdf import table as pdf_tables

from pipelines.pdf import render, table_chars
from pipelines.pdf.settings import PdfRenderSettings
from pipelines.pdf.table_chars import fast_make_chars, fast_table_chars
from tests.pipelines.pdf_fixtures import text_and_table


def _mixed_text(path: str, *, rotation: int = 0, cropbox: tuple | None = None) -> None:
    """Text of several fonts, sizes, colours and directions, bold and not, in a ruled grid."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    fonts = ["helv", "hebo", "tiro", "cour", "tibo"]
    y = 60.0
    for row in range(12):
        for col in range(4):
            x = 50 + col * 120
            page.insert_text((x + 3, y + 14), f"r{row}c{col} {row * 7.25 + col:.2f} ÄÖü",
                             fontname=fonts[(row + col) % len(fonts)], fontsize=7 + row % 5,
                             color=((row * 20 % 255) / 255, 0.2, (col * 60 % 255) / 255))
        page.draw_line((50, y), (530, y))
        y += 22.5
    for x in range(50, 531, 120):
        page.draw_line((x, 60), (x, y - 22.5))
    # text that is not horizontal: the non-upright branch (size and adv from the height)
    page.insert_text((560, 500), "up the margin", fontsize=9, rotate=90)
    page.insert_text((40, 800), "down the margin", fontsize=9, rotate=270)
    page.insert_text((300, 790), "upside down", fontsize=9, rotate=180)
    if cropbox is not None:
        page.set_cropbox(pymupdf.Rect(cropbox))
    if rotation:
        page.set_rotation(rotation)
    doc.save(path)
    doc.close()


def _chars(make, page, clip):
    pdf_tables._CHARS_VAR.set([])
    try:
        textpage = make(page, clip=clip)
        return list(pdf_tables.CHARS._list()), textpage
    finally:
        pdf_tables._CHARS_VAR.set([])


def _exactly(chars):
    # repr tells -0.0 from 0.0 and 1 from 1.0, which == does not
    return [{key: repr(value) for key, value in char.items()} for char in chars]


@pytest.mark.parametrize("layout", [{}, {"cropbox": (20, 30, 575, 822)}, {"rotation": 90}])
def test_fast_make_chars_gives_pymupdfs_characters(tmp_path, layout):
    path = str(tmp_path / "mixed.pdf")
    _mixed_text(path, **layout)
    with pymupdf.open(path) as doc:
        page = doc[0]
        for clip in (None, pymupdf.Rect(40, 50, 400, 300)):
            expected, _ = _chars(pdf_tables.make_chars, page, clip)
            got, textpage = _chars(fast_make_chars, page, clip)
            assert len(expected) > 20
            assert _exactly(got) == _exactly(expected)
            assert isinstance(textpage, pymupdf.TextPage)


def test_table_search_uses_the_fast_characters_and_puts_pymupdfs_back(tmp_path):
    path = str(tmp_path / "t.pdf")
    text_and_table(path)
    calls = []

    def counting(page, clip=None):
        calls.append(page.number)
        return fast_make_chars(page, clip)

    original = pdf_tables.make_chars
    with pymupdf.open(path) as doc:
        settings = PdfRenderSettings()
        table_chars.fast_make_chars, saved = counting, table_chars.fast_make_chars
        try:
            result = render.render_page(doc, 1, settings)
        finally:
            table_chars.fast_make_chars = saved
    assert calls == [1]
    assert pdf_tables.make_chars is original
    assert [d for d in result["derived"] if d["kind"] == "table"]
    with fast_table_chars():
        assert pdf_tables.make_chars is not original
    assert pdf_tables.make_chars is original
