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

  manifest slices (row ranges, read by workers) → rows → bucket memberships (spilled)
  → exact buckets: (17-byte bucket key, (run, key, source)) → the earliest member found in
    one pass over the group, every other member removed in a second pass (no list, no sort)
  → near buckets: (bucket key, row id int) → buckets with one row (nearly all) end here;
    the rows of the rest get their signatures from a second read of the slices (the shared
    row ids are a side input: a few per cent of the rows, not a join that would shuffle
    a signature per row) and are verified pairwise (`MatchBucketFn`).

Partitioned passes: the local runners (DirectRunner, its multi-process mode, Beam's Dask
runner) hold a whole shuffle in memory, so one pipeline over N rows peaks in proportion to
N. The bucket keys are therefore split by a stable hash (bytes of their blake2b digest)
into P partitions (`partitions_for`: about one per 100k manifest rows), and the shuffles
run as P pipelines, one after the other, each seeing only its partition's buckets: about
N / P rows' worth, whatever N is. A pre-pass reads the manifests once and writes each
slice's bucket memberships (``buckets-NNNNN.parquet``, a row group per partition), so
pass p reads only its row groups; the signatures of its shared near buckets come from a
second read of the manifests (rows outside them are skipped, slices without any are not
read). A bucket lies wholly in one partition, so it is matched exactly as in one
pipeline; a pass writes its candidates (the best per removed sample), sorted by (run,
key), to ``candidates-NNNNN.parquet``, and a final step streams the P sorted parts
through a k-way merge, keeping per removed sample the best candidate over all passes by
the same total order (`candidate_order`). The best of the bests is the best, so the list
does not depend on P. Spills and parts are deleted once the list is written.

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
import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from pipelines.core.run_dir import DEDUP_REMOVED, RunDir
from pipelines.core.sample import derived_kind
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
CANDIDATE_SCHEMA = pa.schema([
    ("run_index", pa.int32()), ("key", pa.string()), ("source", pa.string()),
    ("reason", pa.string()), ("kept_index", pa.int32()), ("kept_key", pa.string()),
    ("similarity", pa.float64()),
])
CANDIDATES = "candidates-{:05d}.parquet"
SPILL = "buckets-{:05d}.parquet"  # one slice's bucket memberships, a row group per pass
SPILL_SCHEMA = pa.schema([
    ("partition", pa.int32()), ("bucket", pa.binary()), ("row_id", pa.int64()),
    ("key", pa.string()), ("source", pa.string()),
])
EXACT_TAG, NEAR_TAG = 0, 1
ROWS_PER_PARTITION = 100_000  # manifest rows per pass: each shuffle about this size
MERGE_BATCH_ROWS = 4_096     # rows of each sorted part the final merge holds at a time
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
    """What a derived sample is ("figure", "interleaved", "caption", "tile"...), "" for a
    sample made from an input itself (`pipelines.core.sample.derived_kind`)."""
    return derived_kind(row.get("locator") or "", row.get("derived_from"))


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


def partition_of(key: bytes, partitions: int) -> int:
    """The pass a bucket key belongs to: stable across processes and runs (bytes of its
    blake2b digest, not Python's salted hash)."""
    return int.from_bytes(key[1:9], "big") % partitions


def partitions_for(rows: int) -> int:
    """Passes for `rows` manifest rows when none are asked for: about one per
    `ROWS_PER_PARTITION` rows, at least one."""
    return max(1, round(rows / ROWS_PER_PARTITION))


