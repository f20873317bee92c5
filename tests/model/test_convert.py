"""Original deepseek-ai layout: export a tiny model under the original key names, load it back."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from model.collate import VLCollator, model_inputs
from model.convert import (detect_layout, from_original_state_dict, key_rules,
                           to_original_state_dict)
from model.loading import load_model
from pipelines.cli import main as vlforge

from .conftest import conversation_sample

FAMILY = {"tiny": "hybrid", "tiny-siglip": "siglip"}


def write_original_layout(model, processor, directory, family):
    """A checkpoint dir as deepseek-ai publishes it: multi_modality config + original names."""
    directory.mkdir(parents=True)
    state = to_original_state_dict(model.state_dict(), family)
    # The published SigLIP towers still carry timm's unused MAP-pooling head, and older
    # Llama checkpoints a rotary buffer: both must be dropped on import.
    tower = "vision_model.vision_tower_low.vision_tower." if family == "hybrid" else "vision_model.vision_tower."
    state[tower + "attn_pool.latent"] = torch.zeros(1, 1, 32)
    state["language_model.model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.zeros(8)
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model_type": "multi_modality"}))
    processor.tokenizer.save_pretrained(str(directory))
    return state


@pytest.mark.parametrize("name", ["tiny", "tiny-siglip"])
def test_original_layout_round_trip(tiny_models, tmp_path, name):
    model, processor = tiny_models[name]
    family = FAMILY[name]
    original = write_original_layout(model, processor, tmp_path / "orig", family)
    # Original names really are the deepseek-ai ones (spot checks), fused qkv included.
    if family == "hybrid":
        assert "vision_model.vision_tower_high.vision_tower.blocks.0.attn.qkv.weight" in original
        assert "vision_model.vision_tower_high.vision_tower.neck_hd.0.weight" in original
        assert "aligner.high_up_proj.weight" in original and "aligner.layers.1.weight" in original
        qkv = original["vision_model.vision_tower_low.vision_tower.blocks.1.attn.qkv.weight"]
    else:
        assert "aligner.layers.0.weight" in original and "aligner.layers.2.bias" in original
        qkv = original["vision_model.vision_tower.blocks.1.attn.qkv.weight"]
    assert qkv.shape == (96, 32)
    assert "language_model.lm_head.weight" in original
    assert not any(k.startswith("model.") for k in original)
    assert detect_layout(tmp_path / "orig") == "original"

    loaded, processor2 = load_model(tmp_path / "orig", preset=name)
    reference = model.state_dict()
    assert set(loaded.state_dict()) == set(reference)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key
    batch = VLCollator(processor2)([conversation_sample(images=1)])
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.allclose(model(**model_inputs(batch)).logits,
                              loaded(**model_inputs(batch)).logits, atol=1e-6)


def test_model_init_from_original_weights(tiny_models, tmp_path, capsys):
    model, processor = tiny_models["tiny"]
    write_original_layout(model, processor, tmp_path / "orig", "hybrid")
    out = tmp_path / "converted"
    assert vlforge(["model", "init", "--preset", "tiny", "--out", str(out),
                    "--weights", str(tmp_path / "orig")]) == 0
    assert detect_layout(out) == "transformers"
    converted, _ = load_model(out)
    assert torch.equal(converted.model.aligner.proj.weight, model.model.aligner.proj.weight)
    # Wrong family for the weights: a clear error.
    assert vlforge(["model", "init", "--preset", "tiny-siglip", "--out", str(tmp_path / "x"),
                    "--weights", str(tmp_path / "orig")]) == 1
    assert "hybrid model but preset tiny-siglip" in capsys.readouterr().err


def test_unknown_original_keys_are_reported():
    with pytest.raises(ValueError, match="no place"):
        from_original_state_dict({"vision_model.something_else.weight": torch.zeros(1)}, "siglip")


def test_rules_are_a_bijection_on_7b_names():
    # Every transformers parameter of the 7B architecture has an original name and back.
    from model.presets import build_config, model_class_for

    with torch.device("meta"):
        model = model_class_for(build_config("7b"))(build_config("7b"))
    names = {k: torch.empty(0) for k in model.state_dict()}
    back = from_original_state_dict(
        {k: torch.zeros(3, 2) if "qkv" in k else torch.zeros(1, 2)
         for k in to_original_state_dict(names, "hybrid")}, "hybrid")
    assert set(back) == set(names)
    assert len(key_rules("hybrid")) > len(key_rules("siglip"))
