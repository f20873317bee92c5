"""`vlforge chat`: a tiny model taught one answer says it back, streamed and over a run directory."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from model.build import save_model_dir
from model.chat import Chat
from model.collate import VLCollator, model_inputs
from pipelines.cli import main as vlforge
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.shards import ShardWriter

from .conftest import conversation_sample, draw_png

ANSWER = "Red, answer 0."
QUESTION = "<image_placeholder> What colour is it?"


@pytest.fixture(scope="module")
def taught_dir(tiny_models, tmp_path_factory):
    """The tiny hybrid model after overfitting one conversation (answer-only loss)."""
    torch.manual_seed(0)
    model, processor = tiny_models["tiny"]
    model = copy.deepcopy(model).train()
    batch = VLCollator(processor)([conversation_sample(images=1)])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = model(**model_inputs(batch)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.05
    return save_model_dir(model.eval(), processor, tmp_path_factory.mktemp("taught") / "model")


def test_chat_answers_what_it_was_taught_and_streams(taught_dir, tmp_path, capsys):
    image = tmp_path / "red.png"
    image.write_bytes(draw_png("red"))
    chat = Chat(taught_dir, device="cpu")
    assert chat.ask(QUESTION, [image], max_new_tokens=16) == ANSWER
    # Streaming prints the tokens as they come; the CLI streams by default.
    assert vlforge(["chat", "--model", str(taught_dir), "--image", str(image), QUESTION,
                    "--max-new-tokens", "16"]) == 0
    assert capsys.readouterr().out.strip() == ANSWER
    # Sampling at a low temperature still produces text.
    assert vlforge(["chat", "--model", str(taught_dir), "--image", str(image), QUESTION,
                    "--sample", "--temperature", "0.5", "--max-new-tokens", "16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"]


def write_run(path, samples):
    run = RunDir(str(path))
    refs = [input_ref("sft", s.locator) for s in samples]
    (task,) = run.plan("sft", refs, {"fixture": True}, task_size=len(refs))
    writer = ShardWriter(run.url, prefix=f"sft-{task.task_id}")
    for sample, ref in zip(samples, refs):  # each sample answers for its planned input
        writer.write(sample.with_meta("lineage", {**sample.lineage, "input_id": ref["input_id"],
                                                  "item_id": ref["item_id"]}))
    run.write_task(task.task_id, writer.close(), writer.rows, [])
    run.finalize()
    return str(path)


def test_batched_answers_over_a_run_directory(taught_dir, tmp_path):
    samples = [conversation_sample(images=1),
               Sample.create("images", "pair", image=draw_png("blue"), text="blue"),
               Sample.create("images", "bad", image=b"broken", text="x"),
               Sample.create("text", "t", text="hello")]
    run = write_run(tmp_path / "run", samples)
    out = tmp_path / "answers.jsonl"
    assert vlforge(["chat", "--model", str(taught_dir), "--run", run, "--out", str(out),
                    "--batch-size", "2", "--max-new-tokens", "16"]) == 0
    rows = {row["key"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 4
    conv = rows[samples[0].key]
    assert conv["reference"] == ANSWER and conv["answer"] == ANSWER
    assert "bad_image" in rows[samples[2].key]["error"]
    assert isinstance(rows[samples[1].key]["answer"], str)


def test_chat_needs_a_question(taught_dir):
    assert vlforge(["chat", "--model", str(taught_dir)]) == 1
