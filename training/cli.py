"""`vlforge train`: run one DeepSeek-VL training stage on finished run directories.

    vlforge train --stage 1 --model MODEL_DIR --data RUN_DIR... --out RUN [--max-steps N]
    vlforge train --stage 2 --model RUN1/model --data RUN_DIR... --text corpus.txt --out RUN2
    vlforge train --stage 3 --model RUN2/model --data SFT_RUN --text dialogue.jsonl --out RUN3
    vlforge train --stage 3 --head classification --target taxonomy.leaf --model M --data R --out H
    torchrun --nproc_per_node 2 -m training train ...      (DDP; gloo on CPU, nccl on GPU)
    torchrun --nproc_per_node 8 -m training train --strategy fsdp --loader-workers 4 ...
    vlforge train --stage 1 --model-preset 7b --dry-run          (what trains, nothing runs)
    vlforge train --plan --model-preset 7b --stage 2 --gpus 64 --gpu-memory 80 [--json]

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

from model import chat as chat_module
from model.chat import DEFAULT_QUESTION, Chat
from training import evaluate_model
from training.answer_run import answer_run
from training.evaluate_model import evaluate
from training.parallel import ATTN_IMPLEMENTATIONS, STRATEGIES, ParallelConfig
from training.stages import SCALES, StageConfig, StageConfigError, stage_preset

log = logging.getLogger(__name__)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.add_argument("--stage", type=int, choices=(1, 2, 3), required=True,
                        help="1 adaptor warm-up, 2 joint VL pretraining, 3 SFT")
    parser.add_argument("--model",
                        help="model directory (vlforge model init, or a previous RUN/model); "
                             "required to train")
    parser.add_argument("--data", nargs="+", action="extend", default=[], metavar="RUN_DIR",
                        help="finished run directories (with _SUCCESS) to stream shards from")
    parser.add_argument("--text", nargs="+", action="extend", default=[], metavar="FILE",
                        help="language-only data: plain text (blank-line separated documents) "
                             "or jsonl with 'text' or 'conversation' per line")
    parser.add_argument("--out", help="training run directory to write; required to train")
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
    parser.add_argument("--subset", type=int, metavar="N",
                        help="train on only N samples of each run first (the seed design's "
                             "small subset; continue on the whole run from OUT/model)")
    parser.add_argument("--seed", type=int, help="data order / modality choice seed")
    parser.add_argument("--save-every", type=int, help="checkpoint every N steps")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parallel = parser.add_argument_group("parallelism and memory")
    parallel.add_argument("--strategy", choices=STRATEGIES, default="auto",
                          help="ddp (whole model per rank), fsdp (sharded, FSDP2) or auto: "
                               "ddp when weights+gradients+AdamW fit one device (default)")
    parallel.add_argument("--activation-checkpointing", action=argparse.BooleanOptionalAction,
                          default=None, help="recompute decoder layers in backward (default: "
                                             "on for the 7b preset's stages 2 and 3)")
    parallel.add_argument("--compile", action="store_true",
                          help="torch.compile each decoder layer")
    parallel.add_argument("--attn-implementation", choices=ATTN_IMPLEMENTATIONS,
                          help="language model attention kernel (default sdpa)")
    parallel.add_argument("--cpu-offload", action="store_true",
                          help="fsdp: keep sharded parameters and optimizer states on the CPU")
    parallel.add_argument("--loader-workers", type=int, default=0, metavar="N",
                          help="data-loader worker processes per rank (decode, preprocess, "
                               "collate off the training thread; resumes exactly)")
    parallel.add_argument("--checkpoint-dir", metavar="PATH_OR_URL",
                          help="where sharded checkpoints go (fsspec URL such as s3://... "
                               "allowed; default OUT/checkpoints)")
    from training.plan_commands import add_planning_arguments

    add_planning_arguments(parser)
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
             "seed": args.seed, "save_every": args.save_every, "subset": args.subset}
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
    from model.cnn_dir import is_cnn_dir

    if args.trainable:
        values["trainable"] = list(args.trainable)
    elif args.head and is_cnn_dir(args.model):  # the CNN hybrid trains whole, with its head
        values["trainable"] = ["cnn", "heads"]
    elif args.head:
        values["trainable"] = ["heads"]
    if args.head:  # heads learn from labelled multimodal samples only
        values["language_ratio_start"] = values["language_ratio_target"] = 0.0
    values["stage"] = args.stage
    return StageConfig.from_dict(values)


def parallel_config_from_args(args: argparse.Namespace) -> ParallelConfig:
    """The --strategy / --activation-checkpointing / ... flags as a ParallelConfig."""
    return ParallelConfig(strategy=args.strategy,
                          activation_checkpointing=args.activation_checkpointing,
                          compile=args.compile, attn_implementation=args.attn_implementation,
                          cpu_offload=args.cpu_offload,
                          loader_workers=args.loader_workers).validate()


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


def train_command(args: argparse.Namespace, extra: list[str]) -> int:
    if args.plan or args.dry_run:  # nothing trains: training/plan_commands.py
        from training import plan_commands

        return plan_commands.plan(args) if args.plan else plan_commands.dry_run(args)
    if not (args.model and args.out):
        raise StageConfigError("training needs --model DIR and --out RUN "
                               "(--plan / --dry-run do not)")
    from training.loop import train

    config = stage_config_from_args(args)
    head = head_spec_from_args(args)
    result = train(config, model_dir=args.model, out=args.out, data=args.data, text=args.text,
                   resume=args.resume, device=args.device,
                   progress=not args.no_progress and not args.json,
                   stop_after=args.stop_after, head=head,
                   parallel=parallel_config_from_args(args),
                   checkpoint_dir=args.checkpoint_dir)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    summary = {"out": args.out, "stage": config.stage, "step": result.step,
               "resumed_from": result.resumed_from,
               "first_loss": result.losses[0] if result.losses else None,
               "final_loss": result.losses[-1] if result.losses else None,
               "checkpoint": result.checkpoint, "model_dir": result.model_dir,
               "strategy": result.strategy,
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


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = chat_module.__doc__
    parser.add_argument("question", nargs="?", help="the question (single-question mode)")
    parser.add_argument("--model", required=True, help="model directory (vlforge model init / "
                        "a training checkpoint / published weights in transformers layout)")
    parser.add_argument("--image", action="append", default=[], metavar="FILE",
                        help="an image file; repeat for several (placed in order)")
    parser.add_argument("--run", help="answer every sample of this run directory instead")
    parser.add_argument("--out", help="JSONL file for --run answers (default: stdout)")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per batch with --run")
    parser.add_argument("--limit", type=int, help="answer at most this many samples of --run")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0, help="seed for --sample")
    parser.add_argument("--system", help="system prompt (default: DeepSeek-VL's)")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: cuda if available)")
    parser.add_argument("--no-stream", action="store_true", help="print the answer at the end")
    parser.add_argument("--json", action="store_true", help="single question: print JSON")

def chat_command(args: argparse.Namespace, extra: list[str]) -> int:
    import torch

    if not args.run and not args.question:
        raise ValueError("give a question, or --run RUNDIR to answer a run's samples")
    if args.sample:
        torch.manual_seed(args.seed)
    chat = Chat(args.model, device=args.device, system_prompt=args.system)
    kwargs = dict(max_new_tokens=args.max_new_tokens, sample=args.sample,
                  temperature=args.temperature, top_p=args.top_p)
    if args.run:
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
        try:
            counts = answer_run(chat, args.run, out, question=args.question or DEFAULT_QUESTION,
                                batch_size=args.batch_size, limit=args.limit, **kwargs)
        finally:
            if args.out:
                out.close()
        print(json.dumps(counts), file=sys.stderr)
        return 0
    stream = not (args.no_stream or args.json)
    answer = chat.ask(args.question, args.image, stream=stream, **kwargs)
    if args.json:
        print(json.dumps({"question": args.question, "images": args.image, "answer": answer},
                         ensure_ascii=False))
    elif not stream:
        print(answer)
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = evaluate_model.__doc__
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--data", nargs="+", action="extend", default=[], metavar="RUN_DIR",
                        help="finished run directories to evaluate on")
    parser.add_argument("--choices", nargs="+", action="extend", default=[], metavar="JSONL",
                        help='multiple-choice items: {"question", "options", "answer", "image"?}')
    parser.add_argument("--split", choices=("validation", "train", "all"), default="validation",
                        help="which side of the runs' held-out split to evaluate on "
                             "(default validation: documents training never saw)")
    parser.add_argument("--max-samples", type=int, help="evaluate at most N samples per run")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per forward pass")
    parser.add_argument("--seq-len", type=int, default=4096, help="truncate sequences to N tokens")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", metavar="FILE", help="also write the report as JSON to FILE")

def print_report(report: dict[str, Any]) -> None:
    for url, result in report["runs"].items():
        if "loss" not in result:  # a model scored by its task head only (cnn-hybrid)
            print(f"{url}: head ({result['heads']['task']}) {result['heads']['metrics']} over "
                  f"{result['heads']['samples']} samples")
            continue
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

def eval_command(args: argparse.Namespace, extra: list[str]) -> int:
    report = evaluate(args.model, args.data, args.choices, max_samples=args.max_samples,
                      batch_size=args.batch_size, seq_len=args.seq_len, device=args.device,
                      progress=not args.json,
                      split=None if args.split == "all" else args.split)
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
