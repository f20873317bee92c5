"""The ExtractCharts stage on PDF page samples, synthetic samples, and plain samples."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pymupdf  # noqa: E402
import pytest  # noqa: E402

from pipelines.charts.stage import ExtractChartsFn, charts_from_pdf_meta  # noqa: E402
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


def rendered(path, index):
    """The isolated renderer's result for one page (run in-process here)."""
    from pipelines.pdf.render import render_page
    from pipelines.pdf.settings import PdfRenderSettings

    with pymupdf.open(path) as doc:
        return render_page(doc, index, PdfRenderSettings(markdown=False))


def page_sample(path, index):
    meta = rendered(path, index)["meta"]
    return Sample.create("pdf", f"{path}#page={index}", meta={"pdf": {**meta, "path": path}})


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


def test_charts_come_from_the_renderer_meta_never_from_the_file(chart_pdf, tmp_path):
    """The same charts whether the source file is there, gone, or now something else."""
    sample = page_sample(chart_pdf, 1)
    [there] = ExtractChartsFn(raster=False).run_local([sample])
    for path in (str(tmp_path / "gone.pdf"), str(tmp_path / "broken.pdf")):
        if path.endswith("broken.pdf"):
            (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
        moved = sample.with_meta("pdf", {**sample.meta["pdf"], "path": path})
        [out] = ExtractChartsFn(raster=False).run_local([moved])
        assert out.meta["chart"] == there.meta["chart"]


def test_spans_carry_what_the_chart_reader_needs(chart_pdf):
    meta = rendered(chart_pdf, 1)["meta"]
    labels = {s["text"]: s for s in meta["spans"]}
    assert {"red", "green", "blue", "Votes"} <= set(labels)  # tick labels split apart
    assert labels["red"]["rotation"] == 0 and labels["red"]["glyphs"][0][0] == "r"
    assert labels["red"]["size"] > 5 and all(0 <= v <= 1 for v in labels["red"]["box"])
    assert all(isinstance(d["closed"], bool) for d in meta["drawings"])


def test_meta_without_spans_falls_back_to_lines(chart_pdf):
    """Runs written before the renderer stored spans: the text lines stand in."""
    meta = {**rendered(chart_pdf, 1)["meta"], "spans": []}
    charts = charts_from_pdf_meta(meta)
    assert charts and charts[0]["type"] == "bar"
    got = {p["x"]: p["y"] for p in charts[0]["series"][0]["points"]}
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


def test_figure_sample_gets_boxes_relative_to_its_crop(chart_pdf):
    """A derived crop of the chart carries its own drawings and spans: its chart box is
    relative to the crop; a crop of text alone has no chart."""
    result = rendered(chart_pdf, 1)
    [crop] = [d for d in result["derived"] if d["kind"] in ("figure", "table")]
    figure = Sample.create("pdf", f"{chart_pdf}#page=1&figure=0", meta={"pdf": crop["meta"]})
    text_only = {**crop["meta"], "drawings": [], "spans": crop["meta"]["spans"][:3]}
    elsewhere = Sample.create("pdf", f"{chart_pdf}#page=1&figure=1", meta={"pdf": text_only})
    out = ExtractChartsFn(raster=False).run_local([figure, elsewhere])
    [chart] = out[0].meta["chart"]["charts"]
    assert {p["x"]: p["y"] for p in chart["series"][0]["points"]} == pytest.approx(
        {"red": 12, "green": 30.5, "blue": 21}, rel=1e-3)
    assert chart["box"][0] < 0.3 and chart["box"][2] > 0.7  # fills most of the crop
    assert "chart" not in out[1].meta
