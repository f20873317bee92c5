"""`torchrun --nproc_per_node 2 -m training train ...` on CPU (gloo), then resumed."""

import json
import os
import subprocess
import sys

import pytest

from training.checkpoint import latest_checkpoint, load_checkpoint
from training.metrics import read_metrics

TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


def torchrun(*args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "training",
                           "train", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.mark.slow
def test_two_process_ddp_run_and_resume(tiny_model_dir, caption_run, text_file, tmp_path):
    out = str(tmp_path / "ddp")
    common = ["--stage", "2", "--model", tiny_model_dir, "--data", caption_run, "--text",
              text_file, "--out", out, "--max-steps", "4", "--batch-size", "2", "--grad-accum", "2",
              "--language-ratio", "0.5", "--json"]
    first = torchrun(*common, "--stop-after", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    saved = load_checkpoint(latest_checkpoint(out))
    assert saved["world_size"] == 2 and len(saved["data"]) == 2 and saved["step"] == 2

    second = torchrun(*common, "--resume", "auto")
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(second.stdout)  # only rank 0 prints
    assert summary["step"] == 4 and summary["resumed_from"] == 2
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r["samples"] == 2 * 2 * 2 for r in rows)  # batch 2 x accum 2 x 2 ranks
    assert os.path.exists(os.path.join(summary["model_dir"], "config.json"))


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_uninterrupted_curve(tiny_model_dir, caption_run,
                                                           tmp_path):
    """A real `kill -9` mid-run, then `--resume auto`: metrics equal an uninterrupted run."""
    import signal
    import time

    from training.checkpoint import list_checkpoints

    def command(out):
        return [os.path.join(os.path.dirname(sys.executable), "vlforge"), "train", "--stage",
                "1", "--model", tiny_model_dir, "--data", caption_run, "--out", out,
                "--max-steps", "12", "--save-every", "2", "--batch-size", "2", "--no-progress"]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = str(tmp_path / "whole")
    subprocess.run(command(whole), check=True, capture_output=True, timeout=300, env=env)

    killed = str(tmp_path / "killed")
    process = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    while not list_checkpoints(killed) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    stopped_at = list_checkpoints(killed)[-1][0]
    assert stopped_at < 12, "the run finished before it could be killed"

    subprocess.run(command(killed) + ["--resume", "auto"], check=True, capture_output=True,
                   timeout=300, env=env)
    assert [r["loss"] for r in read_metrics(killed)] == [r["loss"] for r in read_metrics(whole)]
    assert [r["step"] for r in read_metrics(killed)] == list(range(1, 13))
