"""Stages 1-2 train on what the data pipelines now produce: image files captioned from
sidecar files (a real `vlforge images` run), and interleaved documents whose text holds one
placeholder per image, truncated without cutting an image's block."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from pipelines.cli import main as vlforge
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.text import IMAGE_PLACEHOLDER
from training.stages import stage_preset

from .conftest import COLORS, draw_png, write_run_dir

pytestmark = pytest.mark.slow


def test_stage1_trains_on_sidecar_captions(tiny_model_dir, tmp_path):
    from training.loop import train

    photos = tmp_path / "photos"
    photos.mkdir()
    for index, (name, rgb) in enumerate(COLORS.items()):
        Image.new("RGB", (40 + 4 * index, 36), rgb).save(photos / f"{name}.jpg")
        (photos / f"{name}.txt").write_text(f"a plain {name} picture, nothing else")
    run = tmp_path / "run"
    assert vlforge(["images", str(photos), "--out", str(run), "--ocr", "none",
                    "--no-charts", "--no-label"]) == 0
    config = stage_preset(1).replace(max_steps=2, batch_size=2, shuffle_buffer=4)
    result = train(config, model_dir=tiny_model_dir, out=str(tmp_path / "train"),
                   data=[str(run)], progress=False, save_model=False)
    # Without captions every image sample would be skipped as no_text (and the run fail).
    assert "no_text" not in result.skipped_samples
    assert len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)


def _documents() -> list[Sample]:
    """Articles of three images each, the placeholders between paragraphs."""
    out, names = [], list(COLORS)
    for index in range(4):
        colours = [names[(index + k) % len(names)] for k in range(3)]
        pngs = [draw_png(c, "square") for c in colours]
        locator = f"fixture-doc://{index}"
        ref = input_ref("web", locator)
        text = IMAGE_PLACEHOLDER.join([
            f"Article {index} starts.", f" First a {colours[0]} square.",
            f" Then a {colours[1]} one.", f" Last, {colours[2]}."])
        out.append(Sample.create("web", locator, image=pngs[0], extra_images=tuple(pngs[1:]),
                                 text=text, lineage={"input_id": ref["input_id"],
                                                     "item_id": ref["item_id"]}))
    return out


@pytest.mark.parametrize("seq_len, truncated", [(160, False), (48, True)])
def test_stage2_trains_on_interleaved_documents(tiny_model_dir, text_file, tmp_path,
                                                seq_len, truncated):
    from training.loop import train

    run = write_run_dir(tmp_path / "docs", "web", _documents())
    config = stage_preset(2).replace(max_steps=2, batch_size=2, shuffle_buffer=4,
                                     seq_len=seq_len, packing=False, language_ratio_start=0.0,
                                     language_ratio_target=0.0, language_ratio_warmup_steps=0)
    result = train(config, model_dir=tiny_model_dir, out=str(tmp_path / "train"), data=[run],
                   progress=False, save_model=False)
    assert result.modalities == ["multimodal", "multimodal"]
    assert len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)
    assert not {"placeholder_mismatch", "no_text", "truncated_away"} & set(result.skipped_samples)
    # A short sequence drops trailing images whole (counted) and still trains.
    assert bool(result.skipped_samples.get("image_truncated")) == truncated
