"""The pipelines on real distributed engines, reading and writing an S3 object store.

Engines: Beam's DaskRunner against a dask.distributed cluster (scheduler + two worker
processes over TCP) and Beam's PortableRunner with an external SDK worker pool (how Flink,
Spark and Dataflow run Python workers). Inputs are uploaded to a SeaweedFS S3 store and
every run directory is an ``s3://`` URL; each engine must produce the same sample set (keys
and image checksums) as the DirectRunner on local files, and `vlforge audit` must pass.
All servers are started by the tests, on loopback.
"""

from __future__ import annotations

from collections import Counter

import pytest

from pipelines.cli import main
from pipelines.core.audit import audit_run
from pipelines.core.run_dir import RunDir
from pipelines.web.testsite import serve_site
from tests.engines.engine_inputs import write_local_inputs

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(1800)]

PAGES = ("/", "/articles/1", "/articles/2", "/table", "/missing")
FAST = ["--ocr", "none", "--no-charts"]  # the engines are under test, not OCR or charts
CRAWL = ["--allow-address", "127.0.0.1", "--no-label", "--depth", "0", "--host-delay", "0",
         "--nav-timeout", "5", "--page-timeout", "12", "--retries", "1"]


def run_cli(*argv: str) -> None:
    code = main([str(a) for a in argv])
    assert code == 0, f"vlforge {' '.join(map(str, argv))} exited {code}"


def sample_set(url: str, by: str = "key") -> dict[str, tuple]:
    """{key (or locator's file name): (image sha256, taxonomy leaf)} of a finished run."""
    rows = RunDir(url).require_complete().manifest().to_pylist()
    name = (lambda r: r["key"]) if by == "key" else (lambda r: r["locator"].rsplit("/", 1)[-1])
    return {name(r): (r["image_sha256"], r["taxonomy_leaf"]) for r in rows}


def keys(url: str) -> set[str]:
    return set(RunDir(url).require_complete().manifest().column("key").to_pylist())


def images(url: str) -> Counter:
    return Counter(RunDir(url).require_complete().manifest().column("image_sha256").to_pylist())


@pytest.fixture(scope="module")
def site():
    server, base = serve_site()
    yield base
    server.shutdown()


@pytest.fixture(scope="module")
def local_inputs(tmp_path_factory):
    return write_local_inputs(tmp_path_factory.mktemp("inputs"), images=5)


@pytest.fixture(scope="module")
def direct(local_inputs, site, tmp_path_factory):
    """The reference: every pipeline on the DirectRunner, local inputs, local runs."""
    out = tmp_path_factory.mktemp("direct")
    run_all(local_inputs / "pdfs", local_inputs / "images", site, str(out), [], "--task-size",
            "2")
    return str(out)


def run_all(pdfs, images, site: str, out: str, beam_args: list[str], *run_flags: str) -> None:
    run_cli("pdf", pdfs, "--out", f"{out}/pdf", *FAST, *run_flags, *beam_args)
    run_cli("images", images, "--out", f"{out}/images", *FAST, *run_flags, *beam_args)
    run_cli("crawl", *(site + p for p in PAGES), "--out", f"{out}/web", *CRAWL, *FAST,
            *run_flags, *beam_args)
    run_cli("label", f"{out}/pdf", "--out", f"{out}/label", *run_flags, *beam_args)
    run_cli("sft", "build", f"{out}/label", "--out", f"{out}/sft", *run_flags, *beam_args)


def engine_args(engine: str, request) -> list[str]:
    if engine == "dask":
        address = request.getfixturevalue("dask_cluster")
        return ["--runner=DaskRunner", f"--dask_client_address={address}"]
    return request.getfixturevalue("beam_job_service").beam_args()


@pytest.mark.parametrize("engine", ["dask", "portable"])
def test_pipelines_on_engine_and_s3_match_the_direct_runner(engine, request, direct,
                                                             local_inputs, site, seaweedfs,
                                                             tmp_path):
    fs = seaweedfs.filesystem()
    bucket = seaweedfs.new_bucket(engine)
    fs.put(str(local_inputs / "pdfs") + "/", f"{bucket}/in/pdfs/", recursive=True)
    fs.put(str(local_inputs / "images") + "/", f"{bucket}/in/images/", recursive=True)
    out = f"s3://{bucket}/runs"
    run_all(f"s3://{bucket}/in/pdfs", f"s3://{bucket}/in/images", site, out,
            engine_args(engine, request), "--task-size", "2")

    for name in ("pdf", "images", "web", "label", "sft"):
        report = audit_run(f"{out}/{name}")
        assert report.ok, (name, report.to_dict())
    assert sample_set(f"{out}/pdf") == sample_set(f"{direct}/pdf")
    assert sample_set(f"{out}/images", by="file") == sample_set(f"{direct}/images", by="file")
    assert keys(f"{out}/web") == keys(f"{direct}/web")
    assert sample_set(f"{out}/label") == sample_set(f"{direct}/label")
    # SFT keys and the mixture's choices hash the source run's URL: compare with the
    # DirectRunner building from the same S3 runs
    control = tmp_path / "sft"
    run_cli("sft", "build", f"{out}/label", "--out", control, "--task-size", "2")
    assert keys(f"{out}/sft") == keys(str(control))
    assert images(f"{out}/sft") == images(str(control))
    # the accounting matches too, reason by reason
    for name in ("pdf", "images", "web"):
        ours, theirs = RunDir(f"{out}/{name}").stats(), RunDir(f"{direct}/{name}").stats()
        for field in ("inputs", "written", "derived", "dropped_by_reason", "errors_by_reason"):
            assert ours[field] == theirs[field], (name, field)
