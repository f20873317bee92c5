"""``vlforge dedup RUN... --out DEDUP``: find duplicates across runs; readers skip them."""

from __future__ import annotations

import argparse
import json

from pipelines.dedup.config import DedupConfig
from pipelines.dedup.pipeline import run_dedup

DEDUP_HELP = """Find exact and near duplicates across finished runs, from their manifests
alone, and write a removal list: each removed sample names the earlier copy it duplicates,
the reason (same_source, same_image, same_text, near_text, near_image) and the similarity.
Nothing is deleted from shards; every run gets a side table of its removed keys that the
trainer, `sft build`, `shards export` and the report honour. Runs listed first win: their
copy is the one kept. Any other --flag goes to Apache Beam (e.g. --runner=DaskRunner
--dask_client_address=tcp://HOST:PORT)."""


def add_dedup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DEDUP_HELP
    defaults = DedupConfig()
    parser.add_argument("runs", nargs="+", metavar="RUN", help="finished run directories")
    parser.add_argument("--out", required=True, help="output directory for the removal list")
    parser.add_argument("--text-threshold", type=float, default=defaults.text_threshold,
                        help="estimated Jaccard similarity (word 5-grams) from which texts "
                             f"are near duplicates (default {defaults.text_threshold})")
    parser.add_argument("--text-bands", type=int, default=defaults.text_bands,
                        help=f"MinHash LSH bands (default {defaults.text_bands})")
    parser.add_argument("--min-text-chars", type=int, default=defaults.min_text_chars,
                        help="shorter texts are not compared (default "
                             f"{defaults.min_text_chars})")
    parser.add_argument("--image-distance", type=int, default=defaults.image_distance,
                        help="perceptual-hash bits within which images are near duplicates "
                             f"(default {defaults.image_distance})")
    parser.add_argument("--max-bucket", type=int, default=defaults.max_bucket,
                        help="comparisons per bucket member at most (default "
                             f"{defaults.max_bucket})")
    parser.add_argument("--partitions", type=int, default=None, metavar="P",
                        help="passes, one Beam pipeline each, every one shuffling 1/P of the "
                             "bucket keys: peak memory follows the rows per pass, not the "
                             "rows (default: about one per 100k manifest rows; the list "
                             "does not depend on P)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def dedup_command(args: argparse.Namespace, beam_args: list[str]) -> int:
    config = DedupConfig(text_threshold=args.text_threshold, text_bands=args.text_bands,
                         min_text_chars=args.min_text_chars,
                         image_distance=args.image_distance, max_bucket=args.max_bucket)
    summary = run_dedup(args.runs, args.out, config, beam_args, partitions=args.partitions)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    print(f"dedup: {args.out}  removed {summary['removed']} sample(s) "
          f"({summary['partitions']} pass(es))")
    for reason, count in summary["removed_by_reason"].items():
        print(f"    {count:6d}  {reason}")
    for run, count in summary["removed_by_run"].items():
        print(f"  {run}: {count} removed")
    return 0
