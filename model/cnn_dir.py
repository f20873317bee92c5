"""Model directories of the seed's CNN hybrid (``vlforge model init --preset cnn-hybrid``).

The CNN hybrid (`model.cnn_baseline`) reads the same batches as the DeepSeek-VL models, so
its directory holds the same processor and tokenizer as the tiny hybrid preset (SAM-size
high-res and SigLIP-size low-res pixel values, the image placeholder) next to its own
weights:

    DIR/cnn_config.json     CNNBaselineConfig (sizes, fusion)
    DIR/cnn.safetensors     the encoder's weights (conv encoders, adaptor, small Llama)
    DIR/vlforge_model.json  the card: preset "cnn-hybrid", parameters, what it came from
    DIR/heads.pt            after training: the whole task model (encoder + head)

`is_cnn_dir` tells the trainer, `vlforge eval` and the report which kind a directory is.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

CNN_PRESET = "cnn-hybrid"
CNN_CONFIG = "cnn_config.json"
CNN_WEIGHTS = "cnn.safetensors"
# the processor's preset: its images are the sizes the two CNN encoders read
PROCESSOR_PRESET = "tiny"


def is_cnn_dir(directory: str | Path | None) -> bool:
    """Whether `directory` is a CNN hybrid model directory."""
    return directory is not None and (Path(directory) / CNN_CONFIG).exists()


def save_cnn_dir(encoder: Any, processor: Any, out: str | Path, *,
                 card: dict | None = None) -> Path:
    """Write the encoder's config and weights, the processor and the card to `out`."""
    from safetensors.torch import save_file

    from model.build import MODEL_CARD

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CNN_CONFIG).write_text(json.dumps(dataclasses.asdict(encoder.config), indent=2,
                                             sort_keys=True) + "\n")
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, str(out / CNN_WEIGHTS))
    processor.save_pretrained(str(out))
    info = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model_type": "cnn_hybrid", "preset": CNN_PRESET,
            "num_image_tokens": int(processor.num_image_tokens),
            "image_token_id": int(processor.image_token_id),
            "parameters": sum(p.numel() for p in encoder.parameters()), **(card or {})}
    (out / MODEL_CARD).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return out


def init_cnn_dir(out: str | Path, *, tokenizer_corpus=None, seed: int = 0,
                 **sizes: Any) -> Path:
    """A fresh CNN hybrid directory (random weights from `seed`, the tiny tokenizer)."""
    import torch

    from model.cnn_baseline import CNNHybridBaseline
    from model.processor import build_processor
    from model.tokenizer import train_tiny_tokenizer

    processor = build_processor(PROCESSOR_PRESET, train_tiny_tokenizer(tokenizer_corpus))
    torch.manual_seed(seed)
    encoder = CNNHybridBaseline.for_processor(processor, **sizes)
    return save_cnn_dir(encoder, processor, out, card={"weights": f"random(seed={seed})",
                                                       "tokenizer": "trained:bundled"})


def load_cnn(directory: str | Path) -> tuple[Any, Any]:
    """(CNNHybridBaseline with its saved weights, processor) from a CNN directory."""
    from safetensors.torch import load_file

    from model.cnn_baseline import CNNBaselineConfig, CNNHybridBaseline
    from model.processor import load_processor

    directory = Path(directory)
    values = json.loads((directory / CNN_CONFIG).read_text())
    for name in ("high_res_channels", "low_res_channels"):
        values[name] = tuple(values[name])
    encoder = CNNHybridBaseline(CNNBaselineConfig(**values))
    encoder.load_state_dict(load_file(str(directory / CNN_WEIGHTS)))
    return encoder, load_processor(directory)