def spill_slice(item: tuple[int, tuple[int, int, int]], runs: Sequence[str],
                config: DedupConfig, partitions: int, out: str) -> Iterator[int]:
    """One manifest slice → its bucket memberships, computed once for every pass, in
    ``buckets-<slice>.parquet``: one row group per partition (so a pass reads only its
    own), each row a (bucket key, row id) and, for an exact bucket, the member's key and
    source. Holds one slice's memberships (bounded by `SLICE_ROWS`); yields their count."""
    number, piece = item
    parts: list[int] = []
    buckets: list[bytes] = []
    ids: list[int] = []
    keys: list[str | None] = []
    sources: list[str | None] = []
    for row_id, row in read_rows(piece, runs):
        source = row["source"] or ""
        for reason, bucket in exact_buckets(row, config):
            key = bucket_key(reason, bucket)
            parts.append(partition_of(key, partitions))
            buckets.append(key)
            ids.append(row_id)
            keys.append(row["key"])
            sources.append(source)
        for reason, bucket in near_buckets(row, config):
            key = bucket_key(reason, bucket)
            parts.append(partition_of(key, partitions))
            buckets.append(key)
            ids.append(row_id)
            keys.append(None)  # a near member's key and signatures join later, if shared
            sources.append(None)
    table = pa.table([parts, buckets, ids, keys, sources], schema=SPILL_SCHEMA)
    table = table.take(pc.sort_indices(table, [("partition", "ascending")]))
    out_dir = RunDir(out)
    with out_dir.fs.open(out_dir.path(SPILL.format(number)), "wb") as handle, \
            pq.ParquetWriter(handle, SPILL_SCHEMA) as writer:
        for partition in range(partitions):
            group = table.filter(pc.equal(table["partition"], partition))
            if group.num_rows:
                writer.write_table(group, row_group_size=group.num_rows)
    yield table.num_rows


def partition_buckets(number: int, out: str, partition: int
                      ) -> Iterator[tuple[bytes, Entry | int]]:
    """One slice's memberships in `partition` (its row group only, found by the
    partition column's statistics): (exact bucket, (run position, key, source)) or
    (near bucket, row id)."""
    out_dir = RunDir(out)
    with out_dir.fs.open(out_dir.path(SPILL.format(number)), "rb") as handle:
        spill = pq.ParquetFile(handle, pre_buffer=False)
        for group in range(spill.num_row_groups):
            stats = spill.metadata.row_group(group).column(0).statistics
            if stats is None or stats.min != partition:
                continue
            for row in spill.read_row_group(group, use_threads=False).to_pylist():
                if row["key"] is None:
                    yield row["bucket"], row["row_id"]
                else:
                    yield row["bucket"], (row["row_id"] >> ROW_BITS, row["key"], row["source"])


def match_bucket(item: tuple[bytes, Iterable]) -> Iterator[tuple[int, tuple]]:
    """An exact bucket → its matches (`match_exact`); a near bucket → (row id, bucket)
    per member if it is shared (`shared_ids`). One shuffle serves both: the bucket key
    says which it is."""
    if bucket_reason(item[0]) in EXACT_REASONS:
        for removed, match in match_exact(item):
            yield EXACT_TAG, (removed, match)
    else:
        for row_id, key in shared_ids(item):
            yield NEAR_TAG, (row_id, key)


def near_members(piece: tuple[int, int, int], runs: Sequence[str],
                 shared: dict[int, list[bytes]]) -> Iterator[tuple[bytes, Member]]:
    """The rows of one manifest slice that are in a shared near bucket → (bucket, member
    with its signatures) per such bucket; a slice with none is not read."""
    index, start, stop = piece
    base = index << ROW_BITS
    if not any((base | number) in shared for number in range(start, stop)):
        return
    for row_id, row in read_rows(piece, runs):
        buckets = shared.get(row_id)
        if not buckets:
            continue
        member: Member = (index, row["key"], row["source"] or "", row["text_minhash"] or b"",
                          row["image_phash"] or "", row["text_hash"] or "")
        for key in buckets:
            yield key, member


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
    buckets (nearly all of them) end here, before any signature is read."""
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


def candidate_order(candidate: dict[str, Any]) -> tuple:
    """Which of a removed sample's matches it is listed under: the exact reason first, then
    the earliest kept (run, key), then the highest similarity. A total order, so the best
    of each pass's best is the best over all passes."""
    return (REASON_ORDER[candidate["reason"]], candidate["kept_index"],
            candidate["kept_key"], -candidate["similarity"])


