"""Documents for the PDF pipeline tests, drawn with PyMuPDF in code (no files shipped).

`write_corpus(directory)` writes every fixture and returns {name: path}; `EXPECTED` says
what each should become.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile

import numpy as np
import pymupdf
from PIL import Image, ImageDraw, ImageFont

TRUNCATED_BODY = ("Harbour cranes unload timber while gulls circle above the quay. Porters "
                  "count crates, weigh barrels and chalk numbers on every wooden door. ") * 4
BODY = ("Vision-language models learn from documents. This paragraph is the text layer "
        "that the pipeline must extract with word and line boxes in reading order. ")


def text_and_table(path: str) -> None:
    """Page 0: a heading and paragraphs. Page 1: a ruled 4x3 table with a caption above."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 80), "Quarterly Report", fontsize=24)
    page.insert_textbox(pymupdf.Rect(72, 110, 540, 400), BODY * 6, fontsize=11)
    page = doc.new_page()
    page.insert_text((72, 90), "Table 1: Results per region", fontsize=11)
    rows = [["Region", "Units", "Revenue"], ["North", "120", "3400"],
            ["South", "95", "2800"], ["West", "143", "4100"]]
    x0, y0, cw, rh = 72, 100, 120, 24
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            rect = pymupdf.Rect(x0 + c * cw, y0 + r * rh, x0 + (c + 1) * cw, y0 + (r + 1) * rh)
            page.draw_rect(rect, color=(0, 0, 0), width=0.8)
            page.insert_text((rect.x0 + 6, rect.y1 - 8), cell, fontsize=10)
    page.insert_textbox(pymupdf.Rect(72, 260, 540, 500), BODY * 3, fontsize=11)
    doc.save(path)


