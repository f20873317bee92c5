"""The local inputs every engine test compares against: PDFs and images drawn in code."""

from __future__ import annotations

import os
from pathlib import Path

from tests.pipelines import pdf_fixtures
from tests.pipelines.fixtures import write_images

# a byte-identical copy (chart_copy) and a broken file (garbage) are among them, so the
# run-wide duplicate drop and the error records are checked on every engine and store
PDFS = ("text_table.pdf", "chart.pdf", "photo_scan.pdf", "blank_dup.pdf", "garbage.pdf",
        "chart_copy.pdf")


def write_local_inputs(root: Path, images: int) -> Path:
    """`root/pdfs` (the `PDFS`) and `root/images` (`images` pictures and one broken file)."""
    corpus = pdf_fixtures.write_corpus(str(root / "all"))
    (root / "pdfs").mkdir()
    for name in PDFS:
        os.link(corpus[name], root / "pdfs" / name)
    write_images(str(root / "images"), images)
    (root / "images" / "broken.png").write_bytes(b"not an image")
    return root
