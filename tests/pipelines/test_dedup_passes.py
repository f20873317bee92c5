"""De-duplication in partitioned passes: the bucket keys split into P partitions, one
pipeline per partition, the passes' candidates merged. The removal list must not depend on
P: planted exact and near duplicates across three runs, with chains (a copy of a copy, a
near copy of a near copy) and samples matched by several buckets at once, give the same
list in one pass and in three."""

from __future__ import annotations

import hashlib
import random

import pytest

from pipelines.cli import main as vlforge
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.signatures import text_hash, text_minhash
from pipelines.dedup.pipeline import (
    CANDIDATE_SCHEMA,
    CANDIDATES,
    bucket_key,
    merged_removals,
    partition_of,
    partitions_for,
    run_dedup,
)

WORDS = ["river", "mountain", "ledger", "quartz", "violet", "harbor", "copper", "lantern",
         "meadow", "falcon", "cedar", "orbit", "glacier", "saddle", "timber", "velvet",
         "canyon", "ember", "prairie", "summit", "beacon", "willow", "garnet", "tundra"]


def paragraph(seed: int, words: int = 200) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def changed(text: str, *positions: int) -> str:
    words = text.split(" ")
    for position in positions:
        words[position] = "zeppelin"
    return " ".join(words)


def text_row(key: str, text: str, locator: str | None = None) -> dict:
    return {"key": key, "locator": locator or f"https://site/{key}", "text": text}


def photo_row(key: str, phash: int) -> dict:
    return {"key": key, "locator": f"https://site/{key}.png", "text": "", "phash": phash}