def best_candidate(item: tuple[tuple[int, str], Iterable[tuple]]) -> dict[str, Any]:
    """This pass's matches of one removed sample → its best one (`candidate_order`)."""
    (index, key), matches = item
    candidates = ({"run_index": index, "key": key, "source": source, "reason": reason,
                   "kept_index": kept_index, "kept_key": kept_key,
                   "similarity": float(similarity)}
                  for reason, kept_index, kept_key, similarity, source in matches)
    return min(candidates, key=candidate_order)


def write_candidates(item: tuple[None, Iterable[dict[str, Any]]], out: str, partition: int
                     ) -> int:
    """One pass's candidates, sorted by (run, key), as its part for the final merge. The
    pass's candidates are about removals / P: bounded like its shuffles."""
    _, candidates = item
    ordered = sorted(candidates, key=lambda c: (c["run_index"], c["key"]))
    RunDir(out).write_side_table_rows(ordered, CANDIDATE_SCHEMA, CANDIDATES.format(partition))
    return len(ordered)


def build_spill(p: beam.Pipeline, runs: Sequence[str], out: str, config: DedupConfig,
                slices: Sequence[tuple[int, int, int]], partitions: int) -> None:
    """The pre-pass: every slice's bucket memberships, computed once (`spill_slice`)."""
    _ = (p | "Slices" >> beam.Create(list(enumerate(slices)))
         | "SpillBuckets" >> beam.FlatMap(spill_slice, list(runs), config, partitions, out))


def build_pass(p: beam.Pipeline, runs: Sequence[str], out: str, config: DedupConfig,
               slices: Sequence[tuple[int, int, int]], partition: int = 0) -> None:
    """One pass's graph, each arrow a keyed shuffle or a ParDo; only buckets of
    `partition` are read and shuffled:

    spilled memberships of the partition → buckets → exact: earliest wins → matches
                                                   → near: shared ones, by row id (side input)
    manifest slices → rows in a shared bucket → near buckets (members) → verified matches
    matches → best per removed sample → sorted part ``candidates-<partition>``.
    """
    runs = list(runs)
    # One FlatMap per output, not a multi-output ParDo: Beam's Dask runner merges the
    # tagged outputs of a ParDo into one collection.
    grouped = (p | "Spills" >> beam.Create(list(range(len(slices))))
               | "ReadBuckets" >> beam.FlatMap(partition_buckets, out, partition)
               | "GroupBuckets" >> beam.GroupByKey()
               | "MatchBuckets" >> beam.FlatMap(match_bucket))
    exact = grouped | "ExactMatches" >> beam.FlatMap(
        lambda tagged: [tagged[1]] if tagged[0] == EXACT_TAG else [])
    shared = (grouped
              | "SharedBuckets" >> beam.FlatMap(
                  lambda tagged: [tagged[1]] if tagged[0] == NEAR_TAG else [])
              | "GroupShared" >> beam.GroupByKey()
              | "SharedLists" >> beam.MapTuple(lambda row_id, keys: (row_id, list(keys))))
    # Signatures come from a second read of the manifests rather than a join by row id:
    # a join would shuffle a signature for every row with any band in this partition (most
    # rows, with 16 bands); the side input holds only rows of shared buckets (a few %).
    near = (p | "Slices" >> beam.Create(list(slices))
            | "NearMembers" >> beam.FlatMap(near_members, runs, beam.pvalue.AsDict(shared))
            | "GroupNear" >> beam.GroupByKey()
            | "MatchNear" >> beam.ParDo(MatchBucketFn(config)))
    (((exact, near) | "Matches" >> beam.Flatten())
     | "GroupRemoved" >> beam.GroupByKey()
     | "BestCandidate" >> beam.Map(best_candidate)
     | "OnePart" >> beam.Map(lambda c: (None, c))
     | "GroupPart" >> beam.GroupByKey()
     | "WritePart" >> beam.Map(write_candidates, out, partition))


