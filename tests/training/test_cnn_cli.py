"""The seed's CNN hybrid from the CLI: `model init --preset cnn-hybrid`, `train --head` in
THE loop (a small subset first, then the whole run), `eval` on the held-out split."""

from __future__ import annotations

import json
import os

import pytest

from pipelines.cli import main as vlforge
from pipelines.core.run_dir import RunDir


def run_json(capsys, *argv):
    assert vlforge([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_cnn_trains_from_the_cli_with_falling_loss(caption_run, tmp_path, capsys):
    model = tmp_path / "cnn"
    card = run_json(capsys, "model", "init", "--preset", "cnn-hybrid", "--out", model, "--json")
    assert card["preset"] == "cnn-hybrid" and os.path.exists(model / "cnn.safetensors")

    subset = run_json(capsys, "train", "--stage", "3", "--model", model, "--head",
                      "classification", "--data", caption_run, "--subset", "8",
                      "--max-steps", "30", "--batch-size", "4", "--out", tmp_path / "subset",
                      "--json")
    assert subset["trainable"]["cnn"]["trainable"] > 0  # the whole CNN trains, not only the head
    assert subset["final_loss"] < subset["first_loss"]
    stage = json.loads((tmp_path / "subset" / "stage.json").read_text())
    assert stage["config"]["subset"] == 8

    # then the whole run, continuing from the subset's model and head
    full = run_json(capsys, "train", "--stage", "3", "--model", tmp_path / "subset" / "model",
                    "--head", "classification", "--data", caption_run, "--max-steps", "10",
                    "--batch-size", "4", "--out", tmp_path / "full", "--json")
    rows = [json.loads(line) for line in (tmp_path / "subset" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # falling, not one lucky step
    assert full["step"] == 10 and json.loads(
        (tmp_path / "full" / "stage.json").read_text())["config"]["subset"] is None
    # the continued model starts where the subset left it: its head and CNN were restored
    again = run_json(capsys, "train", "--stage", "3", "--model", tmp_path / "subset" / "model",
                     "--head", "classification", "--data", caption_run, "--subset", "8",
                     "--max-steps", "1", "--batch-size", "4", "--out", tmp_path / "again",
                     "--json")
    assert again["first_loss"] < subset["first_loss"]

    report = run_json(capsys, "eval", "--model", tmp_path / "full" / "model",
                      "--data", caption_run, "--json")
    held_out = len(RunDir(caption_run).split_keys("validation"))
    [result] = report["runs"].values()
    assert report["split"] == "validation" and held_out >= 1
    assert result["heads"]["samples"] == held_out
    assert 0 <= result["heads"]["metrics"]["accuracy"] <= 1


def test_cnn_model_needs_a_head(caption_run, tmp_path, capsys):
    model = tmp_path / "cnn"
    assert vlforge(["model", "init", "--preset", "cnn-hybrid", "--out", str(model)]) == 0
    code = vlforge(["train", "--stage", "3", "--model", str(model), "--data", caption_run,
                    "--max-steps", "1", "--out", str(tmp_path / "run")])
    assert code == 1
    assert "--head" in capsys.readouterr().err
