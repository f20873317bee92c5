"""`vlforge train --dry-run` and `--plan`: what a stage trains and needs, nothing run."""

from __future__ import annotations

import json

from pipelines.cli import main as vlforge


def run_json(capsys, argv):
    assert vlforge(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_stage1_dry_run_lists_the_paper_adaptor_only(capsys):
    from model.presets import build_config, model_class_for

    report = run_json(capsys, ["train", "--stage", "1", "--model-preset", "tiny", "--dry-run",
                               "--json"])
    names = [t["name"] for t in report["tensors"]]
    config = build_config("tiny")
    model = model_class_for(config)(config)
    shapes = {n: list(p.shape) for n, p in model.named_parameters()}
    adaptor = [n for n in shapes if n.startswith(("model.aligner.", "model.high_res_vision_neck.",
                                                  "model.high_res_vision_proj.",
                                                  "model.high_res_vision_alpha"))]
    assert sorted(names) == sorted(adaptor)
    assert "model.high_res_vision_proj.conv2.weight" in names
    assert "model.high_res_vision_alpha" in names
    assert not any(".vision_encoder.neck." in n for n in names)  # SAM's own neck is frozen
    for row in report["tensors"]:
        assert row["shape"] == shapes[row["name"]] and row["group"] == "adaptor"
        count = 1
        for side in row["shape"]:
            count *= side
        assert row["count"] == count
    assert report["trainable"] == sum(t["count"] for t in report["tensors"])
    assert report["total"] == sum(p.numel() for p in model.parameters())
    assert report["groups"]["sam"]["trainable"] == 0
    assert report["groups"]["adaptor"]["trainable"] == report["trainable"]


def test_dry_run_reads_a_model_directory_and_prints_totals(capsys, tiny_model_dir):
    assert vlforge(["train", "--stage", "2", "--model", tiny_model_dir, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stage 2 (joint-pretraining)" in out
    assert "model.language_model.layers.1.mlp.down_proj.weight" in out and "64x128" in out
    assert "lm_head.weight" in out
    assert "trainable:" in out and "language_model" in out
    assert "vision_encoder.neck" not in out and "model.vision_model." not in out


def test_plan_7b_stage2_on_64_gpus(capsys):
    argv = ["train", "--plan", "--model-preset", "7b", "--stage", "2", "--gpus", "64",
            "--gpu-memory", "80"]
    plans = run_json(capsys, argv + ["--json"])["plans"]
    rows = {(p["strategy"], p["activation_checkpointing"]): p for p in plans}
    assert len(rows) == 4
    assert not rows["ddp", False]["fits"] and rows["fsdp", True]["fits"]
    for p in plans:
        assert p["micro_batch"] * p["grad_accum"] * 64 == p["global_batch"] == 2304
        assert p["seq_len"] == 4096 and p["dtype"] == "bf16"
        assert p["peak"] >= p["weights"] + p["optimizer"]
        for part in ("weights", "grads", "optimizer", "activations"):
            assert p[part] > 0
    assert vlforge(argv) == 0
    text = capsys.readouterr().out
    assert "fsdp" in text and "ddp" in text and "NO" in text and "yes" in text
    # a fixed micro-batch is honoured in every row
    fixed = run_json(capsys, argv + ["--batch-size", "2", "--json"])["plans"]
    assert {p["micro_batch"] for p in fixed} == {2}
    assert {p["grad_accum"] for p in fixed} == {18}


def test_training_still_needs_model_and_out(capsys):
    assert vlforge(["train", "--stage", "1", "--model-preset", "tiny"]) == 1
    assert "--model DIR and --out RUN" in capsys.readouterr().err