def read_candidates(out: str, partition: int) -> Iterator[dict[str, Any]]:
    """One pass's sorted part, streamed a small batch at a time (the merge holds one batch
    of every part at once)."""
    out_dir = RunDir(out)
    with out_dir.fs.open(out_dir.path(CANDIDATES.format(partition)), "rb") as handle:
        part = pq.ParquetFile(handle, pre_buffer=False)
        for batch in part.iter_batches(batch_size=MERGE_BATCH_ROWS, use_threads=False):
            yield from batch.to_pylist()


def merged_removals(runs: Sequence[str], out: str, partitions: int
                    ) -> Iterator[dict[str, Any]]:
    """The removal list, in (run, key) order: the P sorted parts merged as streams, the
    best candidate (`candidate_order`) kept per removed sample."""
    parts = [read_candidates(out, partition) for partition in range(partitions)]
    merged = heapq.merge(*parts, key=lambda c: (c["run_index"], c["key"]))
    for _, same in itertools.groupby(merged, key=lambda c: (c["run_index"], c["key"])):
        best = min(same, key=candidate_order)
        yield {"run": runs[best["run_index"]], "key": best["key"], "source": best["source"],
               "kept_run": runs[best["kept_index"]], "kept_key": best["kept_key"],
               "reason": best["reason"], "similarity": round(best["similarity"], 4)}


def write_removals(runs: Sequence[str], out: str, partitions: int) -> list[dict[str, Any]]:
    """Per run, streamed: the side table in the run and its part of the list in `out`
    (``removals-NNNNN.parquet``); returns each run's counts. Runs with no removal get
    empty tables (a re-run must overwrite an older list)."""
    counts = []
    groups = itertools.groupby(merged_removals(runs, out, partitions), key=lambda r: r["run"])
    current = next(groups, None)
    for index, url in enumerate(runs):
        mine = current is not None and current[0] == url
        by_reason: Counter = Counter()
        by_source: Counter = Counter()
        name = f"removals-{index:05d}.parquet"
        RunDir(out).write_side_table_rows(
            _counted(current[1] if mine else iter(()), by_reason, by_source),
            REMOVAL_SCHEMA, name)
        RunDir(url).write_side_table_rows(_read_rows(out, name), REMOVAL_SCHEMA, DEDUP_REMOVED)
        counts.append({"run": url, "removed": sum(by_reason.values()),
                       "by_reason": dict(by_reason), "by_source": dict(by_source)})
        if mine:
            current = next(groups, None)
    return counts


def _counted(rows: Iterable[dict[str, Any]], by_reason: Counter, by_source: Counter
             ) -> Iterator[dict[str, Any]]:
    """`rows`, counted per reason and source as they stream past."""
    for row in rows:
        by_reason[row["reason"]] += 1
        by_source[row["source"]] += 1
        yield row


def _read_rows(out: str, name: str) -> Iterator[dict[str, Any]]:
    """A parquet file of `out`, streamed as rows (to copy a run's list into the run)."""
    out_dir = RunDir(out)
    with out_dir.fs.open(out_dir.path(name), "rb") as handle:
        for batch in pq.ParquetFile(handle, pre_buffer=False).iter_batches(
                batch_size=MERGE_BATCH_ROWS, use_threads=False):
            yield from batch.to_pylist()


def write_summary(counts: list[dict[str, Any]], runs: Sequence[str], out: str,
                  config: DedupConfig, partitions: int) -> dict[str, Any]:
    """dedup.json (settings, runs, passes, counts per reason / source / run), then
    _SUCCESS."""
    by_reason: Counter = Counter()
    by_source: Counter = Counter()
    for part in counts:
        by_reason.update(part["by_reason"])
        by_source.update(part["by_source"])
    summary = {"runs": list(runs), "settings": config.to_dict(), "partitions": partitions,
               "removed": sum(p["removed"] for p in counts),
               "removed_by_reason": dict(sorted(by_reason.items())),
               "removed_by_source": dict(sorted(by_source.items())),
               "removed_by_run": {p["run"]: p["removed"] for p in counts}}
    out_dir = RunDir(out)
    out_dir.write_json(summary, SUMMARY)
    out_dir.write_success()
    return summary


