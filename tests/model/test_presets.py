"""Presets: tiny forward/backward for each family, and `model info` vs the published architecture."""

from __future__ import annotations

import json

import pytest
import torch

from model.collate import VLCollator, model_inputs
from model.presets import PRESETS, build_config, num_image_tokens_of
from pipelines.cli import main as vlforge

from .conftest import conversation_sample


@pytest.mark.parametrize("name", ["tiny", "tiny-siglip"])
def test_tiny_forward_backward_every_family(tiny_models, name):
    model, processor = tiny_models[name]
    batch = VLCollator(processor)([conversation_sample(images=2), conversation_sample(images=0)])
    model.zero_grad()
    loss = model(**model_inputs(batch)).loss
    assert torch.isfinite(loss)
    loss.backward()
    # Gradients reach the LM, the adaptor and the vision tower(s): the image tokens were used.
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert any(n.startswith("model.aligner.") and g.abs().sum() > 0 for n, g in grads.items())
    assert any(n.startswith("model.vision_model.") and g.abs().sum() > 0 for n, g in grads.items())
    if name == "tiny":
        assert any(n.startswith("model.high_res_vision_model.") for n in grads)
    model.zero_grad()


def test_image_tokens_follow_vision_grid():
    for preset in PRESETS.values():
        config = build_config(preset)
        assert num_image_tokens_of(config) == preset.num_image_tokens
    assert PRESETS["1.3b"].num_image_tokens == PRESETS["7b"].num_image_tokens == 576
    assert PRESETS["tiny"].num_image_tokens == 16


def _info(preset, capsys):
    assert vlforge(["model", "info", "--preset", preset, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _llama_params(vocab, d, layers, ffn):
    per_layer = 4 * d * d + 3 * d * ffn + 2 * d  # q,k,v,o (no bias) + gate/up/down + 2 RMSNorms
    return vocab * d + layers * per_layer + d  # embeddings + layers + final norm


def _siglip_l_384_params():
    d, ffn, layers, patches = 1024, 4096, 24, (384 // 16) ** 2
    embed = 3 * 16 * 16 * d + d + patches * d
    per_layer = 4 * (d * d + d) + (d * ffn + ffn) + (ffn * d + d) + 4 * d
    return embed + layers * per_layer + 2 * d  # + post-layernorm, no MAP head


def test_info_1_3b_matches_published_architecture(capsys):
    info = _info("1.3b", capsys)
    assert info["class"] == "DeepseekVLForConditionalGeneration"
    assert info["language_model"] == {
        "layers": 24, "hidden_size": 2048, "heads": 16, "kv_heads": 16, "intermediate_size": 5632,
        "vocab_size": 102400, "max_position_embeddings": 16384, "tie_word_embeddings": False}
    assert info["vision"]["image_size"] == 384 and info["vision"]["patch_size"] == 16
    assert info["num_image_tokens"] == 576 and info["image_token_id"] == 100015
    params = info["parameters"]
    assert params["language_model"] == _llama_params(102400, 2048, 24, 5632)
    assert params["lm_head"] == 102400 * 2048
    assert params["vision"] == _siglip_l_384_params()
    # Adaptor: Linear(1024, 2048) - GELU - Linear(2048, 2048).
    assert params["aligner"] == (1024 * 2048 + 2048) + (2048 * 2048 + 2048)
    assert 1.9e9 < info["parameters_total"] < 2.0e9  # "1.3B" LLM + 0.3B SigLIP ~ 1.96B


def test_info_7b_matches_published_architecture(capsys):
    info = _info("7b", capsys)
    assert info["class"] == "DeepseekVLHybridForConditionalGeneration"
    lm = info["language_model"]
    assert (lm["layers"], lm["hidden_size"], lm["heads"], lm["intermediate_size"], lm["vocab_size"]) \
        == (30, 4096, 32, 11008, 102400)
    high = info["high_res_vision"]
    assert (high["image_size"], high["patch_size"], high["hidden_size"], high["layers"],
            high["window_size"], high["global_attn_indexes"]) == (1024, 16, 768, 12, 14, [2, 5, 8, 11])
    assert info["num_image_tokens"] == 576 and info["image_token_id"] == 100015
    params = info["parameters"]
    assert params["language_model"] == _llama_params(102400, 4096, 30, 11008)
    assert params["vision"] == _siglip_l_384_params()
    # Hybrid split MLP: high->Linear(1024, d/2), low->Linear(1024, d/2), Linear(d, d).
    assert params["aligner"] == 2 * (1024 * 2048 + 2048) + (4096 * 4096 + 4096)
    # DeepSeek's SAM additions: neck_hd (1x1 768->256, LN, 3x3 256->256, LN),
    # two 3x3 stride-2 convs 256->512->1024 (no bias), and the alpha scalar.
    neck_hd = 768 * 256 + 2 * 256 + 256 * 256 * 9 + 2 * 256
    assert params["high_res_adaptor"] == neck_hd + 256 * 512 * 9 + 512 * 1024 * 9 + 1
    assert 89e6 < params["high_res_vision"] < 91e6  # SAM-B image encoder: ~89.7M
    assert 7.2e9 < info["parameters_total"] < 7.4e9


def test_info_text_output_and_unknown_preset(capsys):
    assert vlforge(["model", "info", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "image tokens per image: 16" in out and "SAM" in out
    with pytest.raises(SystemExit):
        vlforge(["model", "info", "--preset", "13b"])
