"""`vlforge train` / `vlforge eval` end to end, and task-head fine-tuning."""

import json

import pytest

from pipelines.cli import main as vlforge
from training.evaluate import choice_item_from_sample


def run_json(capsys, *argv):
    assert vlforge(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def sft_trained(tmp_path_factory, tiny_model_dir, sft_run):
    """Stage 3 overfit on the SFT run, through the CLI."""
    out = tmp_path_factory.mktemp("train") / "stage3"
    return str(out), tiny_model_dir, sft_run


def test_train_then_eval_reports_categories_and_choices(sft_trained, capsys, tmp_path):
    out, model_dir, sft_run = sft_trained
    summary = run_json(capsys, "train", "--stage", "3", "--model", model_dir, "--data", sft_run,
                       "--out", out, "--max-steps", "24", "--lr", "1e-2", "--batch-size", "4",
                       "--language-ratio", "0", "--json")
    assert summary["step"] == 24 and summary["final_loss"] < summary["first_loss"]
    assert summary["trainable"]["sam"]["trainable"] == 0

    # items whose right option is a trained answer and whose wrong ones are unseen text
    from tests.training.conftest import draw_png

    (tmp_path / "shape.png").write_bytes(draw_png("red", "circle"))
    rows = [{"question": "What color is the shape?", "image": "shape.png",
             "options": [wrong, "The circle is red."], "answer": 1}
            for wrong in ("Quartz jumps vividly over wax.", "Seven lamps hum in Oslo.",
                          "Fog rolls over the dock at noon.")]
    choices = tmp_path / "mc.jsonl"
    choices.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # the whole run (eval reads the held-out split by default; this checks what was trained)
    before = run_json(capsys, "eval", "--model", model_dir, "--data", sft_run, "--split", "all",
                      "--json")
    after = run_json(capsys, "eval", "--model", summary["model_dir"], "--data", sft_run,
                     "--choices", str(choices), "--split", "all", "--json")
    run_before, run_after = before["runs"][sft_run], after["runs"][sft_run]
    assert run_after["samples"] == 12 and run_after["loss"] < run_before["loss"]
    assert set(run_after["by_category"]) == {"recognition", "analysis"}
    assert sum(c["samples"] for c in run_after["by_category"].values()) == 12
    mc_before, mc_after = before["multiple_choice"], after["multiple_choice"]
    assert mc_before["items"] == 12 and mc_after["items"] == 15
    # the jsonl items (no taxonomy leaf): the trained answer has the lowest perplexity
    assert mc_after["by_category"]["unlabeled"] == {"items": 3, "accuracy": 1.0}


def test_choice_items_come_from_sft_options():
    from tests.training.conftest import sft_samples

    item = choice_item_from_sample(sft_samples()[0])
    assert item.options[item.answer] == "The square is red."
    assert item.conversation[-1]["role"] == "user" and item.images


def test_head_fine_tuning_trains_only_the_head_and_is_evaluated(tiny_model_dir, caption_run,
                                                                capsys, tmp_path):
    out = str(tmp_path / "head")
    summary = run_json(capsys, "train", "--stage", "3", "--head", "classification",
                       "--model", tiny_model_dir, "--data", caption_run, "--out", out,
                       "--max-steps", "6", "--json")
    assert summary["trainable"]["heads"]["trainable"] > 0
    assert all(g["trainable"] == 0 for name, g in summary["trainable"].items() if name != "heads")
    report = run_json(capsys, "eval", "--model", summary["model_dir"], "--data", caption_run,
                      "--split", "all", "--json")
    heads = report["runs"][caption_run]["heads"]
    assert heads["task"] == "classification" and heads["samples"] == 24
    assert 0.0 <= heads["metrics"]["accuracy"] <= 1.0


def test_bad_stage_settings_are_reported_together(tiny_model_dir, tmp_path, capsys):
    assert vlforge(["train", "--stage", "2", "--model", tiny_model_dir, "--out", str(tmp_path),
                    "--lr", "-1", "--batch-size", "0", "--language-ratio", "2"]) == 1
    err = capsys.readouterr().err
    assert "lr must be" in err and "batch_size" in err and "language_ratio_target" in err
    assert vlforge(["train", "--stage", "2", "--model", tiny_model_dir, "--data",
                    str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "--text" in capsys.readouterr().err
