"""The whole PDF pipeline on real Beam runners: DirectRunner in-process (through the CLI),
DirectRunner multi-processing, and PortableRunner against Beam's local job service."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest

from pipelines.core.audit import audit_run
from pipelines.cli import main as vlforge
from pipelines.pdf.pipeline import pdf_refs
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import retry, run_pipeline
from tests.pipelines.pdf_fixtures import write_corpus

# Post stages (OCR, charts, labels) are tested by their owners; keep these runs lean.
CONFIG = {"ocr": None, "charts": False, "label": False}
POST_FLAGS = ["--ocr", "none", "--no-charts", "--no-label"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(str(tmp_path_factory.mktemp("pdfs")))


@pytest.fixture(scope="module")
def job_service():
    """Beam's local job service (the API Flink/Spark/Dataflow runners use), on a free port."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m",
                             "apache_beam.runners.portability.local_job_service_main",
                             "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("localhost", port), 1):
            break
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("local job service did not start")
    yield f"localhost:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def assert_every_page_accounted(out: str, corpus: dict[str, str]) -> dict[str, Counter]:
    """audit_run agrees, and independently: each document and each page has exactly one
    fate. Returns {file name: Counter of fates} for checks per fixture."""
    report = audit_run(out)
    assert report.ok, report.to_dict()
    manifest = pq.read_table(os.path.join(out, "manifest.parquet")).to_pylist()
    outcomes = pq.read_table(os.path.join(out, "outcomes.parquet")).to_pylist()
    fates: dict[str, list] = {}
    for row in outcomes:
        fates.setdefault(row["item_id"], []).append(row)
    for row in manifest:
        if not row["derived_from"]:
            fates.setdefault(row["item_id"], []).append({"kind": "written", **row})
    assert all(len(f) == 1 for f in fates.values()), [f for f in fates.values() if len(f) > 1]
    by_file: dict[str, Counter] = {}
    inputs = {json.loads(r["input_ref"])["path"]: r["input_id"] for r in
              pq.read_table(os.path.join(out, "inputs.parquet")).to_pylist()}
    assert set(inputs) == set(corpus.values())
    for path, input_id in inputs.items():
        [fate] = fates[input_id]
        counts = Counter()
        if fate["kind"] == "expanded":
            pages = [f[0] for f in fates.values() if f[0].get("parent_item") == input_id]
            assert len(pages) == fate["parts"]
            counts.update(f"{p['kind']}:{p.get('reason') or ''}" for p in pages)
        else:
            counts[f"{fate['kind']}:{fate['reason']}"] += 1
        counts.update(f"derived:{r['locator'].rsplit('&', 1)[1].split('=')[0]}"
                      for r in manifest if r["derived_from"] and r["input_id"] == input_id)
        by_file[os.path.basename(path)] = counts
    return by_file


def check_fixture_fates(fates: dict[str, Counter]) -> None:
    assert fates["text_table.pdf"] == Counter({"written:": 2, "derived:table": 1})
    # a page with a figure also gives an interleaved document, a labelled caption a pair
    assert fates["chart.pdf"] == Counter({"written:": 1, "derived:figure": 1,
                                          "derived:caption": 1, "derived:interleaved": 1})
    assert fates["photo_scan.pdf"] == Counter({"written:": 2, "derived:figure": 1,
                                               "derived:caption": 1, "derived:interleaved": 1})
    assert fates["blank_dup.pdf"] == Counter({"written:": 1, "dropped:blank_page": 1,
                                              "dropped:near_duplicate_page": 1})
    assert fates["book.epub"]["written:"] >= 1
    assert fates["encrypted.pdf"] == Counter({"dropped:encrypted": 1})
    assert fates["garbage.pdf"] == Counter({"error:corrupt_file": 1})
    assert fates["zero_pages.pdf"] == Counter({"dropped:no_pages": 1})
    assert fates["chart_copy.pdf"] == Counter({"dropped:duplicate_file": 1})
    assert fates["bomb.pdf"] == Counter({"dropped:image_too_large": 1})
    assert fates["enormous.pdf"] == Counter({"written:": 1, "dropped:degenerate_page": 1})


def test_cli_in_process_direct_runner(corpus, tmp_path, capsys):
    out = str(tmp_path / "run")
    code = vlforge(["pdf", *sorted(corpus.values()), "--out", out, "--task-size", "4",
                    "--json", *POST_FLAGS])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["inputs"] == len(corpus) and stats["written"] >= 8
    check_fixture_fates(assert_every_page_accounted(out, corpus))
    samples = {s.locator: s for s in RunDir(out).iter_samples()}
    chart = [s for s in samples.values() if s.meta["pdf"].get("figure_source") == "vector"][0]
    assert chart.meta["pdf"]["caption"].startswith("Figure 1")
    info = json.loads(open(os.path.join(out, "run.json")).read())
    assert info["config"]["render"]["target"] == 1024 and info["tools"]["pymupdf"]


@pytest.mark.slow
def test_direct_runner_multi_processing(corpus, tmp_path):
    out = str(tmp_path / "run")
    run_pipeline("pdf", pdf_refs(sorted(corpus.values())), CONFIG, out, task_size=3,
                 beam_args=["--runner=DirectRunner", "--direct_num_workers=2",
                            "--direct_running_mode=multi_processing"])
    check_fixture_fates(assert_every_page_accounted(out, corpus))


@pytest.mark.slow
def test_portable_runner_loopback(corpus, tmp_path, job_service):
    out = str(tmp_path / "run")
    run_pipeline("pdf", pdf_refs(sorted(corpus.values())), CONFIG, out, task_size=6,
                 beam_args=["--runner=PortableRunner", f"--job_endpoint={job_service}",
                            "--environment_type=LOOPBACK"])
    check_fixture_fates(assert_every_page_accounted(out, corpus))


def test_retry_reruns_a_failed_page_alone(corpus, tmp_path):
    """A page that timed out is re-rendered alone by `retry` and merged into the run."""
    out = str(tmp_path / "run")
    paths = [corpus["text_table.pdf"], corpus["chart.pdf"]]
    config = {**CONFIG, "page_timeout": 1e-4}  # every first attempt times out
    stats = run_pipeline("pdf", pdf_refs(paths), config, out, task_size=2)
    assert stats["errors"] >= 1 and set(stats["errors_by_reason"]) == {"RenderPdfPages:timeout"}
    info = json.loads(open(os.path.join(out, "run.json")).read())
    info["config"]["page_timeout"] = 60  # what an operator would change before retrying
    RunDir(out).write_json(info, "run.json")
    stats = retry(out)
    assert stats["errors"] == 0
    fates = assert_every_page_accounted(out, {os.path.basename(p): p for p in paths})
    assert fates["text_table.pdf"] == Counter({"written:": 2, "derived:table": 1})
