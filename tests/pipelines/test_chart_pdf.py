"""Chart recovery from matplotlib PDF output: PyMuPDF drawings + text spans."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pymupdf  # noqa: E402
import pytest  # noqa: E402

from pipelines.charts.pdf_vector import scenes_from_page, texts_from_page  # noqa: E402
from pipelines.charts.recognize import read_charts  # noqa: E402


def pdf_of(draw, style="default") -> bytes:
    with plt.style.context(style):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        draw(ax)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf")
        plt.close(fig)
    return buffer.getvalue()


def charts_of(pdf: bytes):
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        return [c for _, scene in scenes_from_page(doc[0]) for c in read_charts(scene)]


def test_pdf_bar_chart_values():
    def draw(ax):
        ax.bar(["Mon", "Tue", "Wed", "Thu"], [12.5, 30, 7.25, 18])
        ax.set_title("Visitors")
        ax.set_ylabel("People")

    [chart] = charts_of(pdf_of(draw, "bmh"))
    assert chart["type"] == "bar" and chart["title"] == "Visitors" and chart["y_label"] == "People"
    got = {p["x"]: p["y"] for p in chart["series"][0]["points"]}
    assert got == pytest.approx({"Mon": 12.5, "Tue": 30, "Wed": 7.25, "Thu": 18}, rel=1e-4)


def test_pdf_multi_line_chart_with_legend():
    def draw(ax):
        ax.plot([0, 1, 2, 3], [1.5, 3.5, 2.0, 4.0], label="north")
        ax.plot([0, 1, 2, 3], [0.5, 1.0, 3.0, 2.5], label="south", linestyle="--")
        ax.legend()
        ax.set_xlabel("week")

    [chart] = charts_of(pdf_of(draw))
    assert chart["type"] == "line" and chart["x_label"] == "week"
    by_name = {s["name"]: [p["y"] for p in sorted(s["points"], key=lambda p: p["x"])]
               for s in chart["series"]}
    assert by_name["north"] == pytest.approx([1.5, 3.5, 2.0, 4.0], rel=1e-4)
    assert by_name["south"] == pytest.approx([0.5, 1.0, 3.0, 2.5], rel=1e-4)


def test_tick_labels_on_one_baseline_are_split_into_labels():
    pdf = pdf_of(lambda ax: ax.bar(["Alpha", "Beta", "Gamma"], [1, 2, 3]))
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        texts = {t.text for t in texts_from_page(doc[0])}
    assert {"Alpha", "Beta", "Gamma"} <= texts


def test_chart_among_body_text_is_found_in_its_region():
    """A page with prose and a drawn chart: only the chart region is read."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 72), "Annual report 2024. Revenue grew 12 percent in 3 regions.")
    chart_pdf = pymupdf.open(stream=pdf_of(lambda ax: ax.bar(["a", "b"], [4, 9])), filetype="pdf")
    page.show_pdf_page(pymupdf.Rect(72, 200, 432, 452), chart_pdf, 0)
    data = doc.tobytes()
    [chart] = charts_of(data)
    got = {p["x"]: p["y"] for p in chart["series"][0]["points"]}
    assert got == pytest.approx({"a": 4, "b": 9}, rel=1e-3)


def test_page_without_drawings_has_no_chart():
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "just words 1 2 3")
    assert charts_of(doc.tobytes()) == []
