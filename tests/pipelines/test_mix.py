"""The mix of a training run by the paper's data categories, in the report."""

from __future__ import annotations

import json

import pytest

from pipelines.app.mix import (
    CAPTION,
    DOC_OCR,
    GENERAL_SFT,
    INTERLEAVED,
    PAPER_PRETRAIN,
    PAPER_SFT,
    TABLE_CHART,
    TAXONOMY_SFT,
    TEXT_ONLY,
    WEB_CODE,
    category_of,
    training_mix,
)
from pipelines.app.report import build_report
from pipelines.core.sample import Sample
from tests.training.conftest import draw_png, write_run_dir


def test_paper_tables_sum_to_100():
    assert sum(PAPER_PRETRAIN.values()) == pytest.approx(100.0)
    assert sum(PAPER_SFT.values()) == pytest.approx(100.0)


@pytest.mark.parametrize("row,sft,category", [
    ({"source": "synth", "num_images": 1}, False, WEB_CODE),
    ({"source": "pdf", "num_images": 1, "derived_from": "k"}, False, TABLE_CHART),
    ({"source": "pdf", "num_images": 1}, False, DOC_OCR),
    # interleaved documents and caption pairs are derived too, but not table & chart
    ({"source": "pdf", "num_images": 1, "derived_from": "k",
      "locator": "sha256:x#page=0&interleaved=0"}, False, INTERLEAVED),
    ({"source": "pdf", "num_images": 1, "derived_from": "k",
      "locator": "sha256:x#page=0&caption=1"}, False, CAPTION),
    ({"source": "pdf", "num_images": 1, "derived_from": "k",
      "locator": "sha256:x#page=0&figure=1"}, False, TABLE_CHART),
    ({"source": "web", "num_images": 3, "derived_from": "k",
      "locator": "https://a.example/p?x=1&interleaved=0"}, True, GENERAL_SFT),
    ({"source": "web", "num_images": 1, "locator": "https://a.example/p?x=1&caption=2"},
     False, DOC_OCR),  # a page whose URL merely has such a parameter
    ({"source": "web", "num_images": 1}, True, TAXONOMY_SFT),
    # a web code pair (screenshot -> simplified HTML) is web code in both mixes
    ({"source": "web", "num_images": 1, "derived_from": "k",
      "locator": "https://a.example/p#&code=0"}, False, WEB_CODE),
    ({"source": "web", "num_images": 1, "derived_from": "k",
      "locator": "https://a.example/p#&code=0"}, True, WEB_CODE),
    ({"source": "sft", "num_images": 1,
      "taxonomy_leaf": "analysis.data_chart_analysis.graph_interpretation"}, True, TABLE_CHART),
    ({"source": "text", "num_images": 0}, False, TEXT_ONLY),
])
def test_category_table(row, sft, category):
    assert category_of(row, sft) == category


def test_training_mix_measures_language_steps_and_run_categories(tmp_path):
    pages = [Sample.create("pdf", f"sha256:x#page={i}", image=draw_png("red", "square"),
                           text=f"page {i}", lineage={"input_id": f"doc{i}"}) for i in range(6)]
    charts = [Sample.create("synth", f"synthetic:{i}", image=draw_png("blue", "bar"),
                            text="import matplotlib", lineage={"input_id": f"c{i}"})
              for i in range(6)]
    pdf_run = write_run_dir(tmp_path / "pdf", "pdf", pages)
    synth_run = write_run_dir(tmp_path / "synth", "synth", charts)
    train = tmp_path / "train"
    train.mkdir()
    (train / "stage.json").write_text(json.dumps({
        "config": {"stage": 2, "mixture": {"synth": 1.0, "pdf": 3.0}},
        "data": [pdf_run, synth_run], "text": ["corpus.jsonl"]}))
    modalities = ["language"] * 7 + ["multimodal"] * 3
    (train / "metrics.jsonl").write_text("".join(
        json.dumps({"step": i + 1, "loss": 1.0, "modality": m}) + "\n"
        for i, m in enumerate(modalities)))
    mix = training_mix(str(train))
    assert mix["table"] == "Table 1" and mix["steps"] == 10 and mix["language_steps"] == 7
    assert mix["measured"][TEXT_ONLY] == 70.0
    # 30% multimodal, weighted 3:1 between the pdf run (document OCR) and synth (web code)
    assert mix["measured"][DOC_OCR] == 22.5 and mix["measured"][WEB_CODE] == 7.5
    assert sum(mix["measured"].values()) == pytest.approx(100.0)
    page = build_report([str(train)])
    assert "Data mix by paper category" in page and "document OCR" in page and "70.0%" in page


@pytest.mark.parametrize("locator,derived_from,kind", [
    ("sha256:x#page=1&figure=0", "k", "figure"),
    ("https://a.example/p?x=1&y=2#tile=3", "k", "tile"),
    ("https://a.example/p#&interleaved=0", "k", "interleaved"),
    ("https://a.example/p#&code=0", "k", "code"),
    ("https://a.example/p?x=1&caption=2", "", ""),  # a page, not derived: its query is no tag
    ("https://a.example/p#section", "k", ""),
])
def test_derived_kind_reads_the_tag_a_parent_appended(locator, derived_from, kind):
    from pipelines.app.mix import derived_kind

    assert derived_kind({"locator": locator, "derived_from": derived_from}) == kind
