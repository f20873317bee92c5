"""`vlforge sft build|import`: instruction-tuning conversations, mixed to target weights.

``vlforge sft build RUN_DIR... --out RUN_DIR --mixture MIXTURE.yaml`` scans the source runs
for what each sample can give (transcription, page → markdown, UI → HTML, chart → table /
code, chart and table questions with computed answers, two-image comparisons, imported
conversations), samples those candidates to the mixture's weights, runs the "sft" pipeline
and writes ``sft_mixture.json`` (before/after counts) and ``sft_mixture.png`` into the run.

``vlforge sft import FILE --out RUN_DIR`` converts external LLaVA-style instruction data
(jsonl / json / parquet / a saved HF dataset) into a run of conversations labeled by the
taxonomy labeler; give that run to ``sft build`` to merge it into the mix.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter

from pipelines.core.cli_options import (
    add_run_arguments,
    print_run_summary,
    run_settings,
)
from pipelines.core.config import validate_all
from pipelines.core.runner import run_pipeline
from pipelines.sft.build import REPORT_JSON, REPORT_PNG, build_sft
from pipelines.sft.config import SftConfig

log = logging.getLogger(__name__)

def add_sft_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n", 1)[1]
    commands = parser.add_subparsers(dest="sft_command", required=True, metavar="build|import")

    build = commands.add_parser(
        "build", help="build conversations from runs, sampled to a mixture",
        description="Build verified conversations from complete runs, sampled to the target "
                    "weights of a mixture file; writes sft_mixture.json/.png into --out.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("runs", nargs="+", metavar="RUN_DIR",
                       help="complete source runs (pdf, crawl, images, sft import...)")
    build.add_argument("--mixture", default=None, metavar="MIXTURE.yaml",
                       help="target weights per taxonomy node (default: the bundled "
                            "pipelines/sft/mixtures/default.yaml)")
    build.add_argument("--total", type=_total, default=None, metavar="N|proportional",
                       help="conversations to build, or 'proportional' for the most the "
                            "repeat caps allow at exactly the mixture's shares (overrides "
                            "the mixture's 'total'; default: as many as there are candidates)")
    build.add_argument("--max-repeat", type=int, default=None,
                       help="most repeats of one candidate when up-sampling (overrides the mixture)")
    build.add_argument("--seed", type=int, default=None,
                       help="sampling seed (overrides the mixture's 'seed')")
    build.add_argument("--max-answer-chars", type=int, default=SftConfig.max_answer_chars,
                       help="drop answers longer than this "
                            f"(default {SftConfig.max_answer_chars})")
    build.add_argument("--no-system-prompt", dest="system_prompt", action="store_false",
                       help="leave the DeepSeek-VL system prompt out of conversations")
    add_run_arguments(build)

    imp = commands.add_parser(
        "import", help="import LLaVA-style instruction data as a labeled run",
        description="Convert LLaVA-style records {id, image, conversations: [{from: human|gpt, "
                    "value}]} from .jsonl/.json/.parquet or a datasets.save_to_disk directory "
                    "into a run of DeepSeek-format conversations, labeled by the taxonomy "
                    "labeler on the first user turn. Records without an image are text-only "
                    "dialogues.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("file", metavar="FILE", help="jsonl, json, parquet or saved HF dataset dir")
    imp.add_argument("--image-root", default=None,
                     help="directory that relative image paths are under (default: FILE's)")
    imp.add_argument("--no-label", dest="label", action="store_false",
                     help="do not run the taxonomy labeler (records stay 'unlabeled')")
    imp.add_argument("--label-threshold", type=float, default=SftConfig.label_threshold,
                     help="labeler confidence below which a prompt stays 'unlabeled'")
    imp.add_argument("--no-system-prompt", dest="system_prompt", action="store_false",
                     help="do not add the DeepSeek-VL system prompt")
    add_run_arguments(imp)


def _total(value: str) -> int | str:
    if value == "proportional":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'proportional', got {value!r}")
    return number


def sft_command(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.sft_command == "import":
        return import_main(args, beam_args)
    return build_main(args, beam_args)


def build_main(args: argparse.Namespace, beam_args: list[str]) -> int:
    settings = run_settings(args)
    result = build_sft(
        args.runs, args.out, args.mixture, beam_args,
        overrides={"total": args.total, "max_repeat": args.max_repeat, "seed": args.seed},
        config=SftConfig(max_answer_chars=args.max_answer_chars,
                         system_prompt=args.system_prompt),
        progress=not args.json, task_size=settings.task_size, overwrite=args.overwrite,
        **settings.shard_bounds)
    if args.json:
        print(json.dumps({"out": args.out, **result}, indent=2, sort_keys=True, default=str))
        return 0
    print_run_summary(result["stats"], args.out, False)
    report = result["mixture"]
    print(f"mixture {report['mixture']}: {report['candidates']} candidates -> "
          f"{report['selected']} selected ({report['not_in_mixture']} outside the mixture)")
    print(f"  {'bucket':48s} {'before':>7s} {'target':>7s} {'after':>7s} {'repeats':>7s}")
    for bucket, row in report["buckets"].items():
        if row["available"] or row["target"]:
            print(f"  {bucket:48s} {row['available']:7d} {row['target']:7d} "
                  f"{row['selected']:7d} {row['repeats']:7d}")
    if report["empty_buckets"]:
        print(f"  no candidates for: {', '.join(report['empty_buckets'])} (their weight went "
              "to the others)")
    print(f"  report: {args.out}/{REPORT_JSON}  plot: {args.out}/{REPORT_PNG}")
    return 0


def import_main(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.core.run_dir import RunDir
    from pipelines.sft.pipeline import import_refs

    config = SftConfig(label=args.label, label_threshold=args.label_threshold,
                       system_prompt=args.system_prompt, import_file=args.file)
    settings = run_settings(args)
    validate_all(config, settings)  # every flag problem at once, before reading records
    refs = import_refs(args.file, args.image_root)
    if not refs:
        raise ValueError(f"{args.file}: no records")
    stats = run_pipeline("sft", refs, config, args.out, beam_args,
                         task_size=settings.task_size, overwrite=args.overwrite,
                         **settings.shard_bounds)
    print_run_summary(stats, args.out, args.json)
    if not args.json:
        leaves = Counter(RunDir(args.out).manifest(["taxonomy_leaf"]).column(
            "taxonomy_leaf").to_pylist())
        for leaf, count in leaves.most_common():
            print(f"    label    {count:6d}  {leaf or 'unlabeled'}")
    return 0
