"""`model init` writes a directory that `load_model` reopens identically; saving round-trips."""

from __future__ import annotations

import json

import pytest
import torch

from model.build import MODEL_CARD, save_model_dir
from model.collate import VLCollator, model_inputs
from model.loading import load_model
from pipelines.cli import main as vlforge

from .conftest import conversation_sample


@pytest.mark.parametrize("name", ["tiny", "tiny-siglip"])
def test_init_dir_is_complete_and_reloads(tiny_dirs, tiny_models, name):
    directory = tiny_dirs[name]
    files = {p.name for p in directory.iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
            MODEL_CARD} <= files
    card = json.loads((directory / MODEL_CARD).read_text())
    assert card["preset"] == name and card["num_image_tokens"] == 16
    model, processor = tiny_models[name]
    assert processor.tokenizer.image_token == "<image_placeholder>"
    assert model.config.image_token_id == processor.image_token_id
    assert model.config.text_config.vocab_size == len(processor.tokenizer)


def test_save_load_round_trip_same_weights_and_outputs(tiny_models, tmp_path):
    model, processor = tiny_models["tiny"]
    with torch.no_grad():  # make the weights differ from a fresh init of the same seed
        model.model.aligner.proj.weight.add_(0.5)
    out = save_model_dir(model, processor, tmp_path / "ckpt")
    again, processor2 = load_model(out)
    original = model.state_dict()
    for key, value in again.state_dict().items():
        assert torch.equal(value, original[key]), key
    assert processor2.num_image_tokens == processor.num_image_tokens
    assert processor2.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    batch = VLCollator(processor)([conversation_sample(images=1)])
    batch2 = VLCollator(processor2)([conversation_sample(images=1)])
    assert torch.equal(batch["input_ids"], batch2["input_ids"])
    model.eval(), again.eval()
    with torch.no_grad():
        a = model(**model_inputs(batch)).logits
        b = again(**model_inputs(batch2)).logits
    assert torch.allclose(a, b, atol=1e-6)
    with torch.no_grad():
        model.model.aligner.proj.weight.sub_(0.5)


def test_cli_init_json_and_clear_errors(tmp_path, capsys):
    assert vlforge(["model", "init", "--preset", "tiny-siglip", "--out", str(tmp_path / "m"),
                    "--seed", "3", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["preset"] == "tiny-siglip" and card["weights"] == "random(seed=3)"
    model, _ = load_model(tmp_path / "m")
    assert type(model).__name__ == "DeepseekVLForConditionalGeneration"
    # Large presets need a local tokenizer: a clear error, exit code 1, nothing written.
    assert vlforge(["model", "init", "--preset", "7b", "--out", str(tmp_path / "big")]) == 1
    assert "needs the published tokenizer" in capsys.readouterr().err
    assert not (tmp_path / "big").exists()


def test_load_model_dtype(tiny_dirs):
    model, _ = load_model(tiny_dirs["tiny-siglip"], dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
