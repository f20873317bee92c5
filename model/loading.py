"""`load_model(dir) -> (model, processor)`: the one way to open a model directory.

Accepts a directory written by `vlforge model init` / the trainer (transformers layout) and a
directory of published weights in the original deepseek-ai layout (converted on the fly by
`model.convert`).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def load_model(directory: str | Path, *, dtype=None, device: str | None = None,
               preset: str | None = None):
    """(model, processor) from `directory`; `preset` only matters for original-layout dirs.

    dtype: a torch dtype (or "bfloat16"...) for the weights; None keeps the saved one
        (float32 for vlforge directories).
    device: where to put the model ("cpu", "cuda"); None leaves it on CPU.
    """
    import torch
    from transformers import AutoConfig

    from model.convert import detect_layout
    from model.presets import model_class_for
    from model.processor import load_processor

    directory = Path(directory)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    layout = detect_layout(directory)
    if layout == "original":
        if preset is None:
            raise ValueError(f"{directory} is in the original deepseek-ai layout: pass the "
                             "preset it corresponds to (1.3b or 7b)")
        from model.build import init_model

        model, processor = init_model(preset, weights_dir=directory)
        if dtype is not None:
            model = model.to(dtype)
    else:
        config = AutoConfig.from_pretrained(str(directory))
        kwargs = {"dtype": dtype} if dtype is not None else {}
        model = model_class_for(config).from_pretrained(str(directory), **kwargs)
        processor = load_processor(directory, config)
    if device is not None:
        model = model.to(device)
    return model, processor
