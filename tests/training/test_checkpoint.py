"""Sharded checkpoints (torch.distributed.checkpoint) through fsspec, resumed exactly."""

from training.checkpoint import list_checkpoints, load_checkpoint
from training.stages import stage_preset


def test_resume_through_an_fsspec_url_with_an_unstepped_parameter(tiny_model_dir, caption_run,
                                                                  text_file, tmp_path):
    """Step 1 is language-only, so the image adaptor has no AdamW state when the run stops;
    the resumed run must not invent one (same curve), and checkpoints go through fsspec."""
    from training.loop import train

    config = stage_preset(2).replace(max_steps=5, save_every=100, batch_size=2,
                                     shuffle_buffer=8, language_ratio_start=1.0,
                                     language_ratio_target=0.0, language_ratio_warmup_steps=2)
    common = dict(model_dir=tiny_model_dir, data=[caption_run], text=[text_file],
                  progress=False, save_model=False)
    whole = train(config, out=str(tmp_path / "whole"), **common)
    assert whole.modalities[0] == "language" and "multimodal" in whole.modalities

    url = f"file://{tmp_path}/store/ckpt"
    first = train(config, out=str(tmp_path / "split"), stop_after=1, checkpoint_dir=url,
                  **common)
    assert first.checkpoint.startswith("file://")
    assert list_checkpoints(str(tmp_path / "split")) == []  # not under RUN/checkpoints
    saved = load_checkpoint(first.checkpoint)
    assert "model.high_res_vision_alpha" in saved["model"]
    assert not any("high_res_vision_alpha" in k for k in saved["optimizer"].get("state", {}))
    second = train(config, out=str(tmp_path / "split"), resume="auto", checkpoint_dir=url,
                   **common)
    assert second.resumed_from == 1
    assert first.losses + second.losses == whole.losses
