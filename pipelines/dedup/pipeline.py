"""Global de-duplication: manifests of finished runs → a removal list, by keyed shuffles.

Reads only manifests (the content signatures every sample's row carries:
`pipelines.core.signatures`), never shards. Each row is put into buckets:

  exact   ``same_source`` (same source + locator: the same URL crawled twice, the same
          PDF file given twice — its locator is its sha256 — or rendered by two workers),
          ``same_image`` (image sha256), ``same_text`` (normalised text hash);
  near    ``near_text`` (MinHash LSH bands over word shingles, confirmed by the estimated
          Jaccard similarity), ``near_image`` (perceptual-hash chunks, confirmed by the
          Hamming distance);

content buckets are per sample source (pdf, web, images, sft...: an SFT conversation
about a page shares its image and is no copy of it). Buckets are formed with GroupByKey, so
no process ever holds a set of all samples and the pipeline runs on any Beam runner and
over any number of runs. In a bucket, members are
ordered by (run position on the command line, key): a member duplicating an earlier one
is removed in its favour, so the earliest run's, then the smallest key's, copy is kept and
two runs of dedup give the same list. A removed sample keeps its bytes in its shard; each
run gets a side table of its removed keys (`RunDir.DEDUP_REMOVED`) that every reader
honours (`RunDir.iter_samples`, the trainer's streams), and the output directory holds the
whole list (``removals-NNNNN.parquet``, one part per run) and ``dedup.json`` (settings,
runs, counts per reason and source), then ``_SUCCESS``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Iterable, Iterator, Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from pipelines.core.run_dir import DEDUP_REMOVED, RunDir
from pipelines.core.signatures import (minhash_bands, minhash_similarity, phash_chunks,
                                       phash_distance)
from pipelines.dedup.config import DedupConfig

log = logging.getLogger(__name__)

SUMMARY = "dedup.json"
EXACT_REASONS = ("same_source", "same_image", "same_text")
REASON_ORDER = {r: i for i, r in enumerate(EXACT_REASONS + ("near_text", "near_image"))}
COLUMNS = ("key", "source", "text_chars", "image_sha256", "text_hash", "text_minhash",
           "image_phash")
REMOVAL_SCHEMA = pa.schema([
    ("run", pa.string()), ("key", pa.string()), ("source", pa.string()),
    ("kept_run", pa.string()), ("kept_key", pa.string()), ("reason", pa.string()),
    ("similarity", pa.float64()),
])

# A member of a bucket: (run position, key, source, minhash signature, phash, text hash);
# tuples keep the shuffle cheap to encode.
Member = tuple[int, str, str, bytes, str, str]


def read_rows(indexed_run: tuple[int, str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every manifest row of one run, streamed (the run's position travels along)."""
    index, url = indexed_run
    for row in RunDir(url).require_complete().iter_manifest_rows(COLUMNS):
        yield index, row


def buckets(item: tuple[int, dict[str, Any]], config: DedupConfig
            ) -> Iterator[tuple[tuple[str, str], Member]]:
    """The buckets one sample belongs to: one per exact identity, band and hash chunk."""
    index, row = item
    source = row["source"] or ""
    member: Member = (index, row["key"], source, row["text_minhash"] or b"",
                      row["image_phash"] or "", row["text_hash"] or "")
    yield ("same_source", row["key"]), member
    # Content buckets are per source: an SFT conversation about a page shares the page's
    # image (and often its text) and is a different sample, not a copy of it.
    if row["image_sha256"]:
        yield ("same_image", f"{source}|{row['image_sha256']}"), member
    if (row["text_chars"] or 0) >= config.min_text_chars:
        if row["text_hash"]:
            yield ("same_text", f"{source}|{row['text_hash']}"), member
        for band, value in enumerate(minhash_bands(member[3], config.text_bands)):
            yield ("near_text", f"{source}|{band}:{value}"), member
    else:
        # Perceptual hashes see layout, not words: two text pages set alike hash alike.
        # Only samples whose text says little (photos, figures, scans) are compared by it.
        for chunk, value in enumerate(phash_chunks(member[4], config.image_distance + 1)):
            yield ("near_image", f"{source}|{chunk}:{value}"), member


class MatchBucketFn(beam.DoFn):
    """Within one bucket, each member that duplicates an earlier member → one match."""

    def __init__(self, config: DedupConfig):
        self.config = config
        self.capped = Metrics.counter("dedup", "bucket_comparisons_capped")

    def process(self, item: tuple[tuple[str, str], Iterable[Member]]
                ) -> Iterator[tuple[tuple[int, str], tuple]]:
        (reason, _), members = item
        ordered = sorted(set(members), key=lambda m: (m[0], m[1]))
        if len(ordered) < 2:
            return
        if reason in EXACT_REASONS:
            first = ordered[0]
            for member in ordered[1:]:
                yield (member[0], member[1]), (reason, first[0], first[1], 1.0, member[2])
            return
        limit = self.config.max_bucket
        for j in range(1, len(ordered)):
            member = ordered[j]
            if j > limit:
                self.capped.inc()
            for earlier in ordered[max(0, j - limit):j]:
                similarity = self._similarity(reason, earlier, member)
                if similarity is not None:
                    yield (member[0], member[1]), (reason, earlier[0], earlier[1], similarity,
                                                   member[2])
                    break

    def _similarity(self, reason: str, a: Member, b: Member) -> float | None:
        if reason == "near_text":
            similarity = minhash_similarity(a[3], b[3])
            return similarity if similarity >= self.config.text_threshold else None
        # Near-blank pages hash alike whatever their few words say: images are near
        # duplicates only when their (short) texts agree too, or both have none.
        if a[5] != b[5]:
            return None
        distance = phash_distance(a[4], b[4])
        return 1.0 - distance / 64 if distance <= self.config.image_distance else None


