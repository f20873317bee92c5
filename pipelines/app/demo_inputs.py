"""The demo's documents, generated in code: PDFs, an EPUB, a scan, and two broken files.

Everything is drawn here (PyMuPDF for pages, matplotlib for the vector chart, PIL for the
scanned page), so the demo needs no downloads and shows every path of the PDF pipeline:
text with a table, a vector chart, a page with two figures between its paragraphs (an
interleaved document and caption pairs), an image-only page for OCR, an illustrated e-book,
and bad input.
"""

from __future__ import annotations

import io
import os
import zipfile

PARAGRAPHS = [
    "Vision-language models learn from pairs of images and text. Web screenshots, "
    "rendered documents and charts give them the dense, structured text they need.",
    "A use-case taxonomy organises what users ask: recognition, conversion, analysis, "
    "reasoning, evaluation, multi-image and safety questions.",
    "The hybrid encoder reads a low-resolution view for semantics and a high-resolution "
    "view for fine detail, within a fixed budget of 576 image tokens.",
]
TABLE = [("Stage", "Trainable", "Steps"), ("1 warm-up", "adaptor", "15000"),
         ("2 joint", "LLM + adaptor", "96000"), ("3 SFT", "LLM + adaptor + SigLIP", "10000")]
CHART_DATA = {"labels": ["2021", "2022", "2023", "2024"], "values": [12.0, 19.5, 27.0, 33.5]}
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def write_demo_documents(directory: str) -> list[str]:
    """Write every demo document into `directory`; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    files = {
        "report.pdf": report_pdf(),
        "chart.pdf": chart_pdf(),
        "field_notes.pdf": figures_pdf(),
        "scan.pdf": scanned_pdf(),
        "handbook.epub": epub_book(),
        "truncated.pdf": report_pdf()[:900],
        "locked.pdf": encrypted_pdf(),
    }
    paths = []
    for name, data in files.items():
        path = os.path.join(directory, name)
        with open(path, "wb") as handle:
            handle.write(data)
        paths.append(path)
    return paths


def report_pdf() -> bytes:
    """Two text pages: headings, paragraphs and a ruled table."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 80), "Building vision-language data", fontsize=20)
    y = 120
    for text in PARAGRAPHS:
        rect = pymupdf.Rect(72, y, 520, y + 70)
        page.insert_textbox(rect, text, fontsize=11)
        y += 80
    page = doc.new_page()
    page.insert_text((72, 80), "Training stages", fontsize=16)
    x0, y0, widths, row_h = 72, 110, (120, 180, 80), 24
    for r, row in enumerate(TABLE):
        x = x0
        for c, cell in enumerate(row):
            rect = pymupdf.Rect(x, y0 + r * row_h, x + widths[c], y0 + (r + 1) * row_h)
            page.draw_rect(rect, color=(0, 0, 0), width=0.7)
            page.insert_text((x + 4, rect.y1 - 7), cell, fontsize=10)
            x += widths[c]
    return doc.tobytes()


