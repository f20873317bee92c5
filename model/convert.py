"""Published DeepSeek-VL weights from a local directory, in either layout.

- **transformers layout** (``config.json`` with ``model_type`` deepseek_vl / deepseek_vl_hybrid,
  e.g. the deepseek-community conversions): opened with ``from_pretrained``.
- **original deepseek-ai layout** (``model_type: multi_modality``; keys such as
  ``vision_model.vision_tower_high.vision_tower.blocks.3.attn.qkv.weight``, timm SigLIP with
  fused qkv, ``aligner.layers.0``, ``language_model.model.layers...``): keys are renamed
  with the bijective rule table below, SigLIP's fused qkv is split into q/k/v, its
  ``pos_embed`` [1, n, d] becomes the [n, d] position embedding, and tensors the upstream
  model holds but never uses are dropped with a logged note (`dropped_reason`): SigLIP's
  MAP-pooling head (``attn_pool``), the hybrid tower's ``high_layer_norm`` /
  ``low_layer_norm``, old rotary ``inv_freq`` buffers. Any other unknown key is refused.

transformers documents this conversion in ``convert_deepseek_vl(_hybrid)_weights_to_hf.py``,
but those scripts are not part of the installed wheel (they sit only in the source tree), so
the rule table lives here; the same table also exports a model back to the original names
(`to_original_state_dict`), which is how the round-trip test writes an original-layout model.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Iterable

import torch

log = logging.getLogger(__name__)

_HI = "vision_model.vision_tower_high.vision_tower."
_HF_HI = "model.high_res_vision_model.vision_encoder."
_LO_HYBRID = "vision_model.vision_tower_low.vision_tower."
_LO_SIGLIP = "vision_model.vision_tower."
_HF_LO = "model.vision_model."

# Placeholders shared by both sides of a rule: {L} layer number, {K} 1/2 index,
# {S} weight|bias, {R} any remaining dotted path.
_SLOTS = {"L": r"\d+", "K": r"\d", "S": r"weight|bias", "R": r"[\w.]+"}


def _sam_rules() -> list[tuple[str, str]]:
    rules = [
        (_HI + "pos_embed", _HF_HI + "pos_embed"),
        (_HI + "patch_embed.proj.{S}", _HF_HI + "patch_embed.projection.{S}"),
        (_HI + "blocks.{L}.norm{K}.{S}", _HF_HI + "layers.{L}.layer_norm{K}.{S}"),
        (_HI + "blocks.{L}.{R}", _HF_HI + "layers.{L}.{R}"),  # attn.qkv/proj/rel_pos_*, mlp.lin*
        (_HI + "hd_alpha_downsamples", "model.high_res_vision_alpha"),
        (_HI + "downsamples.0.weight", "model.high_res_vision_proj.conv1.weight"),
        (_HI + "downsamples.1.weight", "model.high_res_vision_proj.conv2.weight"),
    ]
    # The SAM neck (inside the tower) and DeepSeek's extra neck on the global-attention
    # block ("neck_hd") are both nn.Sequential(conv, LN, conv, LN) in the original code.
    for original, converted in ((_HI + "neck.", _HF_HI + "neck."),
                                (_HI + "neck_hd.", "model.high_res_vision_neck.")):
        rules += [(original + "0.weight", converted + "conv1.weight"),
                  (original + "1.{S}", converted + "layer_norm1.{S}"),
                  (original + "2.weight", converted + "conv2.weight"),
                  (original + "3.{S}", converted + "layer_norm2.{S}")]
    return rules


def _siglip_rules(prefix: str) -> list[tuple[str, str]]:
    return [
        (prefix + "pos_embed", _HF_LO + "embeddings.position_embedding.weight"),
        (prefix + "patch_embed.proj.{S}", _HF_LO + "embeddings.patch_embedding.{S}"),
        (prefix + "blocks.{L}.norm{K}.{S}", _HF_LO + "encoder.layers.{L}.layer_norm{K}.{S}"),
        (prefix + "blocks.{L}.attn.qkv.{S}", _HF_LO + "encoder.layers.{L}.self_attn.qkv_proj.{S}"),
        (prefix + "blocks.{L}.attn.proj.{S}", _HF_LO + "encoder.layers.{L}.self_attn.out_proj.{S}"),
        (prefix + "blocks.{L}.mlp.fc{K}.{S}", _HF_LO + "encoder.layers.{L}.mlp.fc{K}.{S}"),
        (prefix + "norm.{S}", _HF_LO + "post_layernorm.{S}"),
    ]


_LM_RULES = [
    ("language_model.model.{R}", "model.language_model.{R}"),
    ("language_model.lm_head.weight", "lm_head.weight"),
]


def key_rules(family: str) -> list[tuple[str, str]]:
    """(original, transformers) key templates for a family, most specific first."""
    if family == "hybrid":
        return (_sam_rules() + _siglip_rules(_LO_HYBRID) + [
            ("aligner.high_up_proj.{S}", "model.aligner.high_res_vision_proj.{S}"),
            ("aligner.low_up_proj.{S}", "model.aligner.vision_proj.{S}"),
            ("aligner.layers.1.{S}", "model.aligner.proj.{S}"),
        ] + _LM_RULES)
    return _siglip_rules(_LO_SIGLIP) + [
        ("aligner.layers.0.{S}", "model.aligner.linear1.{S}"),
        ("aligner.layers.2.{S}", "model.aligner.linear2.{S}"),
    ] + _LM_RULES


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for slot, body in _SLOTS.items():
        pattern = pattern.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>{body})")
    return re.compile(pattern + r"\Z")


def _rename(key: str, rules: Iterable[tuple[str, str]], reverse: bool) -> str | None:
    for original, converted in rules:
        source, target = (converted, original) if reverse else (original, converted)
        match = _compile(source).match(key)
        if match:
            return target.format(**match.groupdict())
    return None


# Keys of the original checkpoints that the transformers models do not have, each with why
# it can go. Anything else without a rule is refused: a silent drop would hide a real
# mismatch (another architecture, a renamed module).
_DROPPED: dict[str, re.Pattern] = {
    # timm's VisionTransformer(global_pool="map") builds an AttentionPoolLatent head; the
    # DeepSeek-VL towers run with ignore_head=True and feed every patch token to the aligner
    "SigLIP MAP-pooling head (ignore_head=True upstream)": re.compile(
        r"vision_model\.(vision_tower|vision_tower_low\.vision_tower)\.attn_pool\..+"),
    # older Llama checkpoints stored the rotary frequencies; they follow from the config
    "rotary inv_freq buffer (recomputed from the config)": re.compile(
        r"language_model\.model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq"),
    # HybridVisionTower.__init__ creates high_layer_norm / low_layer_norm (LayerNorm(1024))
    # but its forward never calls them: the 7B release saves them, the model never used them
    "HybridVisionTower high/low_layer_norm (built but unused in its forward)": re.compile(
        r"vision_model\.(high|low)_layer_norm\.(weight|bias)"),
}
_QKV = ".self_attn.qkv_proj."


def dropped_reason(key: str) -> str | None:
    """Why an original-layout key has no place in the transformers model (None: it has one)."""
    for reason, pattern in _DROPPED.items():
        if pattern.fullmatch(key):
            return reason
    return None


def from_original_state_dict(state_dict: dict[str, torch.Tensor], family: str) -> dict[str, torch.Tensor]:
    """Original deepseek-ai key names -> transformers ones; raises on keys it cannot place."""
    rules = key_rules(family)
    converted: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    dropped: dict[str, int] = {}
    for key, tensor in state_dict.items():
        reason = dropped_reason(key)
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        new_key = _rename(key, rules, reverse=False)
        if new_key is None:
            unknown.append(key)
        elif _QKV in new_key:  # timm's fused [3d, d] qkv -> q, k, v [d, d] each
            for name, part in zip(("q", "k", "v"), torch.chunk(tensor, 3, dim=0)):
                converted[new_key.replace(_QKV, f".self_attn.{name}_proj.")] = part.contiguous()
        elif new_key.endswith("embeddings.position_embedding.weight"):
            converted[new_key] = tensor.reshape(tensor.shape[-2], tensor.shape[-1])
        else:
            converted[new_key] = tensor
    if unknown:
        raise ValueError(f"{len(unknown)} keys of the original checkpoint have no place in the "
                         f"{family} model, e.g. {unknown[:5]}")
    for reason, count in dropped.items():
        log.info("original checkpoint: dropped %d tensor(s) the model does not use: %s",
                 count, reason)
    return converted


def to_original_state_dict(state_dict: dict[str, torch.Tensor], family: str) -> dict[str, torch.Tensor]:
    """transformers key names -> the original deepseek-ai ones (inverse of the above)."""
    rules = key_rules(family)
    out: dict[str, torch.Tensor] = {}
    pending_qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state_dict.items():
        match = re.search(r"\.self_attn\.([qkv])_proj\.", key)
        if match and key.startswith(_HF_LO):
            fused = key.replace(match.group(0), _QKV)
            pending_qkv.setdefault(fused, {})[match.group(1)] = tensor
            continue
        new_key = _rename(key, rules, reverse=True)
        if new_key is None:
            raise ValueError(f"no original name for {key}")
        if key.endswith("embeddings.position_embedding.weight"):
            tensor = tensor.unsqueeze(0)  # timm keeps [1, n, d]
        out[new_key] = tensor
    for fused, parts in pending_qkv.items():
        out[_rename(fused, rules, reverse=True)] = torch.cat([parts["q"], parts["k"], parts["v"]], 0)
    return out


# -- files --------------------------------------------------------------------------------
def detect_layout(directory: str | Path) -> str:
    """"transformers" or "original" for a weights directory."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if config_path.exists():
        model_type = json.loads(config_path.read_text()).get("model_type")
        if model_type in ("deepseek_vl", "deepseek_vl_hybrid"):
            return "transformers"
        if model_type == "multi_modality":
            return "original"
    keys = _weight_keys(directory)
    if any(k.startswith(("vision_model.vision_tower", "language_model.model.")) for k in keys):
        return "original"
    if any(k.startswith("model.language_model.") for k in keys):
        return "transformers"
    raise ValueError(f"{directory}: cannot tell the weights layout (no config.json model_type "
                     "and no recognisable weight names)")


