"""Named model sizes: typed transformers configs for the DeepSeek-VL families.

Two families, both transformers' own implementations (nothing re-implemented here):

- ``hybrid``: `DeepseekVLHybridForConditionalGeneration` — SigLIP low-res tower + SAM-B
  high-res tower + hybrid split MLP adaptor + LLaMA-style LM (the published 7B).
- ``siglip``: `DeepseekVLForConditionalGeneration` — SigLIP only + 2-layer MLP adaptor
  (the published 1.3B).

The ``1.3b`` and ``7b`` presets match the published checkpoints field by field
(``reference/deepseek-vl.md``); ``tiny`` / ``tiny-siglip`` keep the same wiring at toy sizes
so CPU tests and the demo run a full step in well under a second. The number of image tokens
per image is always ``(vision image_size / patch_size) ** 2`` — the model scatters exactly that
many adaptor outputs into the ``<image_placeholder>`` run of each image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# DeepSeek-VL's tokenizer: 102400 entries, <image_placeholder> at 100015.
DEEPSEEK_VOCAB_SIZE = 102400
DEEPSEEK_IMAGE_TOKEN_ID = 100015

# Normalisation per branch (reference: SigLIP mean/std 0.5, SAM uses CLIP's statistics).
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

FAMILIES = ("hybrid", "siglip")


@dataclass(frozen=True)
class Preset:
    """One named model size.

    name: what users type (``--preset tiny``).
    family: "hybrid" (SigLIP + SAM) or "siglip" (SigLIP only).
    description: one line for ``vlforge model info``.
    text: LlamaConfig fields of the language model (vocab_size may be replaced by the
        tokenizer's size for presets that train their own tokenizer).
    vision: SiglipVisionConfig fields of the low-res tower.
    high_res: SamVisionConfig fields of the high-res tower (hybrid family only).
    tie_word_embeddings: whether lm_head shares the input embedding (the published DeepSeek
        LLMs do not).
    trains_own_tokenizer: ``model init`` trains a small BPE tokenizer from local text
        (tiny presets); otherwise a tokenizer directory must be given.
    resample: PIL resampling name used by the image processor.
    """

    name: str
    family: str
    description: str
    text: dict[str, Any]
    vision: dict[str, Any]
    high_res: dict[str, Any] = field(default_factory=dict)
    tie_word_embeddings: bool = False
    trains_own_tokenizer: bool = False
    resample: str = "BICUBIC"

    @property
    def image_size(self) -> int:
        """Side of the low-res (SigLIP) input image."""
        return int(self.vision["image_size"])

    @property
    def high_res_image_size(self) -> int | None:
        """Side of the high-res (SAM) input image, None for the SigLIP-only family."""
        return int(self.high_res["image_size"]) if self.family == "hybrid" else None

    @property
    def num_image_tokens(self) -> int:
        """Tokens one image occupies in the sequence: (image_size / patch_size)^2."""
        side = self.vision["image_size"] // self.vision["patch_size"]
        return int(side * side)


_SIGLIP_L_384 = {  # SigLIP-L/16 at 384 px without its MAP head (the LM reads all 576 tokens)
    "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
    "num_attention_heads": 16, "image_size": 384, "patch_size": 16,
    "hidden_act": "gelu", "vision_use_head": False,
}
_SAM_B_1024 = {  # SAM-B ViTDet at 1024 px, window 14, global attention at 2, 5, 8, 11
    "hidden_size": 768, "intermediate_size": 3072, "mlp_dim": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "image_size": 1024, "patch_size": 16, "output_channels": 256,
    "window_size": 14, "global_attn_indexes": [2, 5, 8, 11],
}

_TINY_TEXT = {  # 2-layer Llama; vocab_size is replaced by the trained tokenizer's size
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 512,
    "vocab_size": 1024,
}
_TINY_SIGLIP = {  # 32 px / patch 8 -> 16 image tokens
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
    "hidden_act": "gelu", "vision_use_head": False,
}
_TINY_SAM = {  # 64 px / patch 8 -> 8x8 grid; the adaptor resamples it to the SigLIP grid
    "hidden_size": 32, "intermediate_size": 64, "mlp_dim": 64, "num_hidden_layers": 2,
    "num_attention_heads": 2, "image_size": 64, "patch_size": 8, "output_channels": 16,
    "window_size": 4, "global_attn_indexes": [1], "num_pos_feats": 16,
}

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny", family="hybrid", trains_own_tokenizer=True, tie_word_embeddings=False,
        description="hybrid SigLIP 32px + SAM 64px + 2-layer Llama (hidden 64): CPU tests, demo",
        text=_TINY_TEXT, vision=_TINY_SIGLIP, high_res=_TINY_SAM,
    ),
    "tiny-siglip": Preset(
        name="tiny-siglip", family="siglip", trains_own_tokenizer=True,
        description="SigLIP-only 32px + 2-layer Llama (hidden 64): the 1.3B wiring at toy size",
        text=_TINY_TEXT, vision=_TINY_SIGLIP,
    ),
    "1.3b": Preset(
        name="1.3b", family="siglip", resample="BILINEAR",
        description="DeepSeek-VL 1.3B: SigLIP-L 384px + MLP adaptor + DeepSeek LLM 1.3B",
        text={"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24,
              "num_attention_heads": 16, "num_key_value_heads": 16,
              "max_position_embeddings": 16384, "vocab_size": DEEPSEEK_VOCAB_SIZE,
              "rms_norm_eps": 1e-6},
        vision=_SIGLIP_L_384,
    ),
    "7b": Preset(
        name="7b", family="hybrid", resample="BILINEAR",
        description="DeepSeek-VL 7B: SigLIP-L 384px + SAM-B 1024px + hybrid adaptor + DeepSeek LLM 7B",
        text={"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 30,
              "num_attention_heads": 32, "num_key_value_heads": 32,
              "max_position_embeddings": 16384, "vocab_size": DEEPSEEK_VOCAB_SIZE,
              "rms_norm_eps": 1e-6},
        vision=_SIGLIP_L_384, high_res=_SAM_B_1024,
    ),
}
PRESETS["tiny-hybrid"] = PRESETS["tiny"]  # the name for the tiny hybrid preset


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a ValueError listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def build_config(preset: Preset | str, *, vocab_size: int | None = None,
                 image_token_id: int | None = None, pad_token_id: int | None = None,
                 bos_token_id: int | None = None, eos_token_id: int | None = None):
    """The transformers config for `preset`; token ids default to DeepSeek's tokenizer."""
    from transformers import DeepseekVLConfig, DeepseekVLHybridConfig

    preset = get_preset(preset) if isinstance(preset, str) else preset
    text = {**preset.text, "model_type": "llama"}
    if vocab_size is not None:
        text["vocab_size"] = vocab_size
    for key, value in (("pad_token_id", pad_token_id), ("bos_token_id", bos_token_id),
                       ("eos_token_id", eos_token_id)):
        if value is not None:
            text[key] = value
    text["tie_word_embeddings"] = preset.tie_word_embeddings
    common = dict(
        text_config=text,
        vision_config={**preset.vision, "model_type": "siglip_vision_model"},
        image_token_id=DEEPSEEK_IMAGE_TOKEN_ID if image_token_id is None else image_token_id,
        tie_word_embeddings=preset.tie_word_embeddings,
    )
    if preset.family == "hybrid":
        config = DeepseekVLHybridConfig(
            high_res_vision_config={**preset.high_res, "model_type": "sam_vision_model"}, **common)
    elif preset.family == "siglip":
        config = DeepseekVLConfig(**common)
    else:  # pragma: no cover - guarded by FAMILIES
        raise ValueError(f"unknown family {preset.family!r}")
    # Remembered so `model info` / the trainer can tell which preset a directory came from.
    config.vlforge_preset = preset.name
    return config


def model_class_for(config):
    """The ForConditionalGeneration class matching a DeepSeek-VL config."""
    from transformers import DeepseekVLForConditionalGeneration, DeepseekVLHybridForConditionalGeneration

    if config.model_type == "deepseek_vl_hybrid":
        return DeepseekVLHybridForConditionalGeneration
    if config.model_type == "deepseek_vl":
        return DeepseekVLForConditionalGeneration
    raise ValueError(f"not a DeepSeek-VL config: model_type={config.model_type!r}")


def family_of(config) -> str:
    """"hybrid" or "siglip" for a DeepSeek-VL config."""
    return "hybrid" if config.model_type == "deepseek_vl_hybrid" else "siglip"


def num_image_tokens_of(config) -> int:
    """Image tokens per image for a config: (vision image_size / patch_size)^2."""
    side = config.vision_config.image_size // config.vision_config.patch_size
    return int(side * side)


# Parameter-name prefixes of each component (for `model info` and for the training stages'
# freezing). The SAM neck_hd + downsampling convs + alpha are adaptor-side in the paper.
COMPONENT_PREFIXES: dict[str, tuple[str, ...]] = {
    "high_res_vision": ("model.high_res_vision_model.",),
    "high_res_adaptor": ("model.high_res_vision_neck.", "model.high_res_vision_proj.",
                         "model.high_res_vision_alpha"),
    "vision": ("model.vision_model.",),
    "aligner": ("model.aligner.",),
    "language_model": ("model.language_model.",),
    "lm_head": ("lm_head.",),
}


def component_of(parameter_name: str) -> str:
    """Which component (a key of COMPONENT_PREFIXES) a parameter name belongs to."""
    for component, prefixes in COMPONENT_PREFIXES.items():
        if parameter_name.startswith(prefixes):
            return component
    return "other"