def chart_pdf() -> bytes:
    """A page holding a matplotlib bar chart as vector drawings, with a caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pymupdf

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(CHART_DATA["labels"], CHART_DATA["values"], color="#4472c4")
    ax.set_title("Pages rendered per year")
    ax.set_xlabel("year")
    ax.set_ylabel("million pages")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf")
    plt.close(fig)
    chart = pymupdf.open("pdf", buffer.getvalue())
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 70), "Figure 1 shows how the corpus grew.", fontsize=11)
    page.show_pdf_page(pymupdf.Rect(72, 90, 522, 378), chart, 0)
    page.insert_text((72, 400), "Figure 1: Pages rendered per year.", fontsize=10)
    return doc.tobytes()


def picture_png(colour: tuple[int, int, int], width: int = 320, height: int = 200) -> bytes:
    """A photo-like picture: a vertical gradient with a coloured disc."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(230 - y // 3, 220 - y // 4, 200))
    draw.ellipse((width // 3, height // 4, width * 2 // 3, height * 3 // 4), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def figures_pdf() -> bytes:
    """A page of field notes: paragraph, photo + caption, paragraph, photo + caption,
    paragraph (one interleaved document with two images, two caption pairs)."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 50, 540, 100), PARAGRAPHS[0], fontsize=11)
    page.insert_image(pymupdf.Rect(156, 110, 456, 298), stream=picture_png((200, 60, 40)))
    page.insert_text((156, 316), "Figure 1: A red marker buoy at the harbour mouth.",
                     fontsize=10)
    page.insert_textbox(pymupdf.Rect(72, 340, 540, 390), PARAGRAPHS[1], fontsize=11)
    page.insert_image(pymupdf.Rect(156, 400, 456, 588), stream=picture_png((40, 90, 200)))
    page.insert_text((156, 606), "Figure 2: A blue mooring float on a calm morning.",
                     fontsize=10)
    page.insert_textbox(pymupdf.Rect(72, 630, 540, 690), PARAGRAPHS[2], fontsize=11)
    return doc.tobytes()


def scanned_pdf() -> bytes:
    """An image-only page (a 'scan' of printed text): no text layer, so it needs OCR."""
    import pymupdf
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 34) if os.path.exists(FONT) else ImageFont.load_default()
    lines = ["Scanned notes", "", "Optical character recognition reads",
             "text that exists only as pixels.", "Every page becomes a sample."]
    for index, line in enumerate(lines):
        draw.text((120, 160 + index * 60), line, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(page.rect, stream=buffer.getvalue())
    return doc.tobytes()


def encrypted_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret", fontsize=12)
    return doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner",
                       user_pw="user")


def epub_book() -> bytes:
    """A minimal valid EPUB 3 with two chapters; the second holds two pictures between its
    paragraphs (one interleaved chapter document)."""
    pictures = "".join(f"<p>{text}</p><p><img src='p{i}.png' alt='plate {i}'/></p>"
                       for i, text in enumerate(PARAGRAPHS[1:])) + f"<p>{PARAGRAPHS[0]}</p>"
    chapters = [("Chapter 1: Screens", f"<p>{PARAGRAPHS[0]}</p>"),
                ("Chapter 2: Taxonomy", pictures)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        book.writestr("META-INF/container.xml",
                      '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:'
                      'tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/'
                      'content.opf" media-type="application/oebps-package+xml"/></rootfiles>'
                      '</container>')
        items = "".join(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>'
                        for i in range(len(chapters)))
        items += "".join(f'<item id="p{i}" href="p{i}.png" media-type="image/png"/>'
                         for i in range(2))
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        book.writestr("OEBPS/content.opf",
                      '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" '
                      'version="3.0" unique-identifier="id"><metadata xmlns:dc="http://purl.org/'
                      'dc/elements/1.1/"><dc:identifier id="id">vlforge-demo</dc:identifier>'
                      '<dc:title>vlforge handbook</dc:title><dc:language>en</dc:language>'
                      f'</metadata><manifest>{items}<item id="nav" href="nav.xhtml" '
                      'media-type="application/xhtml+xml" properties="nav"/></manifest>'
                      f'<spine>{spine}</spine></package>')
        links = "".join(f'<li><a href="c{i}.xhtml">{t}</a></li>' for i, (t, _) in enumerate(chapters))
        book.writestr("OEBPS/nav.xhtml", _xhtml("Contents", f'<nav epub:type="toc"><ol>{links}</ol></nav>'))
        for index, (title, body) in enumerate(chapters):
            book.writestr(f"OEBPS/c{index}.xhtml", _xhtml(title, f"<h1>{title}</h1>{body}"))
        for index, colour in enumerate(((60, 160, 80), (160, 60, 160))):
            book.writestr(f"OEBPS/p{index}.png", picture_png(colour))
    return buffer.getvalue()


def _xhtml(title: str, body: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
            'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>'
            f"{title}</title></head><body>{body}</body></html>")
