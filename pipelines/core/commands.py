"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse
import json

from pipelines.core import retry as retry_module
from pipelines.core.audit import audit_run, format_report
from pipelines.core.cli_options import print_run_summary
from pipelines.core.export import export_hf, export_parquet, inspect_run
from pipelines.core.retry import retry


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Check that a run accounts for every input (written + dropped + "
                          "errors) and that its shards match the manifest. Exit status 1 "
                          "when anything is unaccounted, unreadable or inconsistent.")
    parser.add_argument("run_dir", help="run directory (local path or fsspec URL)")
    parser.add_argument("--no-verify-shards", dest="verify", action="store_false",
                        help="skip reading every shard (faster; accounting only)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")

def audit_command(args: argparse.Namespace, extra: list[str]) -> int:
    report = audit_run(args.run_dir, verify_shards=args.verify)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def add_retry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = retry_module.__doc__.split("\n\n")[0].split(": ", 1)[1]
    parser.add_argument("run_dir", help="a run directory made by any vlforge pipeline")
    parser.add_argument("--reason", action="append", default=[], metavar="REASON",
                        help="retry only errors with this reason (repeatable), e.g. TimeoutError")
    parser.add_argument("--json", action="store_true", help="print the run stats as JSON")
    parser.epilog = "Any other --flag is passed to Apache Beam (e.g. --runner=...)."

def retry_command(args: argparse.Namespace, extra: list[str]) -> int:
    stats = retry(args.run_dir, beam_args=extra, reasons=args.reason)
    print_run_summary(stats, args.run_dir, args.json)
    return 0


def add_shards_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    inspect = sub.add_parser("inspect", help="counts, sizes and example keys of a run")
    inspect.add_argument("run_dir")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    export = sub.add_parser("export", help="export a run to parquet files or an HF dataset")
    export.add_argument("run_dir")
    export.add_argument("--to", choices=("parquet", "hf"), required=True,
                        help="parquet: part-*.parquet files; hf: datasets.Dataset.save_to_disk")
    export.add_argument("out", help="output directory")

def shards_command(args: argparse.Namespace, extra: list[str]) -> int:
    if args.action == "inspect":
        info = inspect_run(args.run_dir)
        if args.json:
            print(json.dumps(info, indent=2, sort_keys=True))
            return 0
        print(f"run: {info['run']}  pipeline: {info['pipeline']}")
        print(f"samples {info['samples']}  shards {len(info['shards'])}  "
              f"size {info['bytes'] / 1e6:.1f} MB")
        for shard in info["shards"]:
            print(f"  {shard['name']}  {shard['samples']:6d} samples  "
                  f"{shard['bytes'] / 1e6:8.2f} MB")
        print("by source: " + ", ".join(f"{k} {v}" for k, v in info["by_source"].items()))
        print("by taxonomy leaf: " + ", ".join(
            f"{k} {v}" for k, v in sorted(info["by_taxonomy_leaf"].items())))
        print("example keys: " + " ".join(info["example_keys"]))
        return 0
    if args.to == "parquet":
        files = export_parquet(args.run_dir, args.out)
        print(f"wrote {len(files)} parquet file(s) to {args.out}")
    else:
        count = export_hf(args.run_dir, args.out)
        print(f"saved a datasets.Dataset of {count} rows to {args.out}")
    return 0