def run_dedup(runs: Sequence[str], out: str, config: DedupConfig | None = None,
              beam_args: Sequence[str] = (), partitions: int | None = None
              ) -> dict[str, Any]:
    """De-duplicate finished `runs` into `out` on any Beam runner; returns dedup.json.

    The order of `runs` decides which copy is kept (earlier runs win). `partitions` passes
    (default `partitions_for` the manifest rows) each shuffle 1/P of the bucket keys; the
    list does not depend on P. Re-running is safe: every run's side table and the output
    are rewritten, `_SUCCESS` comes last.
    """
    from pipelines.core.engines import beam_options, is_dask

    config = (config or DedupConfig()).validate()
    runs = [url.rstrip("/") for url in runs]
    problems = [f"{url}: not a finished run (no _SUCCESS)" for url in runs
                if not RunDir(url).complete]
    if len(set(runs)) != len(runs):
        problems.append("a run is listed twice")
    if partitions is not None and partitions < 1:
        problems.append(f"partitions must be >= 1 (got {partitions})")
    if problems:
        raise ValueError("cannot de-duplicate:\n  - " + "\n  - ".join(problems))
    out_dir = RunDir(out)
    if out_dir.complete:
        out_dir.fs.rm(out_dir.path("_SUCCESS"))  # a killed re-run must not look finished
    slices = manifest_slices(runs)
    total = sum(stop - start for _, start, stop in slices)
    auto = partitions is None
    partitions = partitions_for(total) if auto else partitions
    beam_args = list(beam_args)
    if is_dask(beam_args) and not any(a.startswith(("--dask_npartitions",
                                                    "--dask_partition_size"))
                                      for a in beam_args):
        # Beam's Dask runner keeps the first Create's partitions through every shuffle and
        # holds a partition's outputs in a list: one partition per slice bounds that list.
        beam_args.append(f"--dask_npartitions={max(1, len(slices))}")
    log.info("de-duplicating %d run(s), %d manifest rows in %d slice(s), into %s: "
             "%d pass(es)%s, each shuffling 1/%d of the bucket keys", len(runs), total,
             len(slices), out, partitions,
             f" (auto: about one per {ROWS_PER_PARTITION} rows)" if auto else "", partitions)
    options = beam_options(beam_args, tasks=max(1, len(slices)))
    for stale in [*out_dir.side_files(CANDIDATES.replace("{:05d}", "*")),
                  *out_dir.side_files(SPILL.replace("{:05d}", "*"))]:
        out_dir.fs.rm(out_dir.path(stale))  # a killed earlier run's parts, maybe another P
    out_dir.fs.makedirs(out_dir.root, exist_ok=True)
    began = time.perf_counter()
    with beam.Pipeline(options=options) as p:
        build_spill(p, runs, out, config, slices, partitions)
    log.info("dedup: bucket memberships of %d slice(s) spilled, a row group per pass, in "
             "%.1f s", len(slices), time.perf_counter() - began)
    for partition in range(partitions):
        began = time.perf_counter()
        with beam.Pipeline(options=options) as p:
            build_pass(p, runs, out, config, slices, partition)
        part = CANDIDATES.format(partition)
        if not out_dir.exists(part):  # no candidate in this pass: nothing was grouped
            out_dir.write_side_table_rows(iter(()), CANDIDATE_SCHEMA, part)
        with out_dir.fs.open(out_dir.path(part), "rb") as handle:
            found = pq.ParquetFile(handle).metadata.num_rows
        log.info("dedup pass %d/%d: %d candidate removal(s) in %.1f s", partition + 1,
                 partitions, found, time.perf_counter() - began)
    counts = write_removals(runs, out, partitions)
    for partition in range(partitions):
        out_dir.fs.rm(out_dir.path(CANDIDATES.format(partition)))
    for number in range(len(slices)):
        out_dir.fs.rm(out_dir.path(SPILL.format(number)))
    summary = write_summary(counts, runs, out, config, partitions)
    log.info("dedup merged %d pass(es): %d removal(s)", partitions, summary["removed"])
    return summary
