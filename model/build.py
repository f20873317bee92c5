"""`vlforge model init`: write a ready-to-train model directory for a preset.

The directory holds everything `model.loading.load_model` and the trainer need:
``config.json`` + ``model.safetensors`` (transformers layout), the processor
(``processor_config.json``, chat template) and the tokenizer, plus ``vlforge_model.json``
saying which preset, tokenizer and weights it was made from.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from model.presets import Preset, build_config, get_preset, model_class_for
from model.processor import build_processor
from model.tokenizer import IMAGE_TOKEN, load_tokenizer, train_tiny_tokenizer

log = logging.getLogger(__name__)

MODEL_CARD = "vlforge_model.json"


def config_for_tokenizer(preset: Preset, tokenizer):
    """The preset's config with token ids (and, for tiny presets, vocab size) from `tokenizer`."""
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    vocab_size = len(tokenizer) if preset.trains_own_tokenizer else None
    if not preset.trains_own_tokenizer and len(tokenizer) > preset.text["vocab_size"]:
        raise ValueError(f"tokenizer has {len(tokenizer)} entries, more than the {preset.name} "
                         f"embedding ({preset.text['vocab_size']})")
    return build_config(preset, vocab_size=vocab_size, image_token_id=image_token_id,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id)


def init_model(preset: Preset | str, *, tokenizer_dir: str | Path | None = None,
               weights_dir: str | Path | None = None, tokenizer_corpus=None, seed: int = 0):
    """(model, processor) for a preset: fresh weights, or published ones from `weights_dir`."""
    import torch

    preset = get_preset(preset) if isinstance(preset, str) else preset
    if tokenizer_dir is not None:
        tokenizer = load_tokenizer(tokenizer_dir)
    elif weights_dir is not None and (Path(weights_dir) / "tokenizer_config.json").exists():
        tokenizer = load_tokenizer(weights_dir)
    elif preset.trains_own_tokenizer:
        tokenizer = train_tiny_tokenizer(tokenizer_corpus)
    else:
        raise ValueError(f"preset {preset.name!r} needs the published tokenizer: pass "
                         "--tokenizer DIR (or --weights DIR holding one); no hub download here")
    processor = build_processor(preset, tokenizer)
    if weights_dir is not None:
        from model.convert import load_published

        model = load_published(weights_dir, preset, tokenizer)
    else:
        config = config_for_tokenizer(preset, tokenizer)
        if not preset.trains_own_tokenizer:
            log.warning("initialising %s with random weights in float32 (~%d GB of memory); "
                        "pass --weights DIR to start from the published model", preset.name,
                        {"1.3b": 8, "7b": 30}.get(preset.name, 0))
        torch.manual_seed(seed)
        model = model_class_for(config)(config)
    if model.config.image_token_id != processor.image_token_id:
        raise ValueError(f"image token id differs: model {model.config.image_token_id}, "
                         f"tokenizer {processor.image_token_id}")
    return model, processor


def save_model_dir(model, processor, out: str | Path, *, card: dict | None = None) -> Path:
    """Write model, processor and tokenizer to `out` (created) and the vlforge card."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    info = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model_type": model.config.model_type,
            "preset": getattr(model.config, "vlforge_preset", None),
            "num_image_tokens": int(processor.num_image_tokens),
            "image_token_id": int(processor.image_token_id),
            "parameters": sum(p.numel() for p in model.parameters()),
            **(card or {})}
    (out / MODEL_CARD).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return out


def init_model_dir(preset: Preset | str, out: str | Path, *, tokenizer_dir=None,
                   weights_dir=None, tokenizer_corpus=None, seed: int = 0) -> Path:
    """`vlforge model init`: build a preset's model and write its ready-to-train directory."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    model, processor = init_model(preset, tokenizer_dir=tokenizer_dir, weights_dir=weights_dir,
                                  tokenizer_corpus=tokenizer_corpus, seed=seed)
    card = {"tokenizer": str(tokenizer_dir) if tokenizer_dir else
            ("trained:" + ",".join(map(str, tokenizer_corpus or ["bundled"]))
             if preset.trains_own_tokenizer and not weights_dir else str(weights_dir)),
            "weights": str(weights_dir) if weights_dir else f"random(seed={seed})"}
    return save_model_dir(model, processor, out, card=card)
