"""Original deepseek-ai checkpoints, with the key list written from the upstream model code.

`test_convert.py` exports our own model through `to_original_state_dict`, so its fake
checkpoint can only hold names the rename table already knows. Here every key is spelled by
hand from the module names of the upstream DeepSeek-VL repository (deepseek_vl/models/:
`modeling_vlm.MultiModalityCausalLM` = vision_model + aligner + language_model;
`clip_encoder.HybridVisionTower` = vision_tower_high / vision_tower_low (each a
`CLIPVisionTower` holding `.vision_tower`) + high_layer_norm / low_layer_norm;
`sam.ImageEncoderViT`; timm's `VisionTransformer` as built by `siglip_vit.create_siglip_vit`;
`projector.MlpProjector`; transformers' `LlamaForCausalLM`), at the tiny preset's sizes.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import save_file

from model.convert import load_published

# Tiny sizes matching model.presets' "tiny" / "tiny-siglip" (the upstream constructors'
# arguments in brackets).
SAM = {"width": 32, "depth": 2, "heads": 2, "mlp": 64, "img": 64, "patch": 8, "window": 4,
       "global_attn": (1,), "out_chans": 16, "downsample": (32, 64)}  # ImageEncoderViT(...)
SIGLIP = {"width": 32, "depth": 2, "mlp": 64, "img": 32, "patch": 8}  # VisionTransformer(...)
LM = {"hidden": 64, "ffn": 128, "layers": 2, "vocab": 1024, "head_dim": 16}  # LlamaConfig


def sam_keys(prefix: str) -> dict[str, tuple[int, ...]]:
    """sam.ImageEncoderViT(use_rel_pos=True, qkv_bias=True, sam_hd=True) at SAM's sizes."""
    w, grid, head_dim = SAM["width"], SAM["img"] // SAM["patch"], SAM["width"] // SAM["heads"]
    keys = {"patch_embed.proj.weight": (w, 3, SAM["patch"], SAM["patch"]),  # PatchEmbed.proj
            "patch_embed.proj.bias": (w,),
            "pos_embed": (1, grid, grid, w)}
    for i in range(SAM["depth"]):
        # Attention.rel_pos_h/w: (2 * input_size - 1, head_dim), input_size = the window for
        # windowed blocks, the whole grid for the global-attention ones
        side = grid if i in SAM["global_attn"] else SAM["window"]
        keys.update({f"blocks.{i}.norm1.weight": (w,), f"blocks.{i}.norm1.bias": (w,),
                     f"blocks.{i}.attn.qkv.weight": (3 * w, w), f"blocks.{i}.attn.qkv.bias": (3 * w,),
                     f"blocks.{i}.attn.proj.weight": (w, w), f"blocks.{i}.attn.proj.bias": (w,),
                     f"blocks.{i}.attn.rel_pos_h": (2 * side - 1, head_dim),
                     f"blocks.{i}.attn.rel_pos_w": (2 * side - 1, head_dim),
                     f"blocks.{i}.norm2.weight": (w,), f"blocks.{i}.norm2.bias": (w,),
                     f"blocks.{i}.mlp.lin1.weight": (SAM["mlp"], w),  # MLPBlock.lin1/lin2
                     f"blocks.{i}.mlp.lin1.bias": (SAM["mlp"],),
                     f"blocks.{i}.mlp.lin2.weight": (w, SAM["mlp"]), f"blocks.{i}.mlp.lin2.bias": (w,)})
    out = SAM["out_chans"]
    # neck = Sequential(Conv2d 1x1 no bias, LayerNorm2d, Conv2d 3x3 no bias, LayerNorm2d);
    # neck_hd = copy.deepcopy(neck)
    for neck in ("neck", "neck_hd"):
        keys.update({f"{neck}.0.weight": (out, w, 1, 1), f"{neck}.1.weight": (out,),
                     f"{neck}.1.bias": (out,), f"{neck}.2.weight": (out, out, 3, 3),
                     f"{neck}.3.weight": (out,), f"{neck}.3.bias": (out,)})
    c1, c2 = SAM["downsample"]  # downsamples = Sequential(Conv2d 3x3 s2 no bias, ...)
    keys.update({"downsamples.0.weight": (c1, out, 3, 3), "downsamples.1.weight": (c2, c1, 3, 3),
                 "hd_alpha_downsamples": (1,)})
    return {prefix + k: v for k, v in keys.items()}