def bar_chart(path: str) -> None:
    """A vector bar chart (axes, ticks, four filled bars, labels) and its caption below."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 60), "Annual sales", fontsize=16)
    ox, oy, height = 120, 420, 280
    page.draw_line((ox, oy), (ox, oy - height), color=(0, 0, 0), width=1)
    page.draw_line((ox, oy), (ox + 360, oy), color=(0, 0, 0), width=1)
    for value in (0, 25, 50, 75, 100):
        y = oy - height * value / 100
        page.draw_line((ox - 5, y), (ox, y), color=(0, 0, 0), width=1)
        page.insert_text((ox - 30, y + 4), str(value), fontsize=9)
    for i, (label, value) in enumerate([("2021", 40), ("2022", 65), ("2023", 80),
                                        ("2024", 55)]):
        x = ox + 30 + i * 80
        page.draw_rect(pymupdf.Rect(x, oy - height * value / 100, x + 50, oy),
                       color=None, fill=(0.2, 0.4, 0.8))
        page.insert_text((x + 10, oy + 15), label, fontsize=9)
    page.insert_text((ox, oy + 40), "Figure 1: Sales by year (units)", fontsize=10)
    page.insert_textbox(pymupdf.Rect(72, 500, 540, 700), BODY * 2, fontsize=11)
    doc.save(path)


def photo_png(width: int = 400, height: int = 300, seed: int = 1) -> bytes:
    """A photo-like image: smooth gradients plus noise (not a flat colour)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) % 256], axis=-1)
    image = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def scan_png(lines: list[str], width: int = 1240, height: int = 1754) -> bytes:
    """A scanned page: text drawn into pixels, no text layer."""
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=36)
    except TypeError:  # old Pillow
        font = ImageFont.load_default()
    for i, line in enumerate(lines):
        draw.text((120, 160 + i * 60), line, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def photo_and_scan(path: str, body: str = BODY * 3, seed: int = 1,
                   scan_lines: tuple[str, ...] = ("SCANNED INVOICE 2024", "Total due: 1234",
                                                  "Thank you for your order")) -> None:
    """Page 0: text plus an embedded photo with a caption. Page 1: an image-only scan."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 200), body, fontsize=11)
    page.insert_image(pymupdf.Rect(120, 220, 480, 490), stream=photo_png(seed=seed))
    page.insert_text((120, 510), "Figure 2: A photograph of the test site", fontsize=10)
    page = doc.new_page()
    page.insert_image(page.rect, stream=scan_png(list(scan_lines)))
    doc.save(path)


def blank_and_duplicate(path: str) -> None:
    """Page 0 text, page 1 blank, page 2 the same as page 0 (a near-duplicate)."""
    doc = pymupdf.open()
    for index in range(3):
        page = doc.new_page()
        if index != 1:
            page.insert_text((72, 80), "Repeated cover page", fontsize=20)
            page.insert_textbox(pymupdf.Rect(72, 110, 540, 400), BODY * 5, fontsize=11)
    doc.save(path)


def encrypted(path: str) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret", fontsize=12)
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")


def truncated(source: str, path: str, keep: int) -> None:
    with open(source, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:keep])


def decompression_bomb(path: str) -> None:
    """An image whose dictionary claims 100000x100000 px: decoding it would need 30 GB."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "bomb", fontsize=12)
    xref = page.insert_image(pymupdf.Rect(72, 100, 300, 300), stream=photo_png(64, 64))
    doc.xref_set_key(xref, "Width", "100000")
    doc.xref_set_key(xref, "Height", "100000")
    doc.save(path)


def enormous_pages(path: str) -> None:
    """Page 0: the largest page PDF allows (200 x 200 in), rendered at a lowered DPI.
    Page 1: a 200 in x 0.04 in strip that cannot make a useful image."""
    doc = pymupdf.open()
    page = doc.new_page(width=14400, height=14400)
    page.insert_text((100, 1000), "Huge poster", fontsize=600)
    page = doc.new_page(width=14400, height=3)
    page.draw_line((0, 1), (14400, 1), color=(0, 0, 0))
    doc.save(path)


def zero_pages(path: str) -> None:
    """A syntactically valid PDF whose page tree is empty."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    with open(path, "wb") as handle:
        handle.write(out.getvalue())


def epub(path: str) -> None:
    """A minimal EPUB 2 book (mimetype first and stored, container, OPF, one chapter)."""
    chapter = ("<?xml version='1.0' encoding='utf-8'?>\n<html xmlns='http://www.w3.org/1999/xhtml'>"
               "<head><title>Chapter 1</title></head><body><h1>Chapter One</h1>"
               + "".join(f"<p>{BODY} Paragraph {i}.</p>" for i in range(12))
               + "<ul><li>first point</li><li>second point</li></ul></body></html>")
    opf = ("<?xml version='1.0' encoding='utf-8'?>\n"
           "<package xmlns='http://www.idpf.org/2007/opf' version='2.0' unique-identifier='id'>"
           "<metadata xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:title>Test Book</dc:title>"
           "<dc:identifier id='id'>vlforge-test-book</dc:identifier><dc:language>en</dc:language>"
           "</metadata><manifest><item id='c1' href='chapter1.xhtml' "
           "media-type='application/xhtml+xml'/></manifest><spine><itemref idref='c1'/></spine>"
           "</package>")
    write_epub(path, opf, {"chapter1.xhtml": chapter})


EPUB_CONTAINER = ("<?xml version='1.0'?>\n<container version='1.0' "
                  "xmlns='urn:oasis:names:tc:opendocument:xmlns:container'><rootfiles>"
                  "<rootfile full-path='OEBPS/content.opf' "
                  "media-type='application/oebps-package+xml'/></rootfiles></container>")


def write_epub(path: str, opf: str, files: dict[str, str | bytes]) -> None:
    """An EPUB zip: the mimetype first and stored, the container, `opf` as
    OEBPS/content.opf and `files` (chapters, images) under OEBPS/, deflated."""
    with zipfile.ZipFile(path, "w") as book:
        book.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip",
                      compress_type=zipfile.ZIP_STORED)
        for name, data in (("META-INF/container.xml", EPUB_CONTAINER),
                           ("OEBPS/content.opf", opf),
                           *((f"OEBPS/{n}", d) for n, d in files.items())):
            book.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)


def write_corpus(directory: str) -> dict[str, str]:
    """Write every fixture into `directory`; returns {name: path}."""
    os.makedirs(directory, exist_ok=True)
    paths = {name: os.path.join(directory, name) for name in (
        "text_table.pdf", "chart.pdf", "photo_scan.pdf", "blank_dup.pdf", "encrypted.pdf",
        "truncated.pdf", "garbage.pdf", "bomb.pdf", "enormous.pdf", "zero_pages.pdf",
        "book.epub", "chart_copy.pdf")}
    text_and_table(paths["text_table.pdf"])
    bar_chart(paths["chart.pdf"])
    photo_and_scan(paths["photo_scan.pdf"])
    blank_and_duplicate(paths["blank_dup.pdf"])
    encrypted(paths["encrypted.pdf"])
    # the damaged file is cut from a document of its own: a cut copy of photo_scan.pdf would
    # be a near-duplicate of it, dropped or not depending on which comes first in a task
    # (task order follows input ids, i.e. the paths of the test's temporary directory)
    source = os.path.join(directory, "truncated_source.pdf.tmp")
    photo_and_scan(source, body=TRUNCATED_BODY, seed=7,
                   scan_lines=("DELIVERY NOTE 1987", "Parcels: 12", "Signed at the depot"))
    truncated(source, paths["truncated.pdf"], keep=os.path.getsize(source) // 2)
    os.remove(source)
    with open(paths["garbage.pdf"], "wb") as handle:
        handle.write(b"%PDF-1.7\n" + bytes(range(256)) * 4)
    decompression_bomb(paths["bomb.pdf"])
    enormous_pages(paths["enormous.pdf"])
    zero_pages(paths["zero_pages.pdf"])
    epub(paths["book.epub"])
    shutil.copyfile(paths["chart.pdf"], paths["chart_copy.pdf"])
    return paths
