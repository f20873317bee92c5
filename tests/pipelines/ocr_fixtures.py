"""Text images and PDF page samples drawn in code for the OCR tests and bench (no files shipped)."""

from __future__ import annotations

import io
import os
from typing import Sequence

import matplotlib
from PIL import Image, ImageDraw, ImageFont

from pipelines.core.sample import Sample

# The font bundled with matplotlib, so rendering is the same on every machine.
FONT_PATH = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf",
                         "DejaVuSans.ttf")


def text_image(lines: Sequence[str], font_size: int = 24, margin: int = 12,
               width: int | None = None) -> bytes:
    """A white PNG with `lines` in black, one under the other; small on purpose (CPU OCR)."""
    font = ImageFont.truetype(FONT_PATH, font_size)
    step = int(font_size * 1.6)
    text_width = max(int(font.getlength(line)) for line in lines)
    size = (width or text_width + 2 * margin, step * len(lines) + 2 * margin)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((margin, margin + index * step), line, font=font, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_page(lines: Sequence[str], font_size: float = 12, dpi: int = 110,
             page_size: tuple[float, float] = (360, 160)) -> tuple[bytes, list[dict]]:
    """A one-page PDF drawn with PyMuPDF, rendered: ``(png, text-layer lines)``.

    The lines carry boxes normalised to the page (= to the rendered image), as the PDF
    pipeline stores them in ``meta["pdf"]["lines"]``.
    """
    import pymupdf

    document = pymupdf.open()
    page = document.new_page(width=page_size[0], height=page_size[1])
    for index, line in enumerate(lines):
        page.insert_text((18, 30 + index * font_size * 1.8), line, fontsize=font_size)
    width, height = page.rect.width, page.rect.height
    text_lines = []
    for block in page.get_text("dict")["blocks"]:
        for line in block.get("lines", []):
            x0, y0, x1, y1 = line["bbox"]
            text_lines.append({"box": [x0 / width, y0 / height, x1 / width, y1 / height],
                               "text": "".join(span["text"] for span in line["spans"])})
    png = page.get_pixmap(dpi=dpi, alpha=False).tobytes("png")
    document.close()
    return png, text_lines


def pdf_page_sample(lines: Sequence[str], index: int = 0, needs_ocr: bool = False,
                    kind: str = "page", text: str | None = None) -> Sample:
    """A PDF page (or figure) sample like the PDF pipeline's, with its text layer in meta."""
    png, text_lines = pdf_page(lines)
    pdf_meta = {"page": index, "kind": kind, "needs_ocr": needs_ocr,
                "lines": [] if needs_ocr else text_lines}
    if text is None and not needs_ocr:
        text = "\n".join(line["text"] for line in text_lines)
    return Sample.create("pdf", f"sha256:test#page={index}&kind={kind}", image=png,
                         text=text, meta={"pdf": pdf_meta})
