"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipelines.core.config import CLI_POST_STAGES, RunSettings

MB = 1024 * 1024


# -- shared CLI plumbing ----------------------------------------------------------------
def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every pipeline command takes; unknown ``--flags`` go to Beam."""
    parser.add_argument("--out", required=True, help="run directory (local path or fsspec URL)")
    defaults = RunSettings()
    parser.add_argument("--task-size", type=int, default=defaults.task_size,
                        help="inputs per task, the resumable unit of work "
                             f"(default {defaults.task_size})")
    parser.add_argument("--shard-max-mb", type=float, default=defaults.max_bytes // MB,
                        help="close a shard when it reaches this size "
                             f"(default {defaults.max_bytes // MB} MB)")
    parser.add_argument("--shard-max-count", type=int, default=defaults.max_count,
                        help="close a shard when it holds this many samples "
                             f"(default {defaults.max_count})")
    parser.add_argument("--validation-fraction", type=float,
                        default=defaults.validation_fraction,
                        help="share of source documents held out for validation (the "
                             "manifest's split column; whole documents, never single pages) "
                             f"(default {defaults.validation_fraction})")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard an existing run directory with different inputs")
    parser.add_argument("--json", action="store_true", help="print the run stats as JSON")
    parser.epilog = ((parser.epilog or "") + "\nAny other --flag is passed to Apache Beam, "
                     "e.g. --runner=DataflowRunner --project=P --region=R, or "
                     "--direct_num_workers=2 --direct_running_mode=multi_processing.")

def run_settings(args: argparse.Namespace) -> RunSettings:
    """The `RunSettings` of `add_run_arguments`' flags (not yet validated)."""
    return RunSettings(task_size=args.task_size, max_bytes=int(args.shard_max_mb * MB),
                       max_count=args.shard_max_count,
                       validation_fraction=getattr(args, "validation_fraction",
                                                   RunSettings.validation_fraction))

def shard_bounds(args: argparse.Namespace) -> dict[str, int]:
    """The shard bounds of the flags, as `run_pipeline` keyword arguments."""
    return run_settings(args).shard_bounds

def print_run_summary(stats: dict[str, Any], out: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"out": out, **stats}, indent=2, sort_keys=True))
        return
    print(f"run: {out}")
    print(f"  inputs {stats['inputs']}  written {stats['written']} (+{stats['derived']} derived)"
          f"  dropped {stats['dropped']}  errors {stats['errors']}")
    for label, key in (("dropped", "dropped_by_reason"), ("errors", "errors_by_reason")):
        for reason, count in stats[key].items():
            print(f"    {label:8s} {count:6d}  {reason}")


def add_post_stage_arguments(parser) -> None:
    """The CLI flags that switch the post stages (shared by `pdf`, `crawl`, `images`);
    their defaults are `pipelines.core.config.CLI_POST_STAGES`."""
    parser.add_argument("--ocr", default=CLI_POST_STAGES.ocr, metavar="BACKEND",
                        help=f"OCR backend for pages/images without a text layer: "
                             f"{CLI_POST_STAGES.ocr} (default), paddleocr, tesseract, or "
                             "'none' to skip OCR")
    parser.add_argument("--ocr-policy", choices=("missing", "always"),
                        default=CLI_POST_STAGES.ocr_policy,
                        help="missing: OCR only where no trustworthy text exists (default); "
                             "always: also where ground truth exists, to measure OCR")
    parser.add_argument("--no-charts", dest="charts", action="store_false",
                        help="skip chart detection and data recovery")
    parser.add_argument("--no-label", dest="label", action="store_false",
                        help="skip taxonomy labeling")
    parser.add_argument("--label-threshold", type=float, default=CLI_POST_STAGES.label_threshold,
                        help="confidence below which a sample stays 'unlabeled'")

def post_stage_config(args) -> dict[str, Any]:
    """`PostStageConfig` fields from the flags (``--ocr none`` means no OCR)."""
    return {"ocr": None if args.ocr in (None, "none") else args.ocr,
            "ocr_policy": args.ocr_policy, "charts": args.charts, "label": args.label,
            "label_threshold": args.label_threshold}
