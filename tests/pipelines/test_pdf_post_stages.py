"""The PDF pipeline's stages with the shared post stages on: real OCR (rapidocr), chart
data recovery from the page's vector drawings, taxonomy labels."""

import pytest

from pipelines.core.outcome import Outcome
from pipelines.pdf.pipeline import build_stages, pdf_refs
from pipelines.core.runner import seed_sample
from tests.pipelines.pdf_fixtures import bar_chart, photo_and_scan


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    base = tmp_path_factory.mktemp("pdf-post")
    paths = [str(base / "chart.pdf"), str(base / "scan.pdf")]
    bar_chart(paths[0])
    photo_and_scan(paths[1])
    stages = build_stages({"ocr": "rapidocr", "ocr_policy": "missing", "charts": True,
                           "label": True})
    assert [s.stage for s in stages][0] == "RenderPdfPages" and len(stages) == 4
    out = [seed_sample("pdf", ref, "t00000") for ref in pdf_refs(paths)]
    for stage in stages:  # the same chain Beam runs, stage after stage, in-process
        out = stage.run_local(out)
    return [r for r in out if not isinstance(r, Outcome)]


def test_scanned_page_is_read_by_ocr(records):
    scans = [r for r in records if r.meta["pdf"]["kind"] == "page" and r.meta["pdf"]["needs_ocr"]
             and r.meta["pdf"]["path"].endswith("scan.pdf")]
    assert len(scans) == 1
    assert "INVOICE" in scans[0].meta["ocr"]["text"].upper()


def test_vector_bar_chart_data_is_recovered(records):
    charts = [c for r in records if r.meta["pdf"]["path"].endswith("chart.pdf")
              for c in (r.meta.get("chart") or {}).get("charts", [])]
    assert charts, "no chart recovered from the vector bar chart"
    bars = [c for c in charts if c["type"] == "bar"]
    assert bars
    values = [p["y"] for p in bars[0]["series"][0]["points"]]
    assert values == pytest.approx([40, 65, 80, 55], abs=3)


def test_every_sample_is_labelled(records):
    assert records and all("taxonomy" in r.meta and r.meta["taxonomy"].get("leaf")
                           for r in records)
