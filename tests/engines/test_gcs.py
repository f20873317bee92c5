"""The pipelines with inputs and run directories on GCS (``gs://``).

A GCS JSON API server (`tests.servers.gcs_emulator`, started by the test on loopback)
stands in for Google Cloud Storage; gcsfs reaches it through the standard
``STORAGE_EMULATOR_HOST`` variable, nothing vlforge-specific. `vlforge pdf` runs as its own
process with only that environment, reading its inputs from a ``gs://`` prefix and writing
a ``gs://`` run; it must give the same sample set as the DirectRunner on local files, and
`vlforge audit` (a run reader) must find the run clean. `vlforge images` runs likewise.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipelines.cli import main
from pipelines.core.audit import audit_run
from pipelines.core.run_dir import RunDir
from pipelines.core.shards import TMP_MARK
from tests.engines.engine_inputs import PDFS, write_local_inputs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FAST = ["--ocr", "none", "--no-charts", "--no-label", "--task-size", "2"]


def vlforge_process(*argv: str) -> str:
    """Run the `vlforge` command in a fresh process (the user's path: only environment
    variables say where GCS is); returns its stdout."""
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", *map(str, argv)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-4000:])
    return done.stdout


def sample_set(url: str, by: str = "key") -> dict[str, str]:
    """{key (or the input file's name): image sha256} of a finished run."""
    rows = RunDir(url).require_complete().manifest().to_pylist()
    name = (lambda r: r["key"]) if by == "key" else (lambda r: r["locator"].rsplit("/", 1)[-1])
    return {name(r): r["image_sha256"] for r in rows}


@pytest.fixture(scope="module")
def local_inputs(tmp_path_factory):
    return write_local_inputs(tmp_path_factory.mktemp("inputs"), images=4)


def test_pdf_and_images_on_gcs_match_local_runs(gcs_emulator, local_inputs, tmp_path):
    fs = gcs_emulator.filesystem()
    bucket = gcs_emulator.new_bucket("vl")
    fs.put(str(local_inputs / "pdfs") + "/", f"{bucket}/in/pdfs/", recursive=True)
    fs.put(str(local_inputs / "images") + "/", f"{bucket}/in/images/", recursive=True)
    assert len(fs.ls(f"{bucket}/in/pdfs")) == len(PDFS)
    out = f"gs://{bucket}/runs"

    stats = json.loads(vlforge_process("pdf", f"gs://{bucket}/in/pdfs", "--out", f"{out}/pdf",
                                       *FAST, "--json"))
    assert main(["pdf", str(local_inputs / "pdfs"), "--out", str(tmp_path / "pdf"),
                 *FAST]) == 0
    local = RunDir(str(tmp_path / "pdf")).stats()
    # keys hash the file contents (sha256 + page), not the URL: GCS and local runs agree
    assert sample_set(f"{out}/pdf") == sample_set(str(tmp_path / "pdf"))
    assert stats["dropped_by_reason"] == local["dropped_by_reason"]
    assert "RenderPdfPages:duplicate_file" in stats["dropped_by_reason"]
    assert stats["errors_by_reason"] == local["errors_by_reason"]
    for field in ("inputs", "written", "derived"):
        assert stats[field] == local[field], field

    report = json.loads(vlforge_process("audit", f"{out}/pdf", "--json"))
    assert report["ok"], report
    assert audit_run(f"{out}/pdf").ok
    # no temporary or partial object is left where readers look
    assert not [p for p in fs.find(f"{bucket}/runs/pdf") if TMP_MARK in p]

    assert main(["images", f"gs://{bucket}/in/images", "--out", f"{out}/images", *FAST]) == 0
    assert main(["images", str(local_inputs / "images"), "--out", str(tmp_path / "images"),
                 *FAST]) == 0
    assert sample_set(f"{out}/images", by="file") == \
        sample_set(str(tmp_path / "images"), by="file")
    assert audit_run(f"{out}/images").ok
    assert RunDir(f"{out}/images").stats()["errors"] == 1  # the broken file, on GCS too
