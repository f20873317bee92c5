"""Fixtures for the model tests: tiny model directories made once per session, PNGs drawn here."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image, ImageDraw

from pipelines.core.sample import Sample

# The toy models here are far too small to gain from intra-op threads, and on a shared
# 2-core machine extra threads only contend: one thread is 10x faster in practice.
torch.set_num_threads(1)


def draw_png(color: str = "red", size: tuple[int, int] = (48, 32), shape: str = "box") -> bytes:
    """A small PNG: a coloured shape on white (non-square, so padding is exercised)."""
    image = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(image)
    box = (4, 4, size[0] - 4, size[1] - 4)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=color)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def conversation_sample(images: int = 1, turns: int = 1, system: str | None = None) -> Sample:
    """An SFT sample with `images` placeholders in the first user turn and `turns` Q/A pairs."""
    conversation = [{"role": "system", "content": system}] if system else []
    for turn in range(turns):
        question = ("<image_placeholder>" * images + " What colour is it?") if turn == 0 else "Sure?"
        conversation += [{"role": "user", "content": question},
                         {"role": "assistant", "content": f"Red, answer {turn}."}]
    pngs = [draw_png(c) for c in ("red", "blue", "green")[:images]]
    return Sample.create("sft", f"conv-{images}-{turns}-{system}", image=pngs[0] if pngs else None,
                         extra_images=tuple(pngs[1:]), meta={"sft": {"conversation": conversation}})


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    """{"tiny": dir, "tiny-siglip": dir} written by `model init` once for all tests."""
    from model.build import init_model_dir

    root = tmp_path_factory.mktemp("models")
    return {name: init_model_dir(name, root / name) for name in ("tiny", "tiny-siglip")}


@pytest.fixture(scope="session")
def tiny_models(tiny_dirs):
    """{"tiny": (model, processor), "tiny-siglip": (model, processor)} loaded once."""
    from model.loading import load_model

    return {name: load_model(path) for name, path in tiny_dirs.items()}
