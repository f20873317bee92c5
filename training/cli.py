"""`vlforge train`: run one DeepSeek-VL training stage on finished run directories.

    vlforge train --stage 1 --model MODEL_DIR --data RUN_DIR... --out RUN [--max-steps N]
    vlforge train --stage 2 --model RUN1/model --data RUN_DIR... --text corpus.txt --out RUN2
    vlforge train --stage 3 --model RUN2/model --data SFT_RUN --text dialogue.jsonl --out RUN3
    vlforge train --stage 3 --head classification --target taxonomy.leaf --model M --data R --out H
    torchrun --nproc_per_node 2 -m training train ...      (DDP; gloo on CPU, nccl on GPU)

The stage's settings come from the paper's Table 4 at the model's scale (tiny presets get
the same recipe scaled down); any field can be overridden by a flag or a --config JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from training.stages import SCALES, StageConfig, StageConfigError, stage_preset

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.add_argument("--stage", type=int, choices=(1, 2, 3), required=True,
                        help="1 adaptor warm-up, 2 joint VL pretraining, 3 SFT")
    parser.add_argument("--model", required=True,
                        help="model directory (vlforge model init, or a previous RUN/model)")
    parser.add_argument("--data", nargs="+", action="extend", default=[], metavar="RUN_DIR",
                        help="finished run directories (with _SUCCESS) to stream shards from")
    parser.add_argument("--text", nargs="+", action="extend", default=[], metavar="FILE",
                        help="language-only data: plain text (blank-line separated documents) "
                             "or jsonl with 'text' or 'conversation' per line")
    parser.add_argument("--out", required=True, help="training run directory to write")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides the preset)")
    parser.add_argument("--stop-after", type=int, metavar="N",
                        help="stop after N steps of this invocation (checkpointed; continue "
                             "with --resume auto), e.g. for time-boxed jobs")
    parser.add_argument("--resume", metavar="auto|CHECKPOINT",
                        help="'auto': continue from the newest checkpoint in --out if any")
    parser.add_argument("--scale", choices=SCALES,
                        help="Table 4 column to start from (default: from the model's preset)")
    parser.add_argument("--config", metavar="JSON",
                        help="a JSON file of StageConfig fields overriding the preset")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--batch-size", type=int, help="samples per micro-batch per process")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    parser.add_argument("--seq-len", type=int, help="maximum tokens per sequence")
    parser.add_argument("--packing", action=argparse.BooleanOptionalAction, default=None,
                        help="pack language-only text into full sequences")
    parser.add_argument("--language-ratio", type=float, metavar="R",
                        help="target share of language-only steps (0 trains without --text)")
    parser.add_argument("--mixture", nargs="+", default=[], metavar="RUN_NAME=WEIGHT",
                        help="sampling weight of a --data run by its directory name")
    parser.add_argument("--trainable", nargs="+", metavar="GROUP",
                        help="parameter groups to train instead of the stage's: "
                             "language_model adaptor siglip sam heads")
    parser.add_argument("--head", choices=("classification", "regression"),
                        help="fine-tune a task head (model/heads.py) instead of the LM loss; "
                             "trains the 'heads' group unless --trainable says otherwise")
    parser.add_argument("--target", default="taxonomy.leaf",
                        help="meta path of the head's target (default taxonomy.leaf)")
    parser.add_argument("--classes", help="comma-separated class names (default for "
                                          "taxonomy.leaf: the leaves in the runs' manifests)")
    parser.add_argument("--fusion", choices=("concat", "attention"), default="concat",
                        help="how the head pools image and text states")
    parser.add_argument("--seed", type=int, help="data order / modality choice seed")
    parser.add_argument("--save-every", type=int, help="checkpoint every N steps")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def model_scale(model_dir: str) -> str:
    """The Table 4 column for a model directory, from its vlforge card (tiny by default)."""
    card = os.path.join(model_dir, "vlforge_model.json")
    preset = ""
    if os.path.exists(card):
        with open(card, encoding="utf-8") as handle:
            preset = str(json.load(handle).get("preset") or "")
    return preset if preset in SCALES else "tiny"


def stage_config_from_args(args: argparse.Namespace) -> StageConfig:
    """The preset for --stage at the model's scale, with --config and flags applied."""
    base = stage_preset(args.stage, args.scale or model_scale(args.model))
    values: dict[str, Any] = base.to_dict()
    if args.config:
        with open(args.config, encoding="utf-8") as handle:
            values.update(json.load(handle))
    flags = {"max_steps": args.max_steps, "lr": args.lr, "batch_size": args.batch_size,
             "grad_accum": args.grad_accum, "seq_len": args.seq_len, "packing": args.packing,
             "seed": args.seed, "save_every": args.save_every}
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.language_ratio is not None:
        values["language_ratio_target"] = args.language_ratio
        values["language_ratio_start"] = (max(args.language_ratio, values["language_ratio_start"])
                                          if args.language_ratio > 0 else 0.0)
    if args.mixture:
        mixture = dict(values.get("mixture") or {})
        for item in args.mixture:
            name, sep, weight = item.partition("=")
            if not sep:
                raise StageConfigError(f"--mixture wants RUN_NAME=WEIGHT, got {item!r}")
            mixture[name] = float(weight)
        values["mixture"] = mixture
    if args.trainable:
        values["trainable"] = list(args.trainable)
    elif args.head:
        values["trainable"] = ["heads"]
    if args.head:  # heads learn from labelled multimodal samples only
        values["language_ratio_start"] = values["language_ratio_target"] = 0.0
    values["stage"] = args.stage
    return StageConfig.from_dict(values)


def head_spec_from_args(args: argparse.Namespace):
    """The HeadSpec for --head (None without it)."""
    if not args.head:
        return None
    from training.heads import HeadSpec, classes_from_runs

    classes: tuple[str, ...] = ()
    if args.head == "classification":
        if args.classes:
            classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
        elif args.target == "taxonomy.leaf":
            classes = classes_from_runs(args.data)
        else:
            raise StageConfigError("--head classification needs --classes for --target "
                                   f"{args.target}")
    return HeadSpec(args.head, args.target, classes, args.fusion).validate()


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from training.loop import train

    config = stage_config_from_args(args)
    head = head_spec_from_args(args)
    result = train(config, model_dir=args.model, out=args.out, data=args.data, text=args.text,
                   resume=args.resume, device=args.device,
                   progress=not args.no_progress and not args.json,
                   stop_after=args.stop_after, head=head)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    summary = {"out": args.out, "stage": config.stage, "step": result.step,
               "resumed_from": result.resumed_from,
               "first_loss": result.losses[0] if result.losses else None,
               "final_loss": result.losses[-1] if result.losses else None,
               "checkpoint": result.checkpoint, "model_dir": result.model_dir,
               "trainable": result.trainable, "skipped_samples": result.skipped_samples,
               "modalities": {m: result.modalities.count(m) for m in set(result.modalities)}}
    if args.json:
        json.dump(summary, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print(f"stage {config.stage} ({config.name}): step {result.step}/{config.max_steps}"
              + (f", loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f}"
                 if result.losses else ""))
        print(f"  checkpoint {result.checkpoint}")
        print(f"  model      {result.model_dir}")
        print(f"  metrics    {os.path.join(args.out, 'metrics.jsonl')} (+ loss.png, lr.png, "
              "tensorboard/)")
    return 0
