"""What `render_page` extracts from the generated PDF fixtures, reduced to what must not
change when the renderer is made faster: words, lines, text, markdown headings and table
rows, tables (CSV, markdown, shape) and figure boxes.

`snapshot(paths)` renders every page of every fixture in-process and returns a JSON-able
dict; ``tests/pipelines/pdf_render_golden.json`` holds the snapshot taken before the
speed work (issue 17). Regenerate it (only when an output change is intended) with

    .venv/bin/python -m tests.pipelines.pdf_golden --write
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile

import pymupdf

from pipelines.core.outcome import Outcome
from tests.pipelines.pdf_fixtures import (
    bar_chart,
    blank_and_duplicate,
    enormous_pages,
    epub,
    photo_and_scan,
    text_and_table,
)

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pdf_render_golden.json")


def matplotlib_report(path: str) -> None:
    """A page of prose with a matplotlib line chart placed in it, and a rotated page
    holding a bar chart (rotation changes every coordinate mapping)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def chart_pdf(draw) -> pymupdf.Document:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        draw(ax)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf")
        plt.close(fig)
        return pymupdf.open(stream=buffer.getvalue(), filetype="pdf")

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 60), "Results", fontsize=20)
    page.insert_textbox(pymupdf.Rect(72, 80, 523, 180), "Growth was steady. " * 20, fontsize=10)
    page.show_pdf_page(pymupdf.Rect(72, 200, 432, 452), chart_pdf(
        lambda ax: (ax.plot([0, 1, 2, 3], [1.5, 3.5, 2.0, 4.0], label="north"),
                    ax.plot([0, 1, 2, 3], [0.5, 1.0, 3.0, 2.5], label="south"), ax.legend())), 0)
    page.insert_text((72, 470), "Figure 3: Weekly values", fontsize=10)
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 60), "Rotated appendix", fontsize=16)
    page.show_pdf_page(pymupdf.Rect(72, 100, 432, 352), chart_pdf(
        lambda ax: ax.bar(["red", "green", "blue"], [12, 30.5, 21])), 0)
    page.set_rotation(90)
    doc.save(path)


def dense_vectors(path: str) -> None:
    """Thousands of small paths: a scatter plot of 2500 dots, a separate diagram of boxes
    and arrows, and hatching across the lower page (the case that made clustering
    quadratic)."""
    import random

    rng = random.Random(7)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 50), "Dense drawings", fontsize=18)
    shape = page.new_shape()
    for _ in range(2500):
        x, y = 90 + rng.random() * 260, 80 + rng.random() * 220
        shape.draw_circle((x, y), 1.2)
        shape.finish(fill=(0.8, 0.1, 0.1), color=None)  # one path per dot
    shape.draw_line((85, 305), (355, 305))
    shape.draw_line((85, 305), (85, 75))
    shape.finish(color=(0, 0, 0), width=0.8)
    for i in range(4):  # a box diagram on the right
        r = pymupdf.Rect(400, 90 + i * 50, 520, 125 + i * 50)
        shape.draw_rect(r)
        if i:
            shape.draw_line((460, 90 + i * 50 - 15), (460, 90 + i * 50))
    shape.finish(color=(0, 0, 0.5), fill=(0.9, 0.9, 1.0), width=1)
    for i in range(300):  # hatching: many thin strokes in one region
        x = 80 + i * 1.5
        shape.draw_line((x, 420), (x + 40, 560))
        shape.finish(color=(0.3, 0.3, 0.3), width=0.3)
    shape.commit()
    for i in range(4):
        page.insert_text((405, 110 + i * 50), f"Step {i + 1}", fontsize=10)
    page.insert_text((90, 325), "Figure 4: Scatter of samples", fontsize=10)
    page.insert_textbox(pymupdf.Rect(72, 600, 540, 760), "Closing words. " * 30, fontsize=10)
    doc.save(path)


FIXTURES = {
    "text_table.pdf": text_and_table, "chart.pdf": bar_chart, "photo_scan.pdf": photo_and_scan,
    "blank_dup.pdf": blank_and_duplicate, "enormous.pdf": enormous_pages, "book.epub": epub,
    "report.pdf": matplotlib_report, "dense.pdf": dense_vectors,
}


def write_fixtures(directory: str) -> dict[str, str]:
    """Every fixture of the snapshot, written into `directory`; {name: path}."""
    paths = {}
    for name, make in FIXTURES.items():
        paths[name] = os.path.join(directory, name)
        make(paths[name])
    return paths


def _r(box) -> list[float]:
    return [round(v, 4) for v in box]


def page_snapshot(result: dict) -> dict:
    """The parts of one `render_page` result the speed work must keep (of the derived
    parts: figures and tables; interleaved documents and caption pairs are made of them
    and tested in test_pdf_interleave)."""
    if isinstance(result, Outcome):  # a page the renderer dropped or failed
        return {"status": result.kind, "reason": result.reason}
    meta = result["meta"]
    markdown = result["markdown"] or ""
    return {
        "status": "ok",
        "size": [meta["width"], meta["height"]],
        "text": result["text"],
        "words": [[w["text"], _r(w["box"])] for w in meta["words"]],
        "lines": [[line["text"], _r(line["box"])] for line in meta["lines"]],
        "needs_ocr": meta["needs_ocr"],
        "drawings_total": meta["drawings_total"],
        "markdown_headings": [line.strip() for line in markdown.splitlines()
                              if line.lstrip().startswith("#")],
        "markdown_table_rows": [line.replace(" ", "") for line in markdown.splitlines()
                                if line.lstrip().startswith("|")],
        "derived": [{"kind": d["kind"], "box": _r(d["meta"]["box"]),
                     "source": d["meta"].get("figure_source"),
                     "caption": d["meta"]["caption"],
                     "csv": d["text"] if d["kind"] == "table" else None,
                     "table_markdown": d["markdown"],
                     "words": [w["text"] for w in d["meta"]["words"]]}
                    for d in result["derived"] if d["kind"] in ("figure", "table")],
    }


def snapshot(paths: dict[str, str]) -> dict:
    """{file name: [page snapshot, ...]} for every fixture, rendered in-process."""
    from pipelines.pdf import render

    settings = render.PdfRenderSettings()
    render.quiet_mupdf()
    out = {}
    for name, path in sorted(paths.items()):
        pages = []
        for message in render.iter_document(path, None, settings):
            if message[0] == "page":
                pages.append(page_snapshot(message[2]))
        out[name] = pages
    return out


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.pipelines.pdf_golden --write")
    with tempfile.TemporaryDirectory() as tmp:
        data = snapshot(write_fixtures(tmp))
    with open(GOLDEN, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    print(f"wrote {GOLDEN}")
