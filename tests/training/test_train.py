"""The training loop on the tiny preset, on shards made in the pipelines' format.

Each stage trains exactly its parameter groups; a tiny set is overfit; the modality of each
step follows the ratio schedule; a stopped run resumed from its checkpoint reproduces the
uninterrupted loss curve exactly.
"""

import json
import os
import shutil

import pytest
import torch

from training.checkpoint import list_checkpoints, load_checkpoint
from training.metrics import read_metrics
from training.modality import step_modality
from training.stages import stage_preset
from training.trainable import param_group


def weights(model_dir):
    from model.loading import load_model

    model, _ = load_model(model_dir)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def quick(stage, **changes):
    base = dict(max_steps=4, save_every=100, batch_size=2, shuffle_buffer=8)
    return stage_preset(stage).replace(**{**base, **changes})


@pytest.mark.parametrize("stage,changes", [
    (1, {}),
    # ratio 0.5 with this seed gives both language and multimodal steps within 4 steps
    (2, {"language_ratio_start": 0.5, "language_ratio_target": 0.5, "seed": 0}),
    (3, {"seed": 0}),
])
def test_each_stage_trains_exactly_its_groups(stage, changes, tiny_model_dir, caption_run,
                                              sft_run, text_file, dialogue_file, tmp_path):
    from training.loop import train

    config = quick(stage, **changes)
    modalities = {step_modality(config, s, has_language=config.uses_language,
                                has_multimodal=True) for s in range(config.max_steps)}
    assert modalities == ({"multimodal"} if stage == 1 else {"language", "multimodal"})
    data = [sft_run] if stage == 3 else [caption_run]
    text = [dialogue_file] if stage == 3 else [text_file]
    result = train(config, model_dir=tiny_model_dir, out=str(tmp_path / "run"), data=data,
                   text=text, progress=False)
    assert result.step == 4 and all(map(torch.isfinite, map(torch.tensor, result.losses)))
    before, after = weights(tiny_model_dir), weights(result.model_dir)
    groups_seen, changed_by_group = set(), {}
    for name, old in before.items():
        group = param_group(name)
        groups_seen.add(group)
        changed = not torch.equal(old, after[name])
        if group in config.trainable:
            changed_by_group.setdefault(group, []).append(changed)
        else:
            assert not changed, f"stage {stage}: frozen {name} ({group}) changed"
    assert set(changed_by_group) == set(config.trainable)
    for group, flags in changed_by_group.items():
        # nearly every tensor moves; the tiny preset initialises SAM's neck convs at ~1e-10,
        # which leaves the LayerNorm weights right after them with (almost) no gradient
        assert sum(flags) >= 0.9 * len(flags), f"stage {stage}: {group} barely trained"
    assert groups_seen == {"language_model", "adaptor", "siglip", "sam"}
    assert result.trainable["sam"]["trainable"] == 0


def test_loss_falls_when_overfitting_a_tiny_set(tiny_model_dir, sft_run, tmp_path):
    from training.loop import train

    config = quick(3, max_steps=24, batch_size=4, lr=1e-2, warmup_steps=2,
                   language_ratio_start=0.0, language_ratio_target=0.0)
    result = train(config, model_dir=tiny_model_dir, out=str(tmp_path / "run"), data=[sft_run],
                   progress=False)
    first, last = result.losses[0], sum(result.losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    rows = read_metrics(str(tmp_path / "run"))
    assert [r["step"] for r in rows] == list(range(1, 25))
    assert all(r["samples"] == 4 and r["tokens_per_s"] > 0 for r in rows)
    for plot in ("loss.png", "lr.png"):
        assert os.path.getsize(tmp_path / "run" / plot) > 1000
    assert os.listdir(tmp_path / "run" / "tensorboard")


def test_steps_follow_the_modality_schedule(tiny_model_dir, caption_run, text_file, tmp_path):
    from training.loop import train

    config = quick(2, max_steps=16, language_ratio_warmup_steps=6, seed=0)
    result = train(config, model_dir=tiny_model_dir, out=str(tmp_path / "run"),
                   data=[caption_run], text=[text_file], progress=False, save_model=False)
    expected = [step_modality(config, s, has_language=True, has_multimodal=True)
                for s in range(16)]
    assert result.modalities == expected
    assert result.modalities[:3] == ["language"] * 3  # ratio starts at 1.0
    assert "multimodal" in result.modalities[6:]
    rows = read_metrics(str(tmp_path / "run"))
    # packed language steps are full rows: every token of every sequence is real
    for row in rows:
        if row["modality"] == "language":
            assert row["tokens"] == config.batch_size * config.seq_len


def test_resume_reproduces_the_uninterrupted_run(tiny_model_dir, caption_run, text_file,
                                                 tmp_path):
    """Stop after 4 of 8 steps, lose the last checkpoint as a killed job would, resume with
    --resume auto and compare the loss curve with the uninterrupted run exactly."""
    from training.loop import train

    config = quick(2, max_steps=8, save_every=3, language_ratio_start=0.6,
                   language_ratio_target=0.6, seed=2)
    common = dict(model_dir=tiny_model_dir, data=[caption_run], text=[text_file],
                  progress=False)
    whole = train(config, out=str(tmp_path / "whole"), **common)
    assert set(whole.modalities) == {"language", "multimodal"}

    first = train(config, out=str(tmp_path / "split"), stop_after=4, **common)
    assert first.step == 4 and first.model_dir is None
    saved = load_checkpoint(first.checkpoint)
    assert set(saved) >= {"model", "optimizer", "scheduler", "step", "rng", "data", "config"}
    assert saved["step"] == 4
    assert saved["data"][0]["multimodal"]["shares"][0]["stream"]["draws"] > 0
    assert saved["model"] and saved["optimizer"]  # the sharded part, read back whole
    with pytest.raises(ValueError, match="--resume auto"):
        train(config, out=str(tmp_path / "split"), **common)
    # killed after step 4 but before its checkpoint landed: resume from step 3's
    shutil.rmtree(first.checkpoint)
    second = train(config, out=str(tmp_path / "split"), resume="auto", **common)
    assert second.resumed_from == 3
    assert first.losses[:3] + second.losses == whole.losses  # exact, not approximate
    assert [r["loss"] for r in read_metrics(str(tmp_path / "split"))] == whole.losses
    assert [s for s, _ in list_checkpoints(str(tmp_path / "split"))][-1] == 8
    with open(tmp_path / "split" / "stage.json") as handle:
        assert json.load(handle)["config"]["max_steps"] == 8
