"""`pymupdf.table.make_chars` without a Python geometry object per character.

`find_tables` first turns every character of its search area into a dict (pdfplumber's
shape) in `make_chars`, which builds a `Rect`, two transformed copies and a `Point` per
character through pymupdf's Python wrappers: on the corpus that was 80% of the cost of a
table search (2.5 ms a page over the defaults run). `fast_make_chars` makes the same
dicts, the same values, with the page transformation applied to all characters of the
page in one numpy pass.

MuPDF transforms points and rects in single precision (`fz_transform_point`,
`fz_transform_rect`); for the unrotated page matrix ``(1, 0, 0, -1, e, f)`` each
coordinate is one float32 addition (``x + e``, ``f - y``), which numpy's float32
arithmetic reproduces exactly. Any other page matrix (a rotated or scaled page) goes to
pymupdf's own `make_chars`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pymupdf
from pymupdf import table as pdf_tables

_original_make_chars = pdf_tables.make_chars


def fast_make_chars(page: pymupdf.Page, clip=None):
    """`pymupdf.table.make_chars(page, clip)`: fills the table module's character list
    and returns the text page it read them from."""
    ctm = page.transformation_matrix
    a, b, c, d, e, f = tuple(ctm)
    if (a, b, c, d) != (1.0, 0.0, 0.0, -1.0):
        return _original_make_chars(page, clip=clip)
    chars = pdf_tables.CHARS._list()
    page_number = page.number + 1
    doctop_base = page.rect.height * page.number
    textpage = page.get_textpage(clip=clip, flags=pdf_tables.FLAGS)
    blocks = page.get_text("rawdict", textpage=textpage)["blocks"]

    # Pass 1: every character in make_chars' order with what is known per line and span.
    ordered = []  # (char, line head, upright, fontname, fontsize, bold, color)
    for block in blocks:
        for line in block["lines"]:
            ldir = line["dir"]
            ldir = (round(ldir[0], 4), round(ldir[1], 4))
            # the line matrix's first four values, as pymupdf.Matrix holds them
            head = tuple(pymupdf.Matrix(ldir[0], -ldir[1], ldir[1], ldir[0], 0, 0))[:4]
            upright = ldir[1] == 0
            for span in sorted(line["spans"], key=lambda s: s["bbox"][0]):
                bold = bool(span["flags"] & pymupdf.TEXT_FONT_BOLD or span["char_flags"] & 8)
                color = pymupdf.sRGB_to_pdf(span["color"])
                style = (head, upright, span["font"], span["size"], bold, color)
                ordered += [(char, style)
                            for char in sorted(span["chars"], key=lambda ch: ch["bbox"][0])]
    if not ordered:
        return textpage

    # Pass 2: the page transformation of every box and origin, in float32 as MuPDF.
    boxes = np.array([char["bbox"] for char, _ in ordered], dtype=np.float32).reshape(-1, 4)
    origins = np.array([char["origin"] for char, _ in ordered],
                       dtype=np.float32).reshape(-1, 2)
    e32, f32 = np.float32(e), np.float32(f)
    # fz_transform_rect with d < 0 swaps y0/y1 first: y0' = f - y1, y1' = f - y0
    ctm_y0 = (f32 - boxes[:, 3]).tolist()
    ctm_y1 = (f32 - boxes[:, 1]).tolist()
    origin_x = (origins[:, 0] + e32).tolist()
    origin_y = (f32 - origins[:, 1]).tolist()

    for (char, style), y0c, y1c, ox, oy in zip(ordered, ctm_y0, ctm_y1, origin_x, origin_y):
        head, upright, fontname, fontsize, bold, color = style
        x0, y0, x1, y1 = char["bbox"]  # floats already, as Rect() would hold them
        chars.append({
            "adv": x1 - x0 if upright else y1 - y0,
            "bottom": y1,
            "doctop": y0 + doctop_base,
            "fontname": fontname,
            "height": y1 - y0,
            "matrix": (*head, ox, oy),
            "ncs": "DeviceRGB",
            "non_stroking_color": color,
            "non_stroking_pattern": None,
            "object_type": "char",
            "page_number": page_number,
            "size": fontsize if upright else y1 - y0,
            "stroking_color": color,
            "stroking_pattern": None,
            "bold": bold,
            "text": char["c"],
            "top": y0,
            "upright": upright,
            "width": x1 - x0,
            "x0": x0,
            "x1": x1,
            "y0": y0c,
            "y1": y1c,
        })
    return textpage


@contextmanager
def fast_table_chars() -> Iterator[None]:
    """`fast_make_chars` in place of pymupdf's for the `find_tables` calls inside (the
    renderer child renders one page at a time: nothing else searches tables meanwhile)."""
    pdf_tables.make_chars = fast_make_chars
    try:
        yield
    finally:
        pdf_tables.make_chars = _original_make_chars
