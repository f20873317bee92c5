"""`vlforge eval`: validation loss per taxonomy category and multiple-choice accuracy.

    vlforge eval --model RUN/model --data RUN_DIR [--choices mc.jsonl] [--json]

Loss is the next-token loss on each sample's supervised tokens (answers for conversations,
the text for image-text pairs), summed per main taxonomy category. Multiple-choice items
come from samples whose meta["sft"] lists options, and from --choices jsonl files; each
option is scored by its perplexity as the answer (the paper's trick for small models).
A model directory fine-tuned with task heads (``vlforge train --head ...``) also gets its
head's accuracy (classification) or error (regression).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from typing import Any

from tqdm import tqdm


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--data", nargs="+", action="extend", default=[], metavar="RUN_DIR",
                        help="finished run directories to evaluate on")
    parser.add_argument("--choices", nargs="+", action="extend", default=[], metavar="JSONL",
                        help='multiple-choice items: {"question", "options", "answer", "image"?}')
    parser.add_argument("--max-samples", type=int, help="evaluate at most N samples per run")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per forward pass")
    parser.add_argument("--seq-len", type=int, default=4096, help="truncate sequences to N tokens")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", metavar="FILE", help="also write the report as JSON to FILE")


def evaluate(model_dir: str, data: list[str], choices: list[str] = (), *,
             max_samples: int | None = None, batch_size: int = 8, seq_len: int = 4096,
             device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """The evaluation report for a model directory on runs and choice files."""
    import torch

    from model.collate import VLCollator
    from model.loading import load_model
    from pipelines.run_dir import RunDir
    from training.evaluate import (category_losses, choice_accuracy, choice_item_from_sample,
                                   choice_items_from_jsonl)
    from training.heads import evaluate_heads, has_heads

    if not data and not choices:
        raise ValueError("nothing to evaluate: pass --data RUN_DIR and/or --choices FILE")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_model(model_dir, device=device)
    model.eval()
    collator = VLCollator(processor, max_length=seq_len)
    report: dict[str, Any] = {"model": model_dir, "runs": {}}
    items = []
    for path in choices:
        items.extend(choice_items_from_jsonl(path))
    for url in data:
        run = RunDir(url).require_complete()

        def samples(run=run):
            stream = itertools.islice(run.iter_samples(), max_samples)
            return tqdm(stream, desc=os.path.basename(url), unit="sample", disable=not progress)

        report["runs"][url] = category_losses(model, collator, samples(), batch_size=batch_size,
                                              device=device)
        items.extend(i for i in map(choice_item_from_sample,
                                    itertools.islice(run.iter_samples(), max_samples)) if i)
        if has_heads(model_dir):
            report["runs"][url]["heads"] = evaluate_heads(
                model_dir, itertools.islice(run.iter_samples(), max_samples),
                batch_size=batch_size, device=device)
    if items:
        report["multiple_choice"] = choice_accuracy(model, collator, items, device=device)
    return report


def print_report(report: dict[str, Any]) -> None:
    for url, result in report["runs"].items():
        print(f"{url}: loss {result['loss']:.4f} over {result['samples']} samples "
              f"({result['tokens']} tokens)")
        for name, part in result["by_category"].items():
            print(f"    {name:28s} loss {part['loss']:.4f}  samples {part['samples']}")
        if result["skipped"]:
            print(f"    skipped: {result['skipped']}")
        if "heads" in result:
            print(f"    head ({result['heads']['task']}): {result['heads']['metrics']}")
    mc = report.get("multiple_choice")
    if mc:
        print(f"multiple choice: accuracy {mc['accuracy']:.3f} over {mc['items']} items")
        for name, part in mc["by_category"].items():
            print(f"    {name:28s} accuracy {part['accuracy']:.3f}  items {part['items']}")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    report = evaluate(args.model, args.data, args.choices, max_samples=args.max_samples,
                      batch_size=args.batch_size, seq_len=args.seq_len, device=args.device,
                      progress=not args.json)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, sort_keys=True)
    if args.json:
        json.dump(report, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print_report(report)
    return 0
