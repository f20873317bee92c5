"""Every command that reads a run works on a run directory in an S3 object store."""

from __future__ import annotations

import json

import pytest

from pipelines.cli import main as vlforge
from tests.pipelines.fixtures import write_images
from tests.training.conftest import sft_samples, write_run_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run_json(capsys, *argv):
    assert vlforge([str(a) for a in argv]) == 0, argv
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def s3_runs(seaweedfs, tmp_path_factory):
    """An images run written straight to S3 (with a broken input, for retry), and an SFT
    run uploaded to S3."""
    fs = seaweedfs.filesystem()
    bucket = seaweedfs.new_bucket("readers")
    images = tmp_path_factory.mktemp("images")
    write_images(str(images), 4)
    (images / "broken.png").write_bytes(b"not an image")
    assert vlforge(["images", str(images), "--out", f"s3://{bucket}/images", "--ocr", "none",
                    "--no-charts", "--no-label", "--task-size", "2"]) == 0
    local = write_run_dir(tmp_path_factory.mktemp("runs") / "sft", "sft", sft_samples(),
                          max_count=4)
    fs.put(str(local) + "/", f"{bucket}/sft/", recursive=True)
    return f"s3://{bucket}"


def test_audit_retry_and_shards_on_s3(s3_runs, capsys, tmp_path):
    run = f"{s3_runs}/images"
    assert run_json(capsys, "audit", run, "--json")["ok"]
    stats = run_json(capsys, "retry", run, "--json")
    assert stats["errors"] == 1 and stats["written"] == 4
    info = run_json(capsys, "shards", "inspect", run, "--json")
    assert info["samples"] == 4
    assert vlforge(["shards", "export", run, "--to", "parquet", str(tmp_path / "pq")]) == 0
    assert list((tmp_path / "pq").glob("*.parquet"))
    assert vlforge(["report", run, "--out", str(tmp_path / "card.html")]) == 0
    assert "images" in (tmp_path / "card.html").read_text()


def test_train_and_eval_read_s3_runs(s3_runs, tiny_model_dir, capsys, tmp_path):
    data = f"{s3_runs}/sft"
    summary = run_json(capsys, "train", "--stage", "3", "--model", tiny_model_dir, "--data",
                       data, "--out", tmp_path / "train", "--max-steps", "2",
                       "--batch-size", "2", "--language-ratio", "0", "--json")
    assert summary["step"] == 2
    report = run_json(capsys, "eval", "--model", tiny_model_dir, "--data", data,
                      "--max-samples", "4", "--json")
    assert report
