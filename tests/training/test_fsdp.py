"""FSDP2 under real `torchrun --nproc_per_node 2` (gloo, CPU): same losses as DDP, exact
resume after SIGKILL, and checkpoints that move between world sizes (2 -> 1 -> 2)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from training.checkpoint import list_checkpoints, load_checkpoint
from training.metrics import read_metrics

BIN = os.path.dirname(sys.executable)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
STEPS = 8


def stage2(model, caption_run, text_file, out, *extra):
    return ["--stage", "2", "--model", model, "--data", caption_run, "--text", text_file,
            "--out", out, "--max-steps", str(STEPS), "--batch-size", "2",
            "--language-ratio", "0.5", "--save-every", "2", "--no-progress", *extra]


def torchrun(args, nproc=2, **kw):
    return [os.path.join(BIN, "torchrun"), "--standalone", "--nproc_per_node", str(nproc),
            "-m", "training", "train", *args]


def run(command, timeout=300):
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def losses(out):
    return [row["loss"] for row in read_metrics(out)]


@pytest.fixture(scope="module")
def fsdp_run(tiny_model_dir, caption_run, text_file, tmp_path_factory):
    """An uninterrupted 2-rank FSDP run of stage 2 (checkpoints every 2 steps)."""
    out = str(tmp_path_factory.mktemp("fsdp") / "whole")
    run(torchrun(stage2(tiny_model_dir, caption_run, text_file, out, "--strategy", "fsdp")))
    return out


@pytest.mark.slow
def test_fsdp_and_ddp_give_the_same_losses(fsdp_run, tiny_model_dir, caption_run, text_file,
                                           tmp_path):
    out = str(tmp_path / "ddp")
    run(torchrun(stage2(tiny_model_dir, caption_run, text_file, out, "--strategy", "ddp")))
    ddp, fsdp = losses(out), losses(fsdp_run)
    assert len(ddp) == len(fsdp) == STEPS
    assert max(abs(a - b) for a, b in zip(ddp, fsdp)) < 1e-4, (ddp, fsdp)
    with open(os.path.join(fsdp_run, "stage.json")) as handle:
        stage = json.load(handle)
    assert stage["strategy"] == "fsdp"
    # each rank read about half of the weights file (its rows of every tensor), never all
    whole = os.path.getsize(os.path.join(tiny_model_dir, "model.safetensors"))
    assert len(stage["weights_read_bytes"]) == 2
    assert all(0.3 * whole < read < 0.6 * whole for read in stage["weights_read_bytes"])
    # the final model is a plain transformers directory, whichever strategy trained it
    from model.loading import load_model

    model, _ = load_model(os.path.join(fsdp_run, "model"))
    assert sum(p.numel() for p in model.parameters()) > 0
    # the checkpoint holds the trainable tensors only, whole when read back in one process
    saved = load_checkpoint(list_checkpoints(fsdp_run)[-1][1])
    assert saved["world_size"] == 2 and saved["strategy"] == "fsdp"
    assert any(n.startswith("model.language_model.layers.") for n in saved["model"])
    assert not any(n.startswith("model.vision_model.") for n in saved["model"])


@pytest.mark.slow
def test_sigkilled_fsdp_run_resumes_to_the_uninterrupted_curve(fsdp_run, tiny_model_dir,
                                                               caption_run, text_file,
                                                               tmp_path):
    out = str(tmp_path / "killed")
    args = stage2(tiny_model_dir, caption_run, text_file, out, "--strategy", "fsdp")
    # a session of its own, so the kill takes torchrun and both ranks at once (preemption)
    process = subprocess.Popen(torchrun(args), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    deadline = time.time() + 240
    while not list_checkpoints(out) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    stopped_at = list_checkpoints(out)[-1][0]
    assert stopped_at < STEPS, "the run finished before it could be killed"

    run(torchrun(args + ["--resume", "auto"]))
    assert losses(out) == losses(fsdp_run)
    assert [row["step"] for row in read_metrics(out)] == list(range(1, STEPS + 1))


@pytest.mark.slow
def test_checkpoint_moves_from_two_ranks_to_one_and_back(fsdp_run, tiny_model_dir,
                                                         caption_run, text_file, tmp_path):
    step6 = dict(list_checkpoints(fsdp_run))[6]
    saved = load_checkpoint(step6)
    one = str(tmp_path / "one")
    # 2 -> 1: a single process (FSDP over one rank) continues the 2-rank run at step 6
    done = run([os.path.join(BIN, "vlforge"), "train", *stage2(
        tiny_model_dir, caption_run, text_file, one, "--strategy", "fsdp", "--resume",
        step6, "--json")])
    summary = json.loads(done.stdout)
    assert summary["resumed_from"] == 6 and summary["step"] == STEPS
    rows = read_metrics(one)
    assert [r["step"] for r in rows] == [7, 8]
    assert all(r["samples"] == 2 for r in rows)  # one rank now: batch 2 x 1 rank
    # its first step started from the 2-rank weights: its checkpoint moved on from them
    after = load_checkpoint(list_checkpoints(one)[-1][1])
    assert after["world_size"] == 1 and after["model"].keys() == saved["model"].keys()
    assert len(after["data"]) == 1 and after["rng"]

    # 1 -> 2: two ranks continue the 1-rank run, under DDP this time (one checkpoint format)
    run(torchrun(stage2(tiny_model_dir, caption_run, text_file, one, "--strategy", "ddp",
                        "--resume", "auto", "--max-steps", "10")))
    rows = read_metrics(one)
    assert [r["step"] for r in rows] == [7, 8, 9, 10]
    assert rows[-1]["samples"] == 4  # batch 2 x 2 ranks
    final = load_checkpoint(list_checkpoints(one)[-1][1])
    assert final["world_size"] == 2 and len(final["data"]) == 2 and final["step"] == 10
