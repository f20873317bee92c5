"""`vlforge train --plan` and `vlforge train --dry-run`: what a stage would train and need.

Nothing is loaded or allocated: the model is built on the meta device (from ``--model DIR``'s
config or ``--model-preset``), so both answer in seconds even for the 7B.

    vlforge train --stage 1 --model-preset 7b --dry-run [--json]
    vlforge train --plan --model-preset 7b --stage 2 --gpus 64 --gpu-memory 80 [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys

from training.plan import GIB, plan_table
from training.trainable import trainable_report


def _preset_of(args: argparse.Namespace) -> str | None:
    if args.model_preset:
        return args.model_preset
    if args.model:
        from training.cli import model_scale

        return model_scale(args.model)
    return None


def add_planning_arguments(parser: argparse.ArgumentParser) -> None:
    """The --plan / --dry-run flags (a group of `vlforge train`)."""
    group = parser.add_argument_group(
        "planning (nothing is trained; the model is built on the meta device)")
    group.add_argument("--dry-run", action="store_true",
                       help="list every tensor the stage trains (name, shape, count, group) "
                            "and the totals, then exit")
    group.add_argument("--plan", action="store_true",
                       help="print per-GPU memory (weights, grads, AdamW states, activations, "
                            "peak) for ddp and fsdp, without and with activation "
                            "checkpointing, the micro-batch x gradient accumulation that "
                            "reaches the stage's global batch, and whether it fits")
    group.add_argument("--model-preset", metavar="PRESET",
                       help="plan / dry-run a preset (tiny, 1.3b, 7b) instead of --model DIR")
    group.add_argument("--gpus", type=int, default=1, help="--plan: GPUs in the job (default 1)")
    group.add_argument("--gpu-memory", type=float, default=80.0, metavar="GIB",
                       help="--plan: memory per GPU in GiB (default 80)")
    group.add_argument("--plan-dtype", choices=("bf16", "fp32"), default="bf16",
                       help="--plan: compute dtype (bf16: autocast / FSDP mixed precision)")


def dry_run(args: argparse.Namespace) -> int:
    """Print the tensors --stage trains on --model / --model-preset."""
    from training.cli import stage_config_from_args
    from training.plan import meta_model

    if args.head:
        raise ValueError("--dry-run lists the VL model's own tensors; it does not build "
                         "--head models")
    preset = _preset_of(args)
    if preset is None:
        raise ValueError("--dry-run needs --model DIR or --model-preset NAME")
    scoped = copy.copy(args)
    if scoped.model is None:  # the stage's Table 4 column follows the preset
        from training.stages import SCALES

        scoped.scale = args.scale or (preset if preset in SCALES else "tiny")
    config = stage_config_from_args(scoped)
    model = (meta_model(model_dir=args.model) if args.model and not args.model_preset
             else meta_model(preset))
    report = trainable_report(model, config.trainable)
    if args.json:
        json.dump({"stage": config.stage, "model": args.model or preset,
                   "trainable_groups": list(config.trainable), **report.to_dict()},
                  sys.stdout, indent=2)
        print()
        return 0
    print(f"stage {config.stage} ({config.name}) on {args.model or preset}: "
          f"trains {', '.join(config.trainable)}")
    width = max((len(t.name) for t in report.tensors), default=10)
    print(f"  {'tensor':<{width}}  {'shape':<20} {'count':>13}  group")
    for tensor in report.tensors:
        shape = "x".join(map(str, tensor.shape)) or "scalar"
        print(f"  {tensor.name:<{width}}  {shape:<20} {tensor.count:>13,}  {tensor.group}")
    share = report.trainable / report.total if report.total else 0.0
    print(f"trainable: {len(report.tensors)} tensors, {report.trainable:,} of "
          f"{report.total:,} parameters ({share:.2%})")
    for group, counts in report.groups.items():
        print(f"  {group:<16} {counts['trainable']:>13,} of {counts['params']:>13,} trainable")
    return 0


def _gib(value: int) -> str:
    return f"{value / GIB:8.2f}"


def plan(args: argparse.Namespace) -> int:
    """Print the memory plans of --stage for --gpus x --gpu-memory."""
    preset = _preset_of(args)
    if preset is None:
        raise ValueError("--plan needs --model-preset NAME (or --model DIR made from a preset)")
    plans = plan_table(preset, args.stage, args.gpus, args.gpu_memory, seq_len=args.seq_len,
                       micro_batch=args.batch_size, dtype=args.plan_dtype)
    if args.json:
        json.dump({"plans": [p.to_dict() for p in plans]}, sys.stdout, indent=2)
        print()
        return 0
    first = plans[0]
    print(f"plan: {preset} stage {args.stage}, {args.gpus} GPU(s) x {args.gpu_memory:g} GiB, "
          f"{args.plan_dtype}, seq {first.seq_len}, global batch {first.target_global_batch} "
          f"(micro-batch: {'--batch-size' if args.batch_size else 'largest that fits'})")
    print(f"parameters: {first.params_total:,} total, {first.params_trainable:,} trainable "
          "(AdamW: fp32 exp_avg + exp_avg_sq)")
    print("per GPU, GiB:")
    print(f"  {'strategy':<8} {'act.ckpt':<8} {'micro x accum x gpus':<22} {'weights':>8} "
          f"{'grads':>8} {'optim':>8} {'activ':>8} {'peak':>8}  fits")
    for p in plans:
        layout = f"{p.micro_batch} x {p.grad_accum} x {p.gpus} = {p.global_batch}"
        fits = "yes" if p.fits else "NO"
        print(f"  {p.strategy:<8} {'on' if p.activation_checkpointing else 'off':<8} "
              f"{layout:<22} {_gib(p.weights)} {_gib(p.grads)} {_gib(p.optimizer)} "
              f"{_gib(p.activations)} {_gib(p.peak)}  {fits}")
    print(f"fits = peak <= {100 * (1 - first.headroom):.0f}% of the GPU (the rest: CUDA "
          "context, NCCL buffers, fragmentation); formulas: training/plan.py")
    for note in sorted({n for p in plans for n in p.notes}):
        print(f"note: {note}")
    return 0
