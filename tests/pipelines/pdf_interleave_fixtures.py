"""Documents with figures between paragraphs, drawn with PyMuPDF (and `write_epub` for the EPUB)
in code, for the interleaved-document and caption-pair tests."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
from PIL import Image

from tests.pipelines.pdf_fixtures import write_epub

# The paragraphs of the figure page, in reading order; each is one text block.
OPENING = "Harbour report. The morning shift opened the northern quay before sunrise."
MIDDLE = "Cranes then moved timber to the yard while the rain gauge kept its count."
CLOSING = "The evening shift closed every gate and logged the tide at the outer pier."
PHOTO_CAPTION = "Figure 1: The harbour at dawn, seen from the lighthouse"
CHART_CAPTION = "Figure 2: Rainfall per month at the harbour gauge"
JUNK_CAPTION = "Figure 3: IMG_0042.JPG"


def tinted_photo(tint: str, seed: int = 1, width: int = 320, height: int = 220) -> bytes:
    """A photo-like PNG (gradients plus noise) dominated by red ("warm") or blue ("cool"),
    so a test can tell which image is which after cropping and rescaling."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    strong, weak = 160 + 80 * xx / width, 40 + 40 * yy / height
    channels = [strong, weak, weak] if tint == "warm" else [weak, weak, strong]
    image = np.stack(channels, axis=-1) + rng.normal(0, 18, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def flat_png(width: int = 200, height: int = 100, grey: int = 210) -> bytes:
    """One colour: a decorative panel."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (grey, grey, grey)).save(buffer, format="PNG")
    return buffer.getvalue()


def figures_page(path: str) -> None:
    """One page: a paragraph, a raster photo with its caption, a paragraph, a vector bar
    chart with its caption, a closing paragraph."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 50, 540, 90), OPENING, fontsize=11)
    page.insert_image(pymupdf.Rect(150, 100, 450, 300), stream=tinted_photo("warm"))
    page.insert_text((150, 318), PHOTO_CAPTION, fontsize=10)
    page.insert_textbox(pymupdf.Rect(72, 340, 540, 380), MIDDLE, fontsize=11)
    ox, oy, height = 180, 620, 200  # the chart: axes, ticks and five filled bars
    page.draw_line((ox, oy), (ox, oy - height), color=(0, 0, 0), width=1)
    page.draw_line((ox, oy), (ox + 300, oy), color=(0, 0, 0), width=1)
    for value in (0, 50, 100):
        y = oy - height * value / 100
        page.draw_line((ox - 5, y), (ox, y), color=(0, 0, 0), width=1)
    for i, value in enumerate((30, 70, 90, 45, 60)):
        x = ox + 20 + i * 55
        page.draw_rect(pymupdf.Rect(x, oy - height * value / 100, x + 35, oy), color=None,
                       fill=(0.1, 0.5, 0.3))
    page.insert_text((ox, oy + 22), CHART_CAPTION, fontsize=10)
    page.insert_textbox(pymupdf.Rect(72, 680, 540, 740), CLOSING, fontsize=11)
    doc.save(path)


def junk_caption_page(path: str) -> None:
    """One page: a photo captioned with a camera file name, a tiny icon and a one-colour
    panel (both to be dropped with a reason), between two paragraphs."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 50, 540, 90), OPENING, fontsize=11)
    page.insert_image(pymupdf.Rect(150, 100, 450, 300), stream=tinted_photo("cool", seed=3))
    page.insert_text((150, 318), JUNK_CAPTION, fontsize=10)
    page.insert_image(pymupdf.Rect(520, 40, 530, 50), stream=tinted_photo("warm", seed=4))
    page.insert_image(pymupdf.Rect(150, 420, 450, 560), stream=flat_png())
    page.insert_textbox(pymupdf.Rect(72, 600, 540, 660), CLOSING, fontsize=11)
    doc.save(path)


def _xhtml(title: str, body: str) -> str:
    return ("<?xml version='1.0' encoding='utf-8'?>\n<html xmlns='http://www.w3.org/1999/xhtml'>"
            f"<head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>")


CHAPTER_TWO = ("Before the pictures the keeper climbs the stair.",
               "Between the pictures the lamp is trimmed and lit.",
               "After the pictures the ships pass safely by.")


def illustrated_epub(path: str) -> None:
    """An EPUB 2 book: chapter 1 text only, chapter 2 a warm photo and a cool photo
    between paragraphs (CHAPTER_TWO)."""
    one = _xhtml("The Keeper", "".join(f"<p>The keeper's log, entry {i}: calm seas and a "
                                       f"clear horizon all day.</p>" for i in range(6)))
    two = _xhtml("The Lamp", f"<p>{CHAPTER_TWO[0]}</p><p><img src='warm.png' alt='warm'/></p>"
                 f"<p>{CHAPTER_TWO[1]}</p><p><img src='cool.png' alt='cool'/></p>"
                 f"<p>{CHAPTER_TWO[2]}</p>")
    opf = ("<?xml version='1.0' encoding='utf-8'?>\n"
           "<package xmlns='http://www.idpf.org/2007/opf' version='2.0' unique-identifier='id'>"
           "<metadata xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:title>Lighthouse</dc:title>"
           "<dc:identifier id='id'>vlforge-illustrated</dc:identifier><dc:language>en"
           "</dc:language></metadata><manifest>"
           "<item id='c1' href='one.xhtml' media-type='application/xhtml+xml'/>"
           "<item id='c2' href='two.xhtml' media-type='application/xhtml+xml'/>"
           "<item id='warm' href='warm.png' media-type='image/png'/>"
           "<item id='cool' href='cool.png' media-type='image/png'/></manifest>"
           "<spine><itemref idref='c1'/><itemref idref='c2'/></spine></package>")
    write_epub(path, opf, {"one.xhtml": one, "two.xhtml": two,
                           "warm.png": tinted_photo("warm", seed=5),
                           "cool.png": tinted_photo("cool", seed=6)})


def tint(png: bytes) -> str:
    """"warm" or "cool": which of red and blue dominates the image."""
    with Image.open(io.BytesIO(png)) as image:
        r, _, b = np.asarray(image.convert("RGB"), dtype=np.float64).mean(axis=(0, 1))
    return "warm" if r > b else "cool"


def illustrated_fb2(path: str) -> None:
    """A FictionBook 2 book: a text-only section, then a section with a warm and a cool
    photo between the CHAPTER_TWO paragraphs (MuPDF makes the whole body one chapter)."""
    import base64

    def binary(name: str, png: bytes) -> str:
        data = base64.b64encode(png).decode()
        return f'<binary id="{name}" content-type="image/png">{data}</binary>'

    first, between, last = CHAPTER_TWO
    book = ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0" '
            'xmlns:l="http://www.w3.org/1999/xlink"><description><title-info>'
            "<book-title>Lighthouse</book-title><lang>en</lang></title-info></description><body>"
            "<section><title><p>The Keeper</p></title><p>The keeper's log: calm seas.</p>"
            "</section><section><title><p>The Lamp</p></title>"
            f'<p>{first}</p><image l:href="#warm.png"/><p>{between}</p>'
            f'<image l:href="#cool.png"/><p>{last}</p></section></body>'
            + binary("warm.png", tinted_photo("warm", seed=7))
            + binary("cool.png", tinted_photo("cool", seed=8)) + "</FictionBook>")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(book)