def siglip_keys(prefix: str) -> dict[str, tuple[int, ...]]:
    """timm VisionTransformer(global_pool="map", class_token=False, num_classes=0)."""
    w, mlp = SIGLIP["width"], SIGLIP["mlp"]
    tokens = (SIGLIP["img"] // SIGLIP["patch"]) ** 2
    keys = {"patch_embed.proj.weight": (w, 3, SIGLIP["patch"], SIGLIP["patch"]),
            "patch_embed.proj.bias": (w,), "pos_embed": (1, tokens, w),
            "norm.weight": (w,), "norm.bias": (w,)}
    for i in range(SIGLIP["depth"]):
        keys.update({f"blocks.{i}.norm1.weight": (w,), f"blocks.{i}.norm1.bias": (w,),
                     f"blocks.{i}.attn.qkv.weight": (3 * w, w), f"blocks.{i}.attn.qkv.bias": (3 * w,),
                     f"blocks.{i}.attn.proj.weight": (w, w), f"blocks.{i}.attn.proj.bias": (w,),
                     f"blocks.{i}.norm2.weight": (w,), f"blocks.{i}.norm2.bias": (w,),
                     f"blocks.{i}.mlp.fc1.weight": (mlp, w), f"blocks.{i}.mlp.fc1.bias": (mlp,),
                     f"blocks.{i}.mlp.fc2.weight": (w, mlp), f"blocks.{i}.mlp.fc2.bias": (w,)})
    # AttentionPoolLatent (global_pool="map"): built, unused with ignore_head=True
    keys.update({"attn_pool.latent": (1, 1, w), "attn_pool.q.weight": (w, w),
                 "attn_pool.q.bias": (w,), "attn_pool.kv.weight": (2 * w, w),
                 "attn_pool.kv.bias": (2 * w,), "attn_pool.proj.weight": (w, w),
                 "attn_pool.proj.bias": (w,), "attn_pool.norm.weight": (w,),
                 "attn_pool.norm.bias": (w,), "attn_pool.mlp.fc1.weight": (mlp, w),
                 "attn_pool.mlp.fc1.bias": (mlp,), "attn_pool.mlp.fc2.weight": (w, mlp),
                 "attn_pool.mlp.fc2.bias": (w,)})
    return {prefix + k: v for k, v in keys.items()}


def llama_keys() -> dict[str, tuple[int, ...]]:
    """LlamaForCausalLM under `language_model.` (with an old-style rotary buffer)."""
    h, f, v = LM["hidden"], LM["ffn"], LM["vocab"]
    keys = {"language_model.model.embed_tokens.weight": (v, h),
            "language_model.model.norm.weight": (h,), "language_model.lm_head.weight": (v, h)}
    for i in range(LM["layers"]):
        p = f"language_model.model.layers.{i}."
        keys.update({p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (h, h),
                     p + "self_attn.v_proj.weight": (h, h), p + "self_attn.o_proj.weight": (h, h),
                     p + "self_attn.rotary_emb.inv_freq": (LM["head_dim"] // 2,),
                     p + "mlp.gate_proj.weight": (f, h), p + "mlp.up_proj.weight": (f, h),
                     p + "mlp.down_proj.weight": (h, f), p + "input_layernorm.weight": (h,),
                     p + "post_attention_layernorm.weight": (h,)})
    return keys


def upstream_keys(family: str) -> dict[str, tuple[int, ...]]:
    """Every tensor name + shape of MultiModalityCausalLM.state_dict() for a family."""
    h = LM["hidden"]
    if family == "hybrid":
        keys = {**sam_keys("vision_model.vision_tower_high.vision_tower."),
                **siglip_keys("vision_model.vision_tower_low.vision_tower."),
                # HybridVisionTower: LayerNorm(output_dim) each, never called in forward
                "vision_model.high_layer_norm.weight": (h,), "vision_model.high_layer_norm.bias": (h,),
                "vision_model.low_layer_norm.weight": (h,), "vision_model.low_layer_norm.bias": (h,),
                # MlpProjector "low_high_hybrid_split_mlp_gelu", depth 2: high_up_proj,
                # low_up_proj, layers = Sequential(GELU, Linear). (Upstream gives both towers
                # one input_dim, 1024; the tiny preset's towers differ: 64 high, 32 low.)
                "aligner.high_up_proj.weight": (h // 2, SAM["downsample"][-1]),
                "aligner.high_up_proj.bias": (h // 2,),
                "aligner.low_up_proj.weight": (h // 2, SIGLIP["width"]),
                "aligner.low_up_proj.bias": (h // 2,),
                "aligner.layers.1.weight": (h, h), "aligner.layers.1.bias": (h,)}
    else:  # CLIPVisionTower directly; MlpProjector "mlp_gelu" depth 2: Linear, GELU, Linear
        keys = {**siglip_keys("vision_model.vision_tower."),
                "aligner.layers.0.weight": (h, SIGLIP["width"]), "aligner.layers.0.bias": (h,),
                "aligner.layers.2.weight": (h, h), "aligner.layers.2.bias": (h,)}
    return {**keys, **llama_keys()}


def write_upstream_checkpoint(directory, family: str, extra: dict | None = None):
    directory.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=generator) for k, shape in upstream_keys(family).items()}
    state.update(extra or {})
    save_file(state, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model_type": "multi_modality"}))
    return state


UNUSED = ("attn_pool.", "high_layer_norm", "low_layer_norm", "rotary_emb.inv_freq")


@pytest.mark.parametrize("preset,family", [("tiny", "hybrid"), ("tiny-siglip", "siglip")])
def test_every_upstream_key_loads(tmp_path, caplog, preset, family):
    original = write_upstream_checkpoint(tmp_path / "orig", family)
    with caplog.at_level(logging.INFO, logger="model.convert"):
        model = load_published(tmp_path / "orig", preset)
    params = dict(model.named_parameters())
    used = {k: v for k, v in original.items() if not any(u in k for u in UNUSED)}
    # every parameter came from the file, and every used tensor went somewhere: same count
    assert sum(v.numel() for v in used.values()) == sum(p.numel() for p in params.values())
    lm = "language_model.model.layers.1."
    assert torch.equal(params["model.language_model.layers.1.mlp.down_proj.weight"],
                       original[lm + "mlp.down_proj.weight"])
    assert torch.equal(params["lm_head.weight"], original["language_model.lm_head.weight"])
    low = ("vision_model.vision_tower_low.vision_tower." if family == "hybrid"
           else "vision_model.vision_tower.")
    _, k, _ = original[low + "blocks.1.attn.qkv.weight"].chunk(3)
    assert torch.equal(params["model.vision_model.encoder.layers.1.self_attn.k_proj.weight"], k)
    assert torch.equal(params["model.vision_model.embeddings.position_embedding.weight"],
                       original[low + "pos_embed"][0])
    if family == "hybrid":
        high = "vision_model.vision_tower_high.vision_tower."
        # SAM's own neck stays inside the SAM encoder; neck_hd is DeepSeek's extra neck
        assert torch.equal(params["model.high_res_vision_model.vision_encoder.neck.conv2.weight"],
                           original[high + "neck.2.weight"])
        assert torch.equal(params["model.high_res_vision_neck.layer_norm2.bias"],
                           original[high + "neck_hd.3.bias"])
        assert torch.equal(params["model.high_res_vision_proj.conv2.weight"],
                           original[high + "downsamples.1.weight"])
        assert torch.equal(params["model.high_res_vision_alpha"], original[high + "hd_alpha_downsamples"])
        assert torch.equal(
            params["model.high_res_vision_model.vision_encoder.layers.1.attn.rel_pos_h"],
            original[high + "blocks.1.attn.rel_pos_h"])
        assert torch.equal(params["model.aligner.high_res_vision_proj.weight"],
                           original["aligner.high_up_proj.weight"])
        assert torch.equal(params["model.aligner.proj.bias"], original["aligner.layers.1.bias"])
        assert "high/low_layer_norm" in caplog.text
    else:
        assert torch.equal(params["model.aligner.linear2.weight"], original["aligner.layers.2.weight"])
    assert "MAP-pooling head" in caplog.text and "dropped" in caplog.text


@pytest.mark.parametrize("stray", [
    "vision_model.vision_tower_high.vision_tower.neck_extra.0.weight",  # a module we lack
    "vision_model.middle_layer_norm.weight",           # near miss of the dropped norms
    "vision_model.high_layer_norm.running_mean",       # not a LayerNorm tensor
    "aligner.layers.3.weight",                         # a deeper MLP than the preset's
    # the LM keeps its names (one generic rule): the model refuses what it does not have
    "language_model.model.layers.0.self_attn.rotary_emb.scale",
])
def test_truly_unknown_keys_are_still_refused(tmp_path, stray):
    write_upstream_checkpoint(tmp_path / "orig", "hybrid", extra={stray: torch.zeros(1)})
    with pytest.raises(ValueError, match="no place|do not fit") as info:
        load_published(tmp_path / "orig", "tiny")
    assert stray.rsplit(".", 2)[-2] in str(info.value)