def write_run(url: str, rows: list[dict]) -> None:
    """A finished run of manifest rows only (dedup reads nothing else)."""
    run = RunDir(url)
    refs = [input_ref("test", r["locator"] + "#" + r["key"]) for r in rows]
    tasks = run.plan("test", refs, {}, task_size=len(refs), overwrite=True)
    manifest = []
    for ref, r in zip(refs, rows):
        text = r["text"]
        manifest.append({
            "key": r["key"], "shard": "test-000000.tar", "source": "web",
            "locator": r["locator"], "input_id": ref["input_id"], "item_id": ref["input_id"],
            "parent_item": "", "derived_from": "", "task": tasks[0].task_id,
            "image_sha256": hashlib.sha256(r["key"].encode()).hexdigest(), "image_bytes": 10,
            "num_images": 1, "text_chars": len(text), "bytes": 20, "taxonomy_leaf": "",
            "taxonomy_version": "", "taxonomy_confidence": 0.0, "document": r["key"],
            "split": "", "text_hash": text_hash(text) if text else "",
            "text_minhash": text_minhash(text) if text else b"",
            "image_phash": f"{r.get('phash', random.Random(r['key']).getrandbits(64)):016x}"})
    run.write_task(tasks[0].task_id, [], manifest, [])
    run.finalize()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Three runs with planted duplicates; returns their urls and the expected removals
    {(run index, key): reason}."""
    root = tmp_path_factory.mktemp("passes")
    t = {seed: paragraph(seed) for seed in range(40)}
    photo = 0x8F3C_51A2_77E0_19B4
    runs = [
        [text_row("a", t[0]), text_row("b", t[1]), text_row("d", t[3]),
         photo_row("p1", photo), text_row("k", t[5]), text_row("l", t[5]),  # same text
         *[text_row(f"x{n}", t[10 + n]) for n in range(10)]],
        [text_row("a", t[0]),                        # the same URL crawled again
         text_row("e", changed(t[0], 20)),           # one word changed
         text_row("f", t[1]),                        # the same text elsewhere
         photo_row("p2", photo ^ 0b101),             # the photo, 2 bits off
         *[text_row(f"y{n}", t[20 + n]) for n in range(10)]],
        [text_row("a", t[0]),                        # a third time: a chain of copies
         text_row("g", changed(t[0], 20, 120)),      # a near copy of the near copy
         text_row("h", t[1]),                        # same text as run 0's and run 1's
         text_row("i", changed(t[3], 7, 150)),
         text_row("e", changed(t[0], 20)),           # same source AND same text as run 1's e
         photo_row("p3", photo ^ 0b1101),            # near p1 (3 bits) and p2 (1 bit)
         *[text_row(f"z{n}", t[30 + n]) for n in range(10)]],
    ]
    urls = [str(root / f"run{index}") for index in range(len(runs))]
    for url, rows in zip(urls, runs):
        write_run(url, rows)
    expected = {(1, "a"): "same_source", (2, "a"): "same_source", (1, "e"): "near_text",
                (1, "f"): "same_text", (1, "p2"): "near_image", (2, "g"): "near_text",
                (2, "h"): "same_text", (2, "i"): "near_text", (2, "e"): "same_source",
                (0, "l"): "same_text", (2, "p3"): "near_image"}
    return urls, expected, root


def removal_list(urls: list[str]) -> list[dict]:
    return sorted((r for url in urls for r in RunDir(url).read_side_table(
        "dedup_removed.parquet")), key=lambda r: (r["run"], r["key"]))


def test_three_passes_give_the_one_pass_list(planted):
    urls, expected, root = planted
    one = run_dedup(urls, str(root / "one"), partitions=1)
    single = removal_list(urls)
    assert vlforge(["dedup", *urls, "--out", str(root / "three"), "--partitions", "3"]) == 0
    three = RunDir(str(root / "three")).read_json("dedup.json")
    assert removal_list(urls) == single
    assert {k: v for k, v in three.items() if k != "partitions"} == \
        {k: v for k, v in one.items() if k != "partitions"}
    assert (one["partitions"], three["partitions"]) == (1, 3)

    # the list is the planted one, and chains point at the earliest copy
    got = {(urls.index(r["run"]), r["key"]): r for r in single}
    assert {key: r["reason"] for key, r in got.items()} == expected
    assert all(got[(i, "a")]["kept_run"] == urls[0] for i in (1, 2))
    assert got[(2, "h")]["kept_run"] == urls[0] and got[(2, "h")]["kept_key"] == "b"
    assert got[(2, "e")]["kept_run"] == urls[1]  # same source beats near text of run 0's a
    assert got[(2, "p3")]["kept_key"] == "p1"    # the earliest kept, not the closest
    assert got[(0, "l")]["kept_key"] == "k"
    # the per-run copy in the output directory is the run's side table
    assert RunDir(str(root / "three")).read_side_table("removals-00002.parquet") == \
        [r for r in single if r["run"] == urls[2]]
    assert not RunDir(str(root / "three")).side_files("candidates-*")  # parts cleaned up
    assert not RunDir(str(root / "three")).side_files("buckets-*")  # spills too


def test_a_sample_matched_in_several_passes_keeps_its_best_match(planted):
    """The passes' parts disagree about a sample (a pass sees only some of its buckets):
    the merge keeps the exact reason first, then the earliest kept sample."""
    urls, _, root = planted
    out = RunDir(str(root / "merge"))

    def candidate(index, key, reason, kept_index, kept_key, similarity=1.0):
        return {"run_index": index, "key": key, "source": "web", "reason": reason,
                "kept_index": kept_index, "kept_key": kept_key, "similarity": similarity}

    parts = [
        [candidate(1, "m", "near_text", 0, "a", 0.9), candidate(2, "q", "near_text", 1, "c", 0.95)],
        [candidate(1, "m", "same_text", 0, "z"), candidate(2, "q", "near_text", 0, "c", 0.85)],
        [candidate(1, "n", "near_image", 0, "p", 0.97)],
    ]
    for partition, rows in enumerate(parts):
        out.write_side_table_rows(iter(rows), CANDIDATE_SCHEMA, CANDIDATES.format(partition))
    merged = list(merged_removals(urls, out.url, len(parts)))
    assert [(r["key"], r["reason"], r["kept_run"], r["kept_key"]) for r in merged] == [
        ("m", "same_text", urls[0], "z"), ("n", "near_image", urls[0], "p"),
        ("q", "near_text", urls[0], "c")]


def test_bucket_keys_spread_over_the_partitions_stably():
    keys = [bucket_key("near_text", f"web|{band}:{value}") for band in range(16)
            for value in range(50)]
    counts = [sum(partition_of(k, 4) == p for k in keys) for p in range(4)]
    assert min(counts) > 150  # 800 keys: about 200 each
    assert [partition_of(k, 4) for k in keys] == [partition_of(k, 4) for k in keys]
    assert partition_of(bucket_key("same_text", "web|1"), 7) == \
        int.from_bytes(bucket_key("same_text", "web|1")[1:9], "big") % 7
    assert [partitions_for(n) for n in (0, 10, 149_999, 300_000, 1_000_000)] == [1, 1, 1, 3, 10]
