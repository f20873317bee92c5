"""Global de-duplication on real pipeline runs: the same PDF in two runs, a figure shared by
two documents, a page with one word changed, and pages crawled twice each end up once in
what readers see; distinct pages stay. The dedup pipeline runs on DirectRunner and on
Beam's Dask runner against a real dask.distributed cluster, and gives the same list."""

from __future__ import annotations

import os
import random

import pymupdf
import pytest

from pipelines.cli import main as vlforge
from pipelines.core.run_dir import RunDir
from pipelines.core.signatures import minhash_similarity, text_minhash
from pipelines.dedup.config import DedupConfig
from pipelines.dedup.pipeline import (
    MatchBucketFn,
    bucket_key,
    match_exact,
    row_buckets,
    run_dedup,
    shared_ids,
)
from tests.pipelines.pdf_fixtures import photo_png
from tests.servers import dask_cluster, seaweedfs  # noqa: F401  (fixtures)

LEAN = ["--ocr", "none", "--no-charts", "--no-label", "--task-size", "1"]
WORDS = ["river", "mountain", "ledger", "quartz", "violet", "harbor", "copper", "lantern", "meadow", "falcon", "cedar", "orbit", "glacier", "saddle", "timber", "velvet", "canyon", "ember", "prairie", "summit", "beacon", "willow", "garnet", "tundra", "ripple", "marble", "thistle", "coral", "ember", "bramble"]


