"""Kill the engine mid-run on object storage, re-run with the same --out s3://...

S3 has no rename: `fs.mv` is a server-side copy then a delete. What makes a shard visible
only when complete is that an S3 object appears only once its upload (PUT, or a multipart
upload's Complete call) succeeds: a writer killed mid-upload leaves no object at all (an
unfinished multipart upload is invisible to listings and reads). A shard is uploaded under
a temporary ``.tmp-`` name first, then copied to its final name; readers only read shards
that a finished task's manifest lists, in runs with ``_SUCCESS``. The test checks what a
reader could see right after the kill (every ``*.tar`` complete, no ``_SUCCESS``) and that
the re-run completes with no duplicate and no leftover temporary object.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from pipelines.core.audit import audit_run
from pipelines.core.run_dir import RunDir
from pipelines.core.shards import TMP_MARK
from tests.pipelines import pdf_fixtures
from tests.servers import start_dask_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

VLFORGE = str(Path(sys.executable).parent / "vlforge")
FLAGS = ["--task-size", "1", "--ocr", "none", "--no-charts", "--no-label"]


def _documents(directory: Path) -> Path:
    corpus = pdf_fixtures.write_corpus(str(directory / "all"))
    docs = directory / "docs"
    docs.mkdir()
    for name in ("text_table.pdf", "chart.pdf", "photo_scan.pdf", "blank_dup.pdf",
                 "garbage.pdf", "book.epub"):
        os.link(corpus[name], docs / name)
    for index in range(4):  # more tasks, so the kill lands mid-run
        pdf_fixtures.text_and_table(str(docs / f"extra{index}.pdf"))
        with open(docs / f"extra{index}.pdf", "ab") as handle:
            handle.write(f"\n% copy {index}\n".encode())  # distinct bytes, same pages
    return docs


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(30)


def test_killed_dask_run_on_s3_reruns_to_the_same_samples(seaweedfs, tmp_path):
    fs = seaweedfs.filesystem()
    bucket = seaweedfs.new_bucket("kill")
    docs = _documents(tmp_path)
    fs.put(str(docs) + "/", f"{bucket}/in/", recursive=True)
    out = f"s3://{bucket}/run"

    reference = str(tmp_path / "direct")
    subprocess.run([VLFORGE, "pdf", str(docs), "--out", reference, *FLAGS], check=True,
                   capture_output=True)

    servers, address = start_dask_cluster(tmp_path / "dask1", 2, seaweedfs.env)
    command = [VLFORGE, "pdf", f"s3://{bucket}/in", "--out", out, *FLAGS,
               "--runner=DaskRunner", f"--dask_client_address={address}"]
    driver = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and driver.poll() is None:
            done = fs.glob(f"{bucket}/run/tasks/*.json") if fs.exists(f"{bucket}/run/tasks") \
                else []
            fs.invalidate_cache()
            if len([d for d in done if TMP_MARK not in d]) >= 2:
                break
            time.sleep(0.2)
        assert driver.poll() is None, "the run finished before it could be killed"
    finally:  # kill the engine: driver, scheduler and workers, no clean shutdown
        _kill_group(driver)
        for server in servers:
            _kill_group(server.process)

    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/run/_SUCCESS")
    visible = [p for p in fs.find(f"{bucket}/run") if p.endswith(".tar")
               and not p.rsplit("/", 1)[-1].startswith(TMP_MARK)]
    for path in visible:  # what a glob would see is whole, never a partial tar
        with fs.open(path, "rb") as handle, tarfile.open(fileobj=handle) as tar:
            assert tar.getmembers()
    total = len(RunDir(out).inputs().column("task").unique())
    assert len(RunDir(out).done_tasks()) < total

    servers, address = start_dask_cluster(tmp_path / "dask2", 2, seaweedfs.env)
    try:
        rerun = command[:-1] + [f"--dask_client_address={address}"]
        result = subprocess.run(rerun, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        for server in reversed(servers):
            server.stop()

    report = audit_run(out)
    assert report.ok, report.to_dict()
    fs.invalidate_cache()
    names = [p.rsplit("/", 1)[-1] for p in fs.find(f"{bucket}/run")]
    assert not [n for n in names if n.startswith(TMP_MARK)]
    manifest = RunDir(out).manifest().to_pylist()
    keys = [row["key"] for row in manifest]
    assert len(keys) == len(set(keys))  # no duplicate sample
    assert {n for n in names if n.endswith(".tar")} == {row["shard"] for row in manifest}
    expected = RunDir(reference).manifest().to_pylist()
    assert {(r["key"], r["image_sha256"]) for r in manifest} == \
        {(r["key"], r["image_sha256"]) for r in expected}