def _weight_files(directory: Path) -> list[Path]:
    for pattern in ("*.safetensors", "pytorch_model*.bin", "*.pt"):
        files = sorted(directory.glob(pattern))
        if files:
            return files
    raise FileNotFoundError(f"{directory}: no *.safetensors or pytorch_model*.bin weights")


def _weight_keys(directory: Path) -> list[str]:
    from safetensors import safe_open

    keys: list[str] = []
    for path in _weight_files(directory):
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                keys += list(handle.keys())
        else:
            keys += list(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
    return keys


def read_state_dict(directory: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a (possibly sharded) checkpoint directory, on CPU."""
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in _weight_files(Path(directory)):
        if path.suffix == ".safetensors":
            state.update(load_file(str(path), device="cpu"))
        else:
            state.update(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
    return state


def family_of_keys(keys: Iterable[str]) -> str:
    return "hybrid" if any("vision_tower_high" in k for k in keys) else "siglip"


def load_published(directory: str | Path, preset, tokenizer=None):
    """A DeepSeek-VL model with the weights in `directory` (either layout).

    For the original layout the architecture comes from `preset`, with the vocabulary size
    read from the embedding and the image token id from `tokenizer` when given.
    """
    from model.presets import build_config, get_preset, model_class_for

    directory = Path(directory)
    preset = get_preset(preset) if isinstance(preset, str) else preset
    if detect_layout(directory) == "transformers":
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(directory))
        return model_class_for(config).from_pretrained(str(directory))
    original = read_state_dict(directory)
    family = family_of_keys(original)
    if family != preset.family:
        raise ValueError(f"{directory} holds a {family} model but preset {preset.name} is {preset.family}")
    state = from_original_state_dict(original, family)
    del original
    vocab_size = state["model.language_model.embed_tokens.weight"].shape[0]
    image_token_id = None
    if tokenizer is not None:
        image_token_id = tokenizer.convert_tokens_to_ids(tokenizer.image_token)
    config = build_config(preset, vocab_size=vocab_size, image_token_id=image_token_id,
                          pad_token_id=getattr(tokenizer, "pad_token_id", None),
                          bos_token_id=getattr(tokenizer, "bos_token_id", None),
                          eos_token_id=getattr(tokenizer, "eos_token_id", None))
    from accelerate import init_empty_weights

    # Parameters on the meta device (no memory, no random init), buffers such as the rotary
    # inv_freq on CPU because checkpoints do not hold them; assign=True then adopts the
    # loaded tensors as the parameters.
    with init_empty_weights(include_buffers=False):
        model = model_class_for(config)(config)
    result = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or result.unexpected_keys:
        raise ValueError(f"{directory}: weights do not fit preset {preset.name}: "
                         f"missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    if config.tie_word_embeddings:
        model.tie_weights()
    log.info("loaded %d tensors from the original layout in %s", len(state), directory)
    return model.eval()