def pick_kept(item: tuple[tuple[int, str], Iterable[tuple]], runs: Sequence[str]
              ) -> tuple[int, dict[str, Any]]:
    """One removal per removed sample: the exact reason first, then the earliest kept."""
    (index, key), matches = item
    reason, kept_index, kept_key, similarity, source = min(
        matches, key=lambda m: (REASON_ORDER[m[0]], m[1], m[2], -m[3]))
    return index, {"run": runs[index], "key": key, "source": source,
                   "kept_run": runs[kept_index], "kept_key": kept_key, "reason": reason,
                   "similarity": round(float(similarity), 4)}


class WriteRemovals(beam.DoFn):
    """Per run: the side table in the run, a part of the list in the output directory."""

    def __init__(self, runs: Sequence[str], out: str):
        self.runs = list(runs)
        self.out = out

    def process(self, item: tuple[int, Iterable[dict[str, Any] | None]]
                ) -> Iterator[tuple[str, dict[str, Any]]]:
        index, rows = item
        removed = sorted((r for r in rows if r is not None), key=lambda r: r["key"])
        RunDir(self.runs[index]).write_side_table(removed, REMOVAL_SCHEMA, DEDUP_REMOVED)
        RunDir(self.out).write_side_table(removed, REMOVAL_SCHEMA, f"removals-{index:05d}.parquet")
        yield "summary", {
            "run": self.runs[index], "removed": len(removed),
            "by_reason": dict(Counter(r["reason"] for r in removed)),
            "by_source": dict(Counter(r["source"] for r in removed)),
        }


def write_summary(item: tuple[str, Iterable[dict[str, Any]]], runs: Sequence[str], out: str,
                  config: DedupConfig) -> dict[str, Any]:
    """dedup.json (settings, runs, counts per reason / source / run), then _SUCCESS."""
    _, parts = item
    parts = sorted(parts, key=lambda p: runs.index(p["run"]))
    by_reason: Counter = Counter()
    by_source: Counter = Counter()
    for part in parts:
        by_reason.update(part["by_reason"])
        by_source.update(part["by_source"])
    summary = {"runs": list(runs), "settings": config.to_dict(),
               "removed": sum(p["removed"] for p in parts),
               "removed_by_reason": dict(sorted(by_reason.items())),
               "removed_by_source": dict(sorted(by_source.items())),
               "removed_by_run": {p["run"]: p["removed"] for p in parts}}
    out_dir = RunDir(out)
    out_dir.write_json(summary, SUMMARY)
    out_dir.write_success()
    return summary


def build_dedup(p: beam.Pipeline, runs: Sequence[str], out: str, config: DedupConfig) -> None:
    """The de-duplication graph: rows → buckets → matches → one removal per sample →
    per-run writes → summary (each arrow a keyed shuffle or a ParDo)."""
    runs = list(runs)
    rows = (p | "Runs" >> beam.Create(list(enumerate(runs)))
            | "ReadManifests" >> beam.FlatMap(read_rows))
    removals = (rows
                | "Buckets" >> beam.FlatMap(buckets, config)
                | "GroupBuckets" >> beam.GroupByKey()
                | "MatchInBuckets" >> beam.ParDo(MatchBucketFn(config))
                | "GroupRemoved" >> beam.GroupByKey()
                | "PickKept" >> beam.Map(pick_kept, runs))
    every_run = p | "EveryRun" >> beam.Create([(i, None) for i in range(len(runs))])
    (((removals, every_run) | "WithEmptyRuns" >> beam.Flatten())
     | "GroupByRun" >> beam.GroupByKey()
     | "WriteRemovals" >> beam.ParDo(WriteRemovals(runs, out))
     | "GroupSummary" >> beam.GroupByKey()
     | "WriteSummary" >> beam.Map(write_summary, runs, out, config))


def run_dedup(runs: Sequence[str], out: str, config: DedupConfig | None = None,
              beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """De-duplicate finished `runs` into `out` on any Beam runner; returns dedup.json.

    The order of `runs` decides which copy is kept (earlier runs win). Re-running is safe:
    every run's side table and the output are rewritten, `_SUCCESS` comes last.
    """
    from pipelines.core.engines import beam_options

    config = (config or DedupConfig()).validate()
    runs = [url.rstrip("/") for url in runs]
    problems = [f"{url}: not a finished run (no _SUCCESS)" for url in runs
                if not RunDir(url).complete]
    if len(set(runs)) != len(runs):
        problems.append("a run is listed twice")
    if problems:
        raise ValueError("cannot de-duplicate:\n  - " + "\n  - ".join(problems))
    out_dir = RunDir(out)
    if out_dir.complete:
        out_dir.fs.rm(out_dir.path("_SUCCESS"))  # a killed re-run must not look finished
    log.info("de-duplicating %d run(s) into %s", len(runs), out)
    with beam.Pipeline(options=beam_options(beam_args, tasks=len(runs))) as p:
        build_dedup(p, runs, out, config)
    return out_dir.read_json(SUMMARY)
