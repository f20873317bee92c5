"""Fixtures for taxonomy tests: one labeler per session, and small finished runs."""

import io
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageDraw

from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.shards import ShardWriter

LABELED_PROMPTS = Path(__file__).with_name("labeled_prompts.yaml")


@pytest.fixture(scope="session")
def labeler():
    from taxonomy.labeler import Labeler

    return Labeler().open()  # the real offline MiniLM model, loaded once


@pytest.fixture(scope="session")
def labeled_prompts() -> list[dict]:
    return yaml.safe_load(LABELED_PROMPTS.read_text())


def png(text: str = "", size=(96, 64)) -> bytes:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((4, 4), text or "x", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def content_samples() -> list[Sample]:
    """One sample per kind a content pipeline writes, plus SFT and text-only ones."""
    page = Sample.create("pdf", "sha256:abc#page=0", image=png("Hello"), text="Hello world",
                         meta={"pdf": {"kind": "page", "page": 0, "needs_ocr": False,
                                       "lines": [{"box": [0, 0, 1, .1], "text": "Hello world"}]}})
    scan = Sample.create("pdf", "sha256:def#page=1", image=png("Scan"),
                         meta={"pdf": {"kind": "page", "needs_ocr": True},
                               "ocr": {"backend": "rapidocr", "text": "Scanned words",
                                       "lines": [{"box": [0, 0, 1, .1],
                                                  "text": "Scanned words"}]}})
    chart = Sample.create("pdf", "sha256:abc#page=0/figure=0", image=png("chart"),
                          meta={"chart": {"charts": [{"type": "bar", "series": []}]}})
    table = Sample.create("pdf", "sha256:abc#page=2/table=0", image=png("table"),
                          meta={"pdf": {"kind": "table", "needs_ocr": True}})
    web = Sample.create("web", "http://127.0.0.1/page", image=png("web"), html="<html></html>",
                        meta={"web": {"url": "http://127.0.0.1/page", "title": "t"}})
    sft_prompt = Sample.create("sft", "import:1", image=png("q"), meta={"sft": {"conversation": [
        {"role": "user",
         "content": "<image_placeholder>Which year has the tallest bar in the bar chart?"},
        {"role": "assistant", "content": "2021"}]}})
    sft_multi = Sample.create("sft", "import:2", image=png("a"), extra_images=(png("b"),),
                              meta={"sft": {"conversation": [
                                  {"role": "user", "content": "<image_placeholder><image_placeholder>"
                                   "Spot the differences between the two pictures."},
                                  {"role": "assistant", "content": "The hat."}]}})
    sft_template = Sample.create("sft", "built:1", image=png("t"), meta={"sft": {
        "leaf": "conversion.image_to_code.chart_to_code", "template": "chart_code",
        "conversation": [{"role": "user", "content": "<image_placeholder>Code?"},
                         {"role": "assistant", "content": "import matplotlib"}]}})
    text_only = Sample.create("text", "corpus:1", text="Plain language-model text.")
    bare = Sample.create("images", "file:///x.png", image=png())
    return [page, scan, chart, table, web, sft_prompt, sft_multi, sft_template, text_only, bare]


EXPECTED_LEAVES = [
    "recognition.ocr_transcription.printed_text",
    "recognition.ocr_transcription.printed_text",
    "analysis.data_chart_analysis.graph_interpretation",
    "analysis.data_chart_analysis.table_interpretation",
    "conversion.image_to_code.ui_to_code",
    "analysis.data_chart_analysis.graph_interpretation",
    "multi_graph.comparison.spotting_differences",
    "conversion.image_to_code.chart_to_code",
    "unlabeled",
    "unlabeled",
]


def write_fixture_run(url: str, samples: list[Sample], pipeline: str = "fixture",
                      task_size: int = 4) -> RunDir:
    """A finished run directory holding `samples`, written with the run-dir API."""
    refs = {}
    for sample in samples:
        ref = input_ref(pipeline, sample.locator)
        refs[ref["input_id"]] = (ref, sample)
    run = RunDir(url)
    for task in run.plan(pipeline, [r for r, _ in refs.values()], {}, task_size=task_size):
        writer = ShardWriter(run.url, prefix=f"{pipeline}-{task.task_id}")
        for ref in task.input_refs:
            sample = refs[ref["input_id"]][1]
            lineage = {**sample.lineage, "input_id": ref["input_id"], "item_id": ref["item_id"],
                       "input_ref": ref, "task": task.task_id}
            writer.write(sample.with_meta("lineage", lineage))
        run.write_task(task.task_id, writer.close(), writer.rows, [])
    run.finalize()
    return run
