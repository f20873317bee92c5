"""Parallel settings: strategy choice, validation, and settings that must not change the maths."""

import pytest
import torch

from training.parallel import ParallelConfig, choose_strategy, default_activation_checkpointing


def test_auto_picks_ddp_when_the_training_state_fits_and_fsdp_otherwise():
    cpu = torch.device("cpu")
    strategy, why = choose_strategy("auto", trainable=10_000, frozen=10_000, device=cpu)
    assert strategy == "ddp" and "fits" in why
    # 7B stage 2: ~6.9B trained parameters x 16 bytes is more than any one machine here
    strategy, why = choose_strategy("auto", trainable=6_900_000_000_000, frozen=0, device=cpu)
    assert strategy == "fsdp" and "exceeds" in why
    assert choose_strategy("fsdp", trainable=1, frozen=0, device=cpu) == ("fsdp", "requested")


def test_settings_are_validated_together():
    with pytest.raises(ValueError) as error:
        ParallelConfig(strategy="zero3", loader_workers=-1, attn_implementation="xformers").validate()
    assert all(word in str(error.value) for word in ("strategy", "loader_workers",
                                                      "attn_implementation"))
    with pytest.raises(ValueError, match="cpu_offload needs strategy fsdp"):
        ParallelConfig(strategy="ddp", cpu_offload=True).validate()


def test_activation_checkpointing_defaults_on_for_the_7b_long_stages_only():
    assert default_activation_checkpointing("7b", 2) and default_activation_checkpointing("7b", 3)
    assert not default_activation_checkpointing("7b", 1)
    assert not default_activation_checkpointing("1.3b", 2)


@pytest.mark.parametrize("changes", [
    {"activation_checkpointing": True},
    {"strategy": "fsdp", "activation_checkpointing": True},
    {"attn_implementation": "eager"},
    {"strategy": "fsdp", "cpu_offload": True},
])
def test_speed_settings_keep_the_losses(changes, tiny_model_dir, caption_run, text_file,
                                        tmp_path):
    from training.loop import train
    from training.stages import stage_preset

    config = stage_preset(2).replace(max_steps=3, save_every=100, batch_size=2,
                                     shuffle_buffer=8, language_ratio_start=0.5,
                                     language_ratio_target=0.5)
    common = dict(model_dir=tiny_model_dir, data=[caption_run], text=[text_file],
                  progress=False, save_model=False)
    base = train(config, out=str(tmp_path / "base"), parallel=ParallelConfig(strategy="ddp"),
                 **common)
    other = train(config, out=str(tmp_path / "other"),
                  parallel=ParallelConfig(strategy="ddp").replace(**changes), **common)
    assert set(base.modalities) == {"language", "multimodal"}
    assert max(abs(a - b) for a, b in zip(base.losses, other.losses, strict=True)) < 1e-5
