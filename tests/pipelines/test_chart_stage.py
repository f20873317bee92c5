"""The ExtractCharts stage on PDF page samples, synthetic samples, and plain samples."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pymupdf  # noqa: E402
import pytest  # noqa: E402

from pipelines.charts.stage import ExtractChartsFn, charts_from_drawings_meta  # noqa: E402
from pipelines.charts.synthetic import synthetic_samples  # noqa: E402
from pipelines.core.outcome import Outcome  # noqa: E402
from pipelines.core.sample import Sample  # noqa: E402


@pytest.fixture(scope="module")
def chart_pdf(tmp_path_factory):
    """A two-page PDF: prose on page 1, a matplotlib bar chart placed on page 2."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(["red", "green", "blue"], [12, 30.5, 21])
    ax.set_title("Votes")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf")
    plt.close(fig)
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Introduction. Nothing drawn here.")
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 60), "Figure 1 shows the votes.")
    page.show_pdf_page(pymupdf.Rect(72, 100, 432, 352), pymupdf.open(stream=buffer.getvalue()), 0)
    path = tmp_path_factory.mktemp("charts") / "report.pdf"
    doc.save(str(path))
    return str(path)


def page_sample(path, index, **pdf):
    return Sample.create("pdf", f"{path}#page={index}",
                         meta={"pdf": {"path": path, "page": index, "kind": "page",
                                       "needs_ocr": False, **pdf}})


def test_pdf_page_charts_are_recovered_with_a_page_box(chart_pdf):
    out = ExtractChartsFn(raster=False).run_local([page_sample(chart_pdf, 0),
                                                   page_sample(chart_pdf, 1)])
    assert "chart" not in out[0].meta  # no chart: passes through untouched
    [chart] = out[1].meta["chart"]["charts"]
    assert chart["source"] == "pdf-vector" and chart["title"] == "Votes"
    assert {p["x"]: p["y"] for p in chart["series"][0]["points"]} == pytest.approx(
        {"red": 12, "green": 30.5, "blue": 21}, rel=1e-3)
    x0, y0, x1, y1 = chart["box"]
    # the chart sits in the upper part of the page, inside the placed rectangle
    assert 0.1 < x0 < x1 < 0.75 and 0.1 < y0 < y1 < 0.45


def test_pdf_meta_drawings_are_used_when_the_file_is_gone(chart_pdf):
    """The PDF pipeline's own page meta (normalised drawings + lines) suffices."""
    from pipelines.pdf.render import render_page
    from pipelines.pdf.settings import PdfRenderSettings

    with pymupdf.open(chart_pdf) as doc:
        result = render_page(doc, 1, PdfRenderSettings(markdown=False, figures=False, tables=False))
    meta = result["meta"]
    charts = charts_from_drawings_meta(meta)
    assert charts and charts[0]["type"] == "bar"
    got = {p["x"]: p["y"] for p in charts[0]["series"][0]["points"]}
    # rebuilt from rounded normalised coordinates and line boxes: close, not exact
    assert got == pytest.approx({"red": 12, "green": 30.5, "blue": 21}, rel=0.02)


def test_synthetic_samples_keep_truth_and_pass_through():
    [sample] = list(synthetic_samples(1, seed=3, chart_types=("line",)))
    chart = sample.meta["chart"]["charts"][0]
    assert chart["source"] == "synthetic" and "ax.plot(" in chart["code"]
    assert chart["table_csv"].startswith("x,")
    [out] = ExtractChartsFn().run_local([sample])
    assert out.meta["chart"] == sample.meta["chart"]


def test_text_only_samples_and_outcomes_pass_through():
    text = Sample.create("sft", "q1", text="hello")
    dropped = Outcome.dropped(text, "Earlier", "too_small", "x")
    out = ExtractChartsFn().run_local([text, dropped])
    assert out[0] == text and out[1] is dropped


def test_broken_pdf_path_falls_back_without_crashing(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    [out] = ExtractChartsFn(raster=False).run_local([page_sample(str(bad), 0)])
    assert isinstance(out, Sample) and "chart" not in out.meta


def test_figure_sample_gets_boxes_relative_to_its_crop(chart_pdf):
    figure = Sample.create("pdf", f"{chart_pdf}#page=1&figure=0",
                           meta={"pdf": {"path": chart_pdf, "page": 1, "kind": "figure",
                                         "box": [0.1, 0.1, 0.75, 0.45]}})
    elsewhere = Sample.create("pdf", f"{chart_pdf}#page=1&figure=1",
                              meta={"pdf": {"path": chart_pdf, "page": 1, "kind": "figure",
                                            "box": [0.1, 0.6, 0.9, 0.9]}})
    out = ExtractChartsFn(raster=False).run_local([figure, elsewhere])
    [chart] = out[0].meta["chart"]["charts"]
    assert chart["box"][0] < 0.2 and chart["box"][2] > 0.8  # fills most of the crop
    assert "chart" not in out[1].meta  # the chart is not inside that figure