def paragraph(seed: int, words: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def write_pdf(path: str, pages: list[str], figure_on: int | None = None) -> None:
    doc = pymupdf.open()
    for number, text in enumerate(pages):
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 540, 420), text, fontsize=11)
        if number == figure_on:
            page.insert_image(pymupdf.Rect(150, 450, 450, 675), stream=photo_png(seed=7))
    doc.save(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run 1: report.pdf (3 pages, a photo on page 2) and notes.pdf (page 1 = report page 1
    with one word changed, page 2 with the same photo). Run 2: a byte copy of report.pdf
    under another name. Both with the real pdf pipeline."""
    root = tmp_path_factory.mktemp("dedup")
    pages = [paragraph(1), paragraph(2), paragraph(3)]
    changed = pages[0].split(" ")
    changed[10] = "zeppelin"
    write_pdf(str(root / "report.pdf"), pages, figure_on=1)
    write_pdf(str(root / "notes.pdf"), [" ".join(changed), paragraph(4)], figure_on=1)
    (root / "copy").mkdir()
    (root / "copy" / "report-again.pdf").write_bytes((root / "report.pdf").read_bytes())
    first, second = str(root / "run1"), str(root / "run2")
    assert vlforge(["pdf", str(root / "report.pdf"), str(root / "notes.pdf"),
                    "--out", first, *LEAN]) == 0
    assert vlforge(["pdf", str(root / "copy"), "--out", second, *LEAN]) == 0
    return first, second, str(root)


def manifest_rows(url: str) -> list[dict]:
    return RunDir(url).manifest().to_pylist()


def test_planted_duplicates_are_removed_and_distinct_pages_kept(runs):
    first, second, root = runs
    out = os.path.join(root, "dedup-direct")
    summary = run_dedup([first, second], out)
    removed = {(r["run"], r["key"]): r for part in (first, second)
               for r in RunDir(part).read_side_table("dedup_removed.parquet")}
    rows1, rows2 = manifest_rows(first), manifest_rows(second)

    # every sample of the copied PDF duplicates run 1's: same source (its sha256 locator)
    assert rows2 and all((second, r["key"]) in removed for r in rows2)
    assert {removed[(second, r["key"])]["reason"] for r in rows2} == {"same_source"}
    assert all(removed[(second, r["key"])]["kept_run"] == first for r in rows2)

    # the photo shared by two documents is kept once
    figures = [r for r in rows1 if "figure=" in r["locator"]]
    assert len(figures) == 2, [r["locator"] for r in rows1]
    figure_removals = [removed[(first, r["key"])] for r in figures if (first, r["key"]) in removed]
    assert len(figure_removals) == 1 and figure_removals[0]["reason"] in ("same_image",
                                                                          "near_image")

    # the page with one word changed is a near duplicate of report page 1; others stay
    pages = [r for r in rows1 if not r["derived_from"]]
    near = [removed[(first, r["key"])] for r in pages if (first, r["key"]) in removed]
    assert [n["reason"] for n in near] == ["near_text"], near
    assert near[0]["similarity"] >= 0.8
    assert len(pages) - len(near) == 4  # report 1-3 and notes page 2 stay distinct

    # an interleaved document's first image is its figure's: it is no copy of the figure,
    # nor of the other document's interleaved page that holds the same picture
    interleaved = [r for r in rows1 if "interleaved=" in r["locator"]]
    assert len(interleaved) == 2 and not any((first, r["key"]) in removed for r in interleaved)

    assert summary["removed"] == len(removed)
    assert summary["removed_by_reason"]["same_source"] == len(rows2)

    # readers skip what was removed; the shards keep every byte
    kept2 = list(RunDir(second).iter_samples(payloads=False))
    assert kept2 == []
    assert len(list(RunDir(second).iter_samples(payloads=False, deduplicated=False))) == len(rows2)

    # deterministic: a second dedup gives the same list
    again = run_dedup([first, second], os.path.join(root, "dedup-again"))
    assert again["removed_by_run"] == summary["removed_by_run"]
    assert RunDir(out).complete


@pytest.mark.slow
def test_dask_runner_gives_the_same_removal_list(runs, dask_cluster):  # noqa: F811
    first, second, root = runs
    direct = run_dedup([first, second], os.path.join(root, "dedup-d1"))
    expected = sorted((r["run"], r["key"], r["kept_key"], r["reason"])
                      for run in (first, second)
                      for r in RunDir(run).read_side_table("dedup_removed.parquet"))
    on_dask = run_dedup([first, second], os.path.join(root, "dedup-dask"),
                        beam_args=["--runner=DaskRunner", f"--dask_client_address={dask_cluster}"])
    got = sorted((r["run"], r["key"], r["kept_key"], r["reason"])
                 for run in (first, second)
                 for r in RunDir(run).read_side_table("dedup_removed.parquet"))
    assert got == expected and on_dask["removed"] == direct["removed"]


def test_one_changed_word_is_near_and_different_texts_are_not():
    base = paragraph(11, 200)
    words = base.split(" ")
    words[50] = "zeppelin"
    near = " ".join(words)
    assert minhash_similarity(text_minhash(base), text_minhash(near)) >= 0.8
    for seed in range(12, 40):
        assert minhash_similarity(text_minhash(base), text_minhash(paragraph(seed, 200))) < 0.5


def test_minhash_signatures_are_stable_across_installs():
    # Runs written months apart are de-duplicated against each other, so a signature
    # must not change with the library's defaults (datasketch 2.0 changed its scheme).
    packed = text_minhash("the quick brown fox jumps over the lazy dog again and again")
    assert packed[:16].hex() == "51cac707b4140f0514ec842b4f221824"
    assert len(packed) == 4 * 64


def test_an_oversized_bucket_costs_bounded_comparisons():
    config = DedupConfig(max_bucket=5)
    fn = MatchBucketFn(config)
    signature = text_minhash(paragraph(1))
    members = [(0, f"k{i:03d}", "pdf", signature, "", "") for i in range(50)]
    matches = list(fn.process((bucket_key("near_text", "pdf|0:x"), members)))
    assert len(matches) == 49  # every later member is matched, each within the cap
    assert all(m[1][2] in {f"k{i:03d}" for i in range(50)} for m in matches)


def test_settings_problems_are_listed_together():
    with pytest.raises(ValueError) as error:
        DedupConfig(text_threshold=2.0, text_bands=7, image_distance=40).validate()
    message = str(error.value)
    assert "text_threshold" in message and "text_bands" in message and "image_distance" in message


def test_a_conversation_about_a_page_is_no_copy_of_the_page():
    """SFT samples reuse their source page's image (and often its text): content buckets are
    per source, so they never meet the page they were made from."""
    text = paragraph(5)
    page = {"key": "p", "source": "pdf", "text_chars": len(text), "image_sha256": "ab" * 32,
            "text_hash": "1" * 16, "text_minhash": text_minhash(text), "image_phash": "f" * 16}
    conversation = dict(page, key="c", source="sft")
    config = DedupConfig()
    page_buckets = set(row_buckets(page, config))
    conversation_buckets = set(row_buckets(conversation, config))
    assert not page_buckets & conversation_buckets


@pytest.mark.browser
@pytest.mark.slow
def test_pages_crawled_in_two_runs_are_trained_on_once(tmp_path):
    """The same local site crawled on two days: day two's pages are the same sources
    (canonical URLs), so dedup removes them and readers of day two see nothing twice."""
    from pipelines.web.testsite import serve_site

    server, base = serve_site()
    try:
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{base}/articles/1\n{base}/articles/2\n{base}/table\n")
        flags = ["--allow-address", "127.0.0.1", "--host-delay", "0", "--ocr", "none",
                 "--no-charts", "--no-label"]
        day1, day2 = str(tmp_path / "day1"), str(tmp_path / "day2")
        assert vlforge(["crawl", str(urls), "--out", day1, *flags]) == 0
        assert vlforge(["crawl", str(urls), "--out", day2, *flags]) == 0
    finally:
        server.shutdown()
    pages2 = [r for r in manifest_rows(day2) if not r["derived_from"]]
    assert len(pages2) == 3
    summary = run_dedup([day1, day2], str(tmp_path / "dedup"))
    removed = {r["key"]: r for r in RunDir(day2).read_side_table("dedup_removed.parquet")}
    assert {r["key"] for r in pages2} <= set(removed)
    assert {removed[r["key"]]["reason"] for r in pages2} == {"same_source"}
    assert RunDir(day1).read_side_table("dedup_removed.parquet") == []
    seen = [s.key for s in RunDir(day2).iter_samples(payloads=False)]
    assert not set(seen) & {r["key"] for r in pages2}
    assert summary["removed_by_run"][day2] >= 3


def test_near_blank_pages_with_different_words_are_not_near_images():
    """Seen on the shared corpus: two mostly white pages ("Hello ASCII", "Underline Lorem
    ipsum") have perceptual hashes a few bits apart. Their texts differ, so they stay."""
    fn = MatchBucketFn(DedupConfig())
    blank = "8000000000000000"
    hello = (0, "a", "pdf", b"", blank, "1111111111111111")
    lorem = (0, "b", "pdf", b"", "8000000000000001", "2222222222222222")
    bucket = bucket_key("near_image", "pdf|0:x")
    assert list(fn.process((bucket, [hello, lorem]))) == []
    same_words = (0, "c", "pdf", b"", "8000000000000001", "1111111111111111")
    matches = list(fn.process((bucket, [hello, same_words])))
    assert [m[0][1] for m in matches] == ["c"]


def test_an_exact_bucket_keeps_its_earliest_member_without_sorting_it():
    """Exact buckets are scanned twice (earliest, then the rest), never materialised: a
    bucket of many copies removes all but the earliest (run position, key)."""
    entries = [(1, "b", "web"), (0, "z", "web"), (0, "c", "web"), (2, "a", "web"),
               (0, "c", "web")]  # the same sample seen twice is never its own duplicate
    removed = dict(match_exact((bucket_key("same_text", "web|1"), entries)))
    assert set(removed) == {(1, "b"), (0, "z"), (2, "a")}
    assert {kept[1:3] for kept in removed.values()} == {(0, "c")}
    assert {kept[0] for kept in removed.values()} == {"same_text"}


def test_only_shared_near_buckets_go_on_to_the_signature_join():
    key = bucket_key("near_text", "web|3:abc")
    assert list(shared_ids((key, [7]))) == []
    assert list(shared_ids((key, [7, 7]))) == []  # one row twice is no pair
    assert sorted(shared_ids((key, [7, 9]))) == [(7, key), (9, key)]


def test_a_manifest_is_read_in_slices_that_cover_it_once(tmp_path, monkeypatch):
    """Workers read a manifest by row ranges; the ranges together give every row once,
    across row-group boundaries."""
    from pipelines.core import run_dir as run_dir_module
    from pipelines.dedup.pipeline import COLUMNS, manifest_slices, read_rows

    url = str(tmp_path / "run")
    run = RunDir(url)
    from pipelines.core.runner import input_ref

    refs = [input_ref("bench", f"u{n}") for n in range(23)]
    tasks = run.plan("bench", refs, {}, task_size=23, overwrite=True)
    rows = [{"key": f"k{n:03d}", "shard": "s.tar", "source": "web", "locator": f"u{n}",
             "input_id": refs[n]["input_id"], "item_id": refs[n]["input_id"],
             "task": tasks[0].task_id} for n in range(23)]
    full = {f: None for f in run_dir_module.MANIFEST_SCHEMA.names}
    monkeypatch.setattr(run_dir_module, "ROW_GROUP_ROWS", 5)  # several row groups
    run.write_task(tasks[0].task_id, [], [{**full, **r, "text_chars": 0, "bytes": 0,
                                           "image_bytes": 0, "num_images": 0}
                                          for r in rows], [])
    run.finalize()
    import pyarrow.parquet as pq

    assert pq.ParquetFile(os.path.join(url, run_dir_module.MANIFEST)).num_row_groups == 5
    slices = manifest_slices([url], rows=7)
    assert slices == [(0, 0, 7), (0, 7, 14), (0, 14, 21), (0, 21, 23)]
    read = [(row_id, row["key"]) for piece in slices for row_id, row in read_rows(piece, [url])]
    assert [key for _, key in read] == [r["key"] for r in run.manifest().to_pylist()]
    assert [row_id for row_id, _ in read] == list(range(23))
    assert set(COLUMNS) <= set(next(read_rows(slices[0], [url]))[1])


def test_a_side_table_is_written_from_a_stream_of_rows(tmp_path, monkeypatch):
    """A run's removals are streamed into its side table a row group at a time (a list of
    millions is never built); no rows still make a readable, empty table."""
    import pyarrow.parquet as pq

    from pipelines.core import run_dir as run_dir_module
    from pipelines.dedup.pipeline import REMOVAL_SCHEMA

    monkeypatch.setattr(run_dir_module, "ROW_GROUP_ROWS", 3)
    run = RunDir(str(tmp_path / "run"))
    rows = [{"run": "r", "key": f"k{n}", "source": "web", "kept_run": "r", "kept_key": "k",
             "reason": "same_text", "similarity": 1.0} for n in range(7)]
    run.write_side_table_rows(iter(rows), REMOVAL_SCHEMA, "dedup_removed.parquet")
    assert run.read_side_table("dedup_removed.parquet") == rows
    assert pq.ParquetFile(str(tmp_path / "run" / "dedup_removed.parquet")).num_row_groups == 3
    run.write_side_table_rows(iter([]), REMOVAL_SCHEMA, "empty.parquet")
    assert run.read_side_table("empty.parquet") == []
