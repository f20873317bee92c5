"""The transformers processor for a preset: image processor per branch + tokenizer.

Resizing (long side to the target, then pad to square with the branch's mean colour) and
per-branch normalisation are transformers' own `DeepseekVLHybridImageProcessor` (SigLIP
low-res + SAM high-res) and `DeepseekVLImageProcessor` (SigLIP only); this module only sets
their sizes and statistics from the preset. The chat formatting and answer-only labels live
in `model.collate`.
"""

from __future__ import annotations

from model.presets import CLIP_MEAN, CLIP_STD, SIGLIP_MEAN, SIGLIP_STD, Preset, get_preset
from model.tokenizer import IMAGE_TOKEN

# DeepSeek-VL's conversation format ("deepseek" template of the original code): a system
# prompt, then "User: ...\n\n" and "Assistant: ...<eos>" turns. Written for
# `processor.apply_chat_template` users; `model.collate` builds the same text itself so it
# can mask labels turn by turn. An image part becomes IMAGE_TOKEN, which the processor
# (and the collator) expand into the image's num_image_tokens block at that place.
CHAT_TEMPLATE = (
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{{ messages[0]['content'] if messages[0]['content'] is string else messages[0]['content'][0]['text'] }}\n\n"
    "{% set rest = messages[1:] %}{% else %}{% set rest = messages %}{% endif %}"
    "{% for message in rest %}"
    "{% if message['role'] == 'user' %}User: {% else %}Assistant: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}" + IMAGE_TOKEN + "{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %}\n\n{% else %}<｜end▁of▁sentence｜>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def build_image_processor(preset: Preset | str):
    """The image processor for `preset` (hi-res + low-res for hybrid, low-res only otherwise)."""
    from transformers.image_utils import PILImageResampling

    hybrid_cls, siglip_cls = _image_processor_classes()

    preset = get_preset(preset) if isinstance(preset, str) else preset
    resample = getattr(PILImageResampling, preset.resample)
    low = {"height": preset.image_size, "width": preset.image_size}
    if preset.family == "hybrid":
        high = {"height": preset.high_res_image_size, "width": preset.high_res_image_size}
        return hybrid_cls(
            size=low, high_res_size=high, resample=resample, high_res_resample=resample,
            image_mean=list(SIGLIP_MEAN), image_std=list(SIGLIP_STD),
            high_res_image_mean=list(CLIP_MEAN), high_res_image_std=list(CLIP_STD))
    return siglip_cls(size=low, resample=resample,
                                    image_mean=list(SIGLIP_MEAN), image_std=list(SIGLIP_STD))


def _image_processor_classes():
    """The torchvision-backed image processors when torchvision is installed, else the PIL ones.

    Both compute the same resize-pad-normalise; asking for the torchvision class without
    torchvision makes transformers warn and fall back to PIL anyway.
    """
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        from transformers import DeepseekVLHybridImageProcessor, DeepseekVLImageProcessor

        return DeepseekVLHybridImageProcessor, DeepseekVLImageProcessor
    from transformers import DeepseekVLHybridImageProcessorPil, DeepseekVLImageProcessorPil

    return DeepseekVLHybridImageProcessorPil, DeepseekVLImageProcessorPil


def build_processor(preset: Preset | str, tokenizer):
    """The DeepSeek-VL processor for `preset` around `tokenizer` (needs ``image_token``)."""
    from transformers import DeepseekVLHybridProcessor, DeepseekVLProcessor

    preset = get_preset(preset) if isinstance(preset, str) else preset
    if getattr(tokenizer, "image_token", None) is None:
        raise ValueError("the tokenizer has no image_token attribute; load it with "
                         "model.tokenizer.load_tokenizer")
    cls = DeepseekVLHybridProcessor if preset.family == "hybrid" else DeepseekVLProcessor
    return cls(image_processor=build_image_processor(preset), tokenizer=tokenizer,
               chat_template=CHAT_TEMPLATE, num_image_tokens=preset.num_image_tokens)


def load_processor(directory, config=None):
    """The processor saved in `directory` (class chosen from the directory's files)."""
    import json
    from pathlib import Path

    from transformers import DeepseekVLHybridProcessor, DeepseekVLProcessor

    directory = Path(directory)
    hybrid = None
    if config is not None:
        hybrid = config.model_type == "deepseek_vl_hybrid"
    else:
        for name in ("processor_config.json", "preprocessor_config.json"):
            if (directory / name).exists():
                text = json.loads((directory / name).read_text())
                hybrid = "Hybrid" in json.dumps(text)
                break
    if hybrid is None:
        raise FileNotFoundError(f"{directory} has no processor files (processor_config.json)")
    cls = DeepseekVLHybridProcessor if hybrid else DeepseekVLProcessor
    return cls.from_pretrained(str(directory))
