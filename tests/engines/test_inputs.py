"""Inputs are URLs: listing on the driver (local and S3), reading and hashing in workers."""

from __future__ import annotations

import hashlib
import os

import pytest

from pipelines.core.fetch import file_sha256, local_copy, read_bytes
from pipelines.core.inputs import InputError, expand_inputs, expand_paths
from pipelines.core.planning import assign_tasks
from pipelines.pdf.pipeline import pdf_refs


def _tree(root) -> None:
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.pdf").write_bytes(b"%PDF-1 one")
    (root / "a" / "two.PDF").write_bytes(b"%PDF-1 two!")
    (root / "b.pdf").write_bytes(b"%PDF-1 one")  # byte-identical to a/one.pdf
    (root / "notes.md").write_text("not an input")
    (root / "list.txt").write_text("# inputs\na/one.pdf\n\nb.pdf\n")


def test_local_directories_globs_and_list_files(tmp_path):
    _tree(tmp_path)
    everything = expand_paths([str(tmp_path)], (".pdf",))
    assert everything == sorted([str(tmp_path / "a" / "one.pdf"), str(tmp_path / "a" / "two.PDF"),
                                 str(tmp_path / "b.pdf")])
    assert expand_paths([str(tmp_path / "a" / "*.pdf")], (".pdf",)) == [
        str(tmp_path / "a" / "one.pdf")]
    assert expand_paths([str(tmp_path / "list.txt")], (".pdf",)) == [
        str(tmp_path / "a" / "one.pdf"), str(tmp_path / "b.pdf")]
    assert expand_paths([f"file://{tmp_path}/b.pdf"], (".pdf",)) == [str(tmp_path / "b.pdf")]
    with pytest.raises(InputError, match="nothing"):
        expand_paths([str(tmp_path / "nothing*.pdf")], (".pdf",))


def test_equal_sizes_share_a_task_so_duplicates_are_caught_in_one_worker(tmp_path):
    _tree(tmp_path)
    for index in range(20):  # enough other files to spread over several tasks
        (tmp_path / f"x{index:02d}.pdf").write_bytes(b"%PDF" + b"x" * (100 + index))
    refs = pdf_refs(expand_inputs([str(tmp_path)], (".pdf",)))
    assert not any("sha256" in ref for ref in refs)  # nothing was read on the driver
    tasks = dict((ref["path"], task) for task, ref in assign_tasks(refs, task_size=3))
    assert tasks[str(tmp_path / "a" / "one.pdf")] == tasks[str(tmp_path / "b.pdf")]
    assert len(set(tasks.values())) >= 7


def test_groups_stay_whole_and_ungrouped_split_as_before():
    refs = [{"input_id": f"{i:02d}", "locator": f"l{i}"} for i in range(10)]
    plain = assign_tasks(refs, 4)
    assert [t for t, _ in plain] == ["t00000"] * 4 + ["t00001"] * 4 + ["t00002"] * 2
    grouped = [dict(r, task_group="g") if r["input_id"] in ("01", "09") else r for r in refs]
    tasks = {ref["input_id"]: task for task, ref in assign_tasks(grouped, 4)}
    assert tasks["01"] == tasks["09"]


def test_fetch_reads_local_files(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    digest = hashlib.sha256(b"abc" * 1000).hexdigest()
    assert read_bytes(str(path)) == b"abc" * 1000
    assert file_sha256(f"file://{path}") == digest
    with local_copy(str(path)) as (local, sha):
        assert local == str(path) and sha == digest


@pytest.mark.slow
def test_s3_prefixes_globs_list_files_and_worker_reads(seaweedfs, tmp_path):
    fs = seaweedfs.filesystem()
    bucket = seaweedfs.new_bucket("inputs")
    _tree(tmp_path)
    fs.put(str(tmp_path) + "/", f"{bucket}/docs/", recursive=True)
    found = expand_inputs([f"s3://{bucket}/docs"], (".pdf",))
    assert [f.url for f in found] == [f"s3://{bucket}/docs/a/one.pdf",
                                      f"s3://{bucket}/docs/a/two.PDF",
                                      f"s3://{bucket}/docs/b.pdf"]
    assert [f.size for f in found] == [10, 11, 10]
    assert expand_paths([f"s3://{bucket}/docs/a/*.pdf"], (".pdf",)) == [
        f"s3://{bucket}/docs/a/one.pdf"]
    assert expand_paths([f"s3://{bucket}/docs/list.txt"], (".pdf",)) == [
        f"s3://{bucket}/docs/a/one.pdf", f"s3://{bucket}/docs/b.pdf"]
    url = f"s3://{bucket}/docs/a/two.PDF"
    assert read_bytes(url) == b"%PDF-1 two!"
    with local_copy(url, suffix=".pdf") as (local, sha):
        assert open(local, "rb").read() == b"%PDF-1 two!"
        assert sha == hashlib.sha256(b"%PDF-1 two!").hexdigest() == file_sha256(url)
    assert not os.path.exists(local)  # the temporary copy is gone


@pytest.mark.slow
def test_pdf_from_an_http_url_is_read_in_the_worker(tmp_path):
    from pipelines.cli import main
    from pipelines.core.audit import audit_run
    from pipelines.core.run_dir import RunDir
    from pipelines.web.testsite import serve_site

    from tests.pipelines import pdf_fixtures

    pdf_fixtures.text_and_table(str(tmp_path / "doc.pdf"))
    server, base = serve_site({"/docs/doc.pdf": ((tmp_path / "doc.pdf").read_bytes(),
                                                 "application/pdf")})
    try:
        url = f"{base}/docs/doc.pdf"
        assert expand_paths([url], (".pdf",)) == [url]  # nothing listed or read here
        out = str(tmp_path / "run")
        assert main(["pdf", url, "--out", out, "--ocr", "none", "--no-charts",
                     "--no-label"]) == 0
    finally:
        server.shutdown()
    assert audit_run(out).ok
    rows = RunDir(out).manifest().to_pylist()
    assert rows and all(r["locator"].startswith("sha256:") for r in rows)
