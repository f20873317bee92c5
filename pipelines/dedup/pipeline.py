"""Global de-duplication: manifests of finished runs → a removal list, by keyed shuffles.

Reads only manifests (the content signatures every sample's row carries:
`pipelines.core.signatures`), never shards. Each row is put into buckets:

  exact   ``same_source`` (same source + locator: the same URL crawled twice, the same
          PDF file given twice — its locator is its sha256 — or rendered by two workers),
          ``same_text`` (normalised text hash), ``same_image`` (image sha256, for samples
          whose text says little: photos, figures, scans);
  near    ``near_text`` (MinHash LSH bands over word shingles, confirmed by the estimated
          Jaccard similarity), ``near_image`` (perceptual-hash chunks, confirmed by the
          Hamming distance and equal short texts);

content buckets are per sample source and kind (pdf, web, images, sft...; a page, a
figure, an interleaved document, a caption pair: an SFT conversation about a page shares
its image, an interleaved document its first figure's, and neither is a copy of it).

Buckets are formed with GroupByKey, so no process ever holds a set of all samples and the
pipeline runs on any Beam runner and over any number of runs; what is shuffled is kept
small, since a local runner holds every shuffle in memory:

  manifest slices (row ranges, read by workers) → rows
  → exact buckets: (17-byte bucket key, (run, key, source)) → the earliest member found in
    one pass over the group, every other member removed in a second pass (no list, no sort)
  → near buckets: (bucket key, row id int) → buckets with one row (nearly all) end here;
    the rest are joined with the rows' signatures by row id (each signature shuffled once,
    not once per band) and verified pairwise as before (`MatchBucketFn`).

In a bucket, members are ordered by (run position on the command line, key): a member
duplicating an earlier one is removed in its favour, so the earliest run's, then the
smallest key's, copy is kept and two runs of dedup give the same list. A removed sample
keeps its bytes in its shard; each run gets a side table of its removed keys
(`RunDir.DEDUP_REMOVED`, streamed) that every reader honours (`RunDir.iter_samples`, the
trainer's streams), and the output directory holds the whole list
(``removals-NNNNN.parquet``, one part per run) and ``dedup.json`` (settings, runs, counts
per reason and source), then ``_SUCCESS``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from pipelines.core.run_dir import DEDUP_REMOVED, RunDir
from pipelines.core.signatures import (
    minhash_bands,
    minhash_similarity,
    phash_chunks,
    phash_distance,
)
from pipelines.dedup.config import DedupConfig

log = logging.getLogger(__name__)

SUMMARY = "dedup.json"
REASONS = ("same_source", "same_image", "same_text", "near_text", "near_image")
EXACT_REASONS = REASONS[:3]
REASON_ORDER = {r: i for i, r in enumerate(REASONS)}
COLUMNS = ("key", "source", "locator", "derived_from", "text_chars", "image_sha256",
           "text_hash", "text_minhash", "image_phash")
REMOVAL_SCHEMA = pa.schema([
    ("run", pa.string()), ("key", pa.string()), ("source", pa.string()),
    ("kept_run", pa.string()), ("kept_key", pa.string()), ("reason", pa.string()),
    ("similarity", pa.float64()),
])
SLICE_ROWS = 16_384  # manifest rows one read element covers (a quarter of a row group)
ROW_BITS = 40        # a row id is (run position << ROW_BITS) | row number in its manifest

# A member of a near bucket, verified there: (run position, key, source, minhash
# signature, phash, text hash). Only near buckets with two or more row ids get these:
# the shuffles before carry a 17-byte bucket key and an int per band.
Member = tuple[int, str, str, bytes, str, str]
# A member of an exact bucket: (run position, key, source).
Entry = tuple[int, str, str]


def manifest_slices(runs: Sequence[str], rows: int = SLICE_ROWS
                    ) -> list[tuple[int, int, int]]:
    """(run position, first row, end row) ranges covering every run's manifest, so the
    reading spreads over workers and no element stands for a whole manifest."""
    slices = []
    for index, url in enumerate(runs):
        total = RunDir(url).manifest_num_rows()
        slices.extend((index, start, min(start + rows, total))
                      for start in range(0, total, rows))
    return slices


def read_rows(piece: tuple[int, int, int], runs: Sequence[str]
              ) -> Iterator[tuple[int, dict[str, Any]]]:
    """The manifest rows of one slice, streamed, each with its row id."""
    index, start, stop = piece
    rows = RunDir(runs[index]).require_complete().iter_manifest_rows(COLUMNS, start=start,
                                                                     stop=stop)
    for number, row in enumerate(rows, start):
        yield (index << ROW_BITS) | number, row


def bucket_key(reason: str, bucket: str) -> bytes:
    """A bucket's shuffle key: the reason's code, then 16 bytes of hash (collisions are
    out of reach: 2**-128 per pair)."""
    digest = hashlib.blake2b(bucket.encode("utf-8"), digest_size=16).digest()
    return bytes((REASON_ORDER[reason],)) + digest


def bucket_reason(key: bytes) -> str:
    return REASONS[key[0]]


def row_buckets(row: dict[str, Any], config: DedupConfig) -> Iterator[tuple[str, str]]:
    """The (reason, bucket) pairs one sample belongs to: one per exact identity, band and
    hash chunk."""
    yield from exact_buckets(row, config)
    yield from near_buckets(row, config)


def sample_kind(row: dict[str, Any]) -> str:
    """What a derived sample is, from the tag its parent appended to the locator
    (``...#page=1&figure=0`` → "figure", ``&interleaved=0``, a caption pair's tag...);
    "" for a sample made from an input itself (a page, a URL: its own query is no tag)."""
    if not row.get("derived_from"):
        return ""
    tail = (row.get("locator") or "").rsplit("&", 1)[-1].rsplit("#", 1)[-1]
    return tail.split("=", 1)[0]


def content_group(row: dict[str, Any]) -> str:
    """The scope content buckets are drawn in: the sample's source and kind. An SFT
    conversation about a page shares the page's image (and often its text), an
    interleaved document its first figure's image: different samples, not copies."""
    source, kind = row["source"] or "", sample_kind(row)
    return f"{source}/{kind}" if kind else source


def exact_buckets(row: dict[str, Any], config: DedupConfig) -> Iterator[tuple[str, str]]:
    """The sample's exact identities: its key, image checksum and normalised text hash."""
    group = content_group(row)
    yield "same_source", row["key"]
    if (row["text_chars"] or 0) >= config.min_text_chars:
        if row["text_hash"]:
            yield "same_text", f"{group}|{row['text_hash']}"
    elif row["image_sha256"]:
        # The image is the content only when the text says little (a photo, a figure, a
        # scan): two documents that share a picture but not their words are no copies.
        yield "same_image", f"{group}|{row['image_sha256']}"


def near_buckets(row: dict[str, Any], config: DedupConfig) -> Iterator[tuple[str, str]]:
    """The sample's MinHash bands (enough text) or perceptual-hash chunks (little text)."""
    group = content_group(row)
    if (row["text_chars"] or 0) >= config.min_text_chars:
        for band, value in enumerate(minhash_bands(row["text_minhash"] or b"",
                                                   config.text_bands)):
            yield "near_text", f"{group}|{band}:{value}"
    else:
        # Perceptual hashes see layout, not words: two text pages set alike hash alike.
        # Only samples whose text says little (photos, figures, scans) are compared by it.
        for chunk, value in enumerate(phash_chunks(row["image_phash"] or "",
                                                   config.image_distance + 1)):
            yield "near_image", f"{group}|{chunk}:{value}"


def exact_entries(item: tuple[int, dict[str, Any]], config: DedupConfig
                  ) -> Iterator[tuple[bytes, Entry]]:
    """A manifest row → (exact bucket, (run position, key, source)) per exact identity."""
    row_id, row = item
    entry: Entry = (row_id >> ROW_BITS, row["key"], row["source"] or "")
    for reason, bucket in exact_buckets(row, config):
        yield bucket_key(reason, bucket), entry


def near_ids(item: tuple[int, dict[str, Any]], config: DedupConfig
             ) -> Iterator[tuple[bytes, int]]:
    """A manifest row → (near bucket, row id) per band or hash chunk: the signature itself
    stays behind and joins only the buckets that turn out to be shared."""
    row_id, row = item
    for reason, bucket in near_buckets(row, config):
        yield bucket_key(reason, bucket), row_id


def near_signature(item: tuple[int, dict[str, Any]], config: DedupConfig
                   ) -> Iterator[tuple[int, Member]]:
    """A manifest row in any near bucket → (row id, member with its signatures)."""
    row_id, row = item
    if (row["text_chars"] or 0) >= config.min_text_chars:
        near = bool(row["text_minhash"])
    else:
        near = bool(row["image_phash"])
    if near:
        yield row_id, (row_id >> ROW_BITS, row["key"], row["source"] or "",
                       row["text_minhash"] or b"", row["image_phash"] or "",
                       row["text_hash"] or "")


def match_exact(item: tuple[bytes, Iterable[Entry]]
                ) -> Iterator[tuple[tuple[int, str], tuple]]:
    """In one exact bucket, every member but the earliest (run, key) is its duplicate.

    Two passes over the grouped values and nothing kept but the earliest: a bucket of a
    million copies costs no more memory than one of two (on runners that page groups)."""
    key, entries = item
    reason = bucket_reason(key)
    first = None
    for entry in entries:
        if first is None or entry[:2] < first[:2]:
            first = entry
    for entry in entries:
        if entry[:2] != first[:2]:
            yield (entry[0], entry[1]), (reason, first[0], first[1], 1.0, entry[2])


def shared_ids(item: tuple[bytes, Iterable[int]]) -> Iterator[tuple[int, bytes]]:
    """A near bucket holding two or more rows → (row id, bucket) for each; singleton
    buckets (nearly all of them) end here, before any signature is shuffled."""
    key, ids = item
    first = None
    for row_id in ids:
        if first is None:
            first = row_id
        elif row_id != first:
            break
    else:
        return
    for row_id in ids:
        yield row_id, key


def attach_signature(item: tuple[int, dict[str, list]]) -> Iterator[tuple[bytes, Member]]:
    """Row id joined with its signature → (near bucket, member) for each shared bucket."""
    _, joined = item
    for member in joined["signature"]:
        for key in joined["buckets"]:
            yield key, member


class MatchBucketFn(beam.DoFn):
    """Within one near bucket, each member that duplicates an earlier member → one match."""

    def __init__(self, config: DedupConfig):
        self.config = config
        self.capped = Metrics.counter("dedup", "bucket_comparisons_capped")

    def process(self, item: tuple[bytes, Iterable[Member]]
                ) -> Iterator[tuple[tuple[int, str], tuple]]:
        key, members = item
        reason = bucket_reason(key)
        ordered = sorted(set(members), key=lambda m: (m[0], m[1]))
        if len(ordered) < 2:
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
    """Per run: the side table in the run, a part of the list in the output directory.

    The run's removals are streamed into both files (never held as one list: a run can
    lose millions of samples), in the order the shuffle delivers them."""

    def __init__(self, runs: Sequence[str], out: str):
        self.runs = list(runs)
        self.out = out

    def process(self, item: tuple[int, Iterable[dict[str, Any] | None]]
                ) -> Iterator[tuple[str, dict[str, Any]]]:
        index, rows = item
        by_reason: Counter = Counter()
        by_source: Counter = Counter()

        def counted() -> Iterator[dict[str, Any]]:
            for row in rows:
                if row is not None:
                    by_reason[row["reason"]] += 1
                    by_source[row["source"]] += 1
                    yield row

        RunDir(self.runs[index]).write_side_table_rows(counted(), REMOVAL_SCHEMA,
                                                       DEDUP_REMOVED)
        RunDir(self.out).write_side_table_rows((r for r in rows if r is not None),
                                               REMOVAL_SCHEMA, f"removals-{index:05d}.parquet")
        yield "summary", {
            "run": self.runs[index], "removed": sum(by_reason.values()),
            "by_reason": dict(by_reason), "by_source": dict(by_source),
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


def build_dedup(p: beam.Pipeline, runs: Sequence[str], out: str, config: DedupConfig,
                slices: Sequence[tuple[int, int, int]] | None = None) -> None:
    """The de-duplication graph, each arrow a keyed shuffle or a ParDo:

    manifest slices → rows → exact buckets (run, key) → earliest wins → removals
                           → near buckets (row ids) → shared ones ⋈ signatures by row id
                             → near buckets (members) → verified matches → removals
    removals → one per removed sample → per-run writes → summary.
    """
    runs = list(runs)
    slices = manifest_slices(runs) if slices is None else list(slices)
    rows = (p | "Slices" >> beam.Create(slices)
            | "ReadManifests" >> beam.FlatMap(read_rows, runs))
    # Three plain FlatMaps, not one multi-output ParDo: Beam's Dask runner merges the
    # tagged outputs of a ParDo into one collection.
    exact = (rows
             | "ExactBuckets" >> beam.FlatMap(exact_entries, config)
             | "GroupExact" >> beam.GroupByKey()
             | "MatchExact" >> beam.FlatMap(match_exact))
    shared = (rows
              | "NearBuckets" >> beam.FlatMap(near_ids, config)
              | "GroupNearIds" >> beam.GroupByKey()
              | "SharedBuckets" >> beam.FlatMap(shared_ids))
    signatures = rows | "Signatures" >> beam.FlatMap(near_signature, config)
    near = ({"signature": signatures, "buckets": shared}
            | "JoinSignatures" >> beam.CoGroupByKey()
            | "AttachSignatures" >> beam.FlatMap(attach_signature)
            | "GroupNear" >> beam.GroupByKey()
            | "MatchNear" >> beam.ParDo(MatchBucketFn(config)))
    removals = ((exact, near) | "Matches" >> beam.Flatten()
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
    from pipelines.core.engines import beam_options, is_dask

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
    slices = manifest_slices(runs)
    beam_args = list(beam_args)
    if is_dask(beam_args) and not any(a.startswith(("--dask_npartitions",
                                                    "--dask_partition_size"))
                                      for a in beam_args):
        # Beam's Dask runner keeps the first Create's partitions through every shuffle and
        # holds a partition's outputs in a list: one partition per slice bounds that list.
        beam_args.append(f"--dask_npartitions={max(1, len(slices))}")
    log.info("de-duplicating %d run(s), %d manifest slice(s), into %s", len(runs),
             len(slices), out)
    with beam.Pipeline(options=beam_options(beam_args, tasks=max(1, len(slices)))) as p:
        build_dedup(p, runs, out, config, slices)
    return out_dir.read_json(SUMMARY)
