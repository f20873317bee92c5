"""Fixtures for the trainer tests: a tiny model directory and finished run directories.

Run directories are real pipeline outputs in the handoff format (shards written by
`ShardWriter`, manifest/stats/`_SUCCESS` by `RunDir`): caption pairs of PNGs drawn here,
and SFT conversations about them, like `vlforge sft` writes.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.shards import ShardWriter

# The test machine's few cores are shared: one intra-op thread avoids oversubscription.
torch.set_num_threads(1)

COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220),
          "yellow": (230, 210, 40)}
SHAPES = ("square", "circle", "bar")
LEAVES = ("recognition.global_description.theme", "recognition.ocr_transcription.printed_text",
          "analysis.data_chart_analysis.graph_interpretation")


def draw_png(color: str, shape: str, size: int = 48) -> bytes:
    image = Image.new("RGB", (size, size), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    box = (8, 8, size - 8, size - 8)
    if shape == "circle":
        draw.ellipse(box, fill=COLORS[color])
    elif shape == "bar":
        draw.rectangle((8, size // 3, size - 8, 2 * size // 3), fill=COLORS[color])
    else:
        draw.rectangle(box, fill=COLORS[color])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_run_dir(path: Path, pipeline: str, samples: list[Sample], max_count: int = 8) -> str:
    """A finished run directory holding `samples` (shards of at most `max_count`)."""
    run = RunDir(str(path))
    refs = [input_ref(pipeline, s.locator) for s in samples]
    tasks = run.plan(pipeline, refs, {"fixture": True}, task_size=len(refs))
    (task,) = tasks
    writer = ShardWriter(run.url, prefix=f"{pipeline}-{task.task_id}", max_count=max_count)
    for sample in samples:
        writer.write(sample)
    shards = writer.close()
    run.write_task(task.task_id, shards, writer.rows, [])
    run.finalize()
    assert run.complete
    return str(path)


def caption_samples() -> list[Sample]:
    out = []
    for color in COLORS:
        for shape in SHAPES:
            for variant in range(2):
                locator = f"fixture://{color}-{shape}-{variant}"
                ref = input_ref("captions", locator)  # the ids the run's plan records
                lineage = {"input_id": ref["input_id"], "item_id": ref["item_id"]}
                out.append(Sample.create(
                    "captions", locator, lineage=lineage, image=draw_png(color, shape, 40 + 8 * variant),
                    text=f"a {color} {shape} on a white background",
                    meta={"taxonomy": {"leaf": LEAVES[len(out) % len(LEAVES)], "version": "1"}}))
    return out


def sft_samples() -> list[Sample]:
    out = []
    for color in COLORS:
        for shape in SHAPES:
            locator = f"fixture-sft://{color}-{shape}"
            conversation = [
                {"role": "user", "content": "<image_placeholder>What color is the shape?"},
                {"role": "assistant", "content": f"The {shape} is {color}."},
            ]
            options = [f"The {shape} is {c}." for c in COLORS]
            ref = input_ref("sft", locator)
            out.append(Sample.create(
                "sft", locator, lineage={"input_id": ref["input_id"], "item_id": ref["item_id"]},
                image=draw_png(color, shape),
                meta={"sft": {"conversation": conversation, "template": "fixture",
                              "options": options, "answer": options.index(
                                  f"The {shape} is {color}.")},
                      "taxonomy": {"leaf": LEAVES[len(out) % len(LEAVES)], "version": "1"}}))
    return out


TEXT = """The quick brown fox jumps over the lazy dog near the river bank.

Vision language models read images and text together and answer questions about them.

A chart shows values along two axes; a table arranges them in rows and columns.

Stage two mixes language-only data with multimodal data at a ratio of seven to three.

Optical character recognition turns pictures of printed text back into characters.

Every optimizer step is either all language or all multimodal in modality-group training.
"""


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    from model.build import init_model_dir

    path = tmp_path_factory.mktemp("model") / "tiny"
    init_model_dir("tiny", path, seed=0)
    return str(path)


@pytest.fixture(scope="session")
def caption_run(tmp_path_factory) -> str:
    return write_run_dir(tmp_path_factory.mktemp("runs") / "captions", "captions",
                         caption_samples(), max_count=8)


@pytest.fixture(scope="session")
def sft_run(tmp_path_factory) -> str:
    return write_run_dir(tmp_path_factory.mktemp("runs") / "sft", "sft", sft_samples(),
                         max_count=4)


@pytest.fixture(scope="session")
def text_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n".join([TEXT] * 3), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def dialogue_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("text") / "dialogue.jsonl"
    rows = [{"conversation": [{"role": "user", "content": f"What is {a} plus {b}?"},
                              {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]}
            for a in range(4) for b in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture()
def unfinished_run(tmp_path) -> str:
    path = Path(write_run_dir(tmp_path / "unfinished", "captions", caption_samples()[:3]))
    os.remove(path / "_SUCCESS")
    return str(path)
