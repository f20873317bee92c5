"""Stage configs: validation lists every problem; presets follow Table 4; schedules."""

import pytest

from training.stages import StageConfig, StageConfigError, stage_preset
from training.trainable import param_group


def test_validation_lists_every_problem_at_once():
    with pytest.raises(StageConfigError) as info:
        StageConfig(stage=4, trainable=("adaptor", "nose"), lr=-1, schedule="linear",
                    batch_size=0, language_ratio_target=1.5, step_milestones=(0.9, 0.5)).validate()
    message = str(info.value)
    for needle in ("stage must be 1, 2 or 3", "unknown trainable group", "lr must be > 0",
                   "schedule must be one of", "batch_size must be", "language_ratio_target",
                   "step_milestones"):
        assert needle in message


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(StageConfigError, match="unknown stage config field"):
        StageConfig.from_dict({**stage_preset(1).to_dict(), "learning_rate": 1})
    assert StageConfig.from_dict(stage_preset(2).to_dict()) == stage_preset(2)


@pytest.mark.parametrize("scale", ["tiny", "1.3b", "7b"])
def test_presets_follow_table4(scale):
    s1, s2, s3 = (stage_preset(s, scale) for s in (1, 2, 3))
    assert s1.trainable == ("adaptor",)
    assert set(s2.trainable) == {"language_model", "adaptor"}
    assert set(s3.trainable) == {"language_model", "adaptor", "siglip"}
    assert (s1.schedule, s2.schedule, s3.schedule) == ("cosine", "step", "cosine")
    assert (s1.packing, s2.packing, s3.packing) == (False, True, False)
    assert s1.betas == (0.9, 0.95) and s1.weight_decay == 0 and s1.grad_clip == 1.0
    assert (s2.language_ratio_start, s2.language_ratio_target) == (1.0, 0.7)
    assert not s1.uses_language and s3.uses_language
    if scale != "tiny":
        assert s1.batch_size * s1.grad_accum == 256 and s1.seq_len == 512
        assert s2.seq_len == 4096 and s2.warmup_steps == 2000
    if scale == "7b":
        assert s2.lr == 4.2e-5 and s2.max_steps == 42000
        assert s2.batch_size * s2.grad_accum == 2304


def test_lr_schedules_warm_up_then_decay():
    cosine = stage_preset(1).replace(warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    factors = [cosine.lr_factor(s) for s in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))  # monotone decay
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
    step = stage_preset(2).replace(warmup_steps=5, max_steps=100)
    assert step.lr_factor(50) == 1.0
    assert step.lr_factor(80) == pytest.approx(0.316)
    assert step.lr_factor(95) == pytest.approx(0.316 ** 2)


def test_language_ratio_decays_from_start_to_target():
    config = stage_preset(2).replace(language_ratio_warmup_steps=10)
    assert config.language_ratio(0) == 1.0
    assert config.language_ratio(5) == pytest.approx(0.85)
    assert config.language_ratio(10) == config.language_ratio(500) == pytest.approx(0.7)


def test_param_groups_by_longest_prefix():
    assert param_group("model.aligner.proj.weight") == "adaptor"
    # SAM's own neck is part of the pretrained SAM-B encoder; DeepSeek's neck_hd is adaptor
    assert param_group("model.high_res_vision_model.vision_encoder.neck.conv1.weight") == "sam"
    assert param_group("model.high_res_vision_neck.conv1.weight") == "adaptor"
    assert param_group("model.high_res_vision_alpha") == "adaptor"
    assert param_group("model.high_res_vision_model.vision_encoder.layers.0.attn.qkv.weight") == "sam"
    assert param_group("model.high_res_vision_proj.conv2.weight") == "adaptor"
    assert param_group("model.vision_model.encoder.layers.0.mlp.fc1.weight") == "siglip"
    assert param_group("lm_head.weight") == "language_model"


def test_stage_groups_on_the_siglip_only_family():
    """The 1.3B wiring (no SAM): every stage's groups exist; asking for SAM is an error."""
    from model.build import init_model

    from training.trainable import apply_trainable

    model, _ = init_model("tiny-siglip")
    for stage in (1, 2, 3):
        summary = apply_trainable(model, stage_preset(stage).trainable)
        assert "sam" not in summary and "other" not in summary
        trained = {g for g, c in summary.items() if c["trainable"]}
        assert trained == set(stage_preset(stage).trainable)
        assert all(c["trainable"] in (0, c["params"]) for c in summary.values())
    with pytest.raises(ValueError, match="match no parameter"):
        apply_trainable(model, ("sam",))
