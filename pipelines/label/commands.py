"""``vlforge label``: label the samples of runs, or prompts typed on the command line.

    vlforge label RUN_DIR [RUN_DIR...] --out RUN_DIR2     relabel runs into a new run (Beam)
    vlforge label --text "Describe this chart" [--text ...] [--json]
    vlforge label --text-file prompts.txt --json          one prompt a line
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipelines.runner import add_run_arguments, print_run_summary, run_pipeline, shard_bounds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Label samples with a leaf of the use-case taxonomy: task rules first (text layer → "
        "OCR, chart data → graph interpretation, screenshot+HTML → UI to code, SFT template "
        "→ its leaf), then the offline MiniLM embedding classifier for prompts. Labels below "
        "the threshold stay 'unlabeled' and are counted.")
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR",
                        help="finished runs whose samples to relabel into --out")
    parser.add_argument("--text", action="append", default=[], metavar="PROMPT",
                        help="a prompt to classify (repeatable); prints its leaf")
    parser.add_argument("--text-file", metavar="FILE",
                        help="classify every non-empty line of FILE ('-' for stdin)")
    parser.add_argument("--images", type=int, default=1,
                        help="images that come with each --text prompt (default 1; "
                             ">=2 favours multi-graph leaves)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="confidence below which a label is 'unlabeled' (default 0.40)")
    parser.add_argument("--float", dest="quantize", action="store_false",
                        help="embed with the float MiniLM instead of the dynamic-int8 one "
                             "(about 3x slower, labels nearly identical)")
    parser.add_argument("--file", dest="taxonomy_file", metavar="TAXONOMY_YAML",
                        help="taxonomy file to label with (default: the shipped one)")
    add_run_arguments(parser)
    for action in parser._actions:  # --out is only needed when relabeling runs
        if action.dest == "out":
            action.required = False
            action.default = None


def main(args: argparse.Namespace, beam_args: list[str]) -> int:
    prompts = list(args.text)
    if args.text_file:
        handle = sys.stdin if args.text_file == "-" else open(args.text_file, encoding="utf-8")
        with handle:
            prompts += [line.strip() for line in handle if line.strip()]
    if prompts:
        if args.runs:
            raise ValueError("give either RUN_DIRs or --text/--text-file, not both")
        return _label_prompts(prompts, args)
    if not args.runs or not args.out:
        raise ValueError("nothing to label: give RUN_DIR... --out RUN_DIR2, or --text PROMPT")
    from taxonomy.label_pipeline import label_refs

    refs = label_refs(args.runs)
    config = {"threshold": args.threshold, "taxonomy_file": args.taxonomy_file,
              "quantize": args.quantize, "source_runs": list(args.runs)}
    stats = run_pipeline("label", refs, config, args.out, beam_args, task_size=args.task_size,
                         overwrite=args.overwrite, **shard_bounds(args))
    print_run_summary(stats, args.out, args.json)
    if not args.json:
        leaves = stats.get("samples_by_taxonomy_leaf", {})
        print(f"  unlabeled {leaves.get('unlabeled', 0)} of {sum(leaves.values())} samples")
        for leaf, count in sorted(leaves.items(), key=lambda kv: -kv[1])[:15]:
            print(f"    {count:6d}  {leaf}")
    return 0


def _label_prompts(prompts: list[str], args: argparse.Namespace) -> int:
    from taxonomy.labeler import Labeler
    from taxonomy.tree import load_taxonomy

    labeler = Labeler(load_taxonomy(args.taxonomy_file), threshold=args.threshold,
                      quantize=args.quantize).open()
    labels = labeler.label_prompts(prompts, [args.images] * len(prompts))
    rows: list[dict[str, Any]] = [{"text": p, **label.as_meta()}
                                  for p, label in zip(prompts, labels)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for row in rows:
        path = " › ".join(row["path"]) or "unlabeled"
        print(f"{row['confidence']:.2f}  {path}  [{row['leaf']}]\n      {row['text']}\n"
              f"      reason: {row['reason']}")
    unlabeled = sum(1 for r in rows if r["leaf"] == "unlabeled")
    if len(rows) > 1:
        print(f"{len(rows) - unlabeled} labeled, {unlabeled} unlabeled")
    return 0
