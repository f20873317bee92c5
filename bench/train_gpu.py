"""Stage 2 training speed and memory of the 1.3b preset under FSDP, with and without
activation checkpointing.

    PYTHONPATH=. python3 bench/train_gpu.py [--seq-len 4096] [--batch-size 2] [--steps 10]
    PYTHONPATH=. python3 bench/train_gpu.py --tiny --device cpu     (a quick check of the script)

What runs: the 1.3b preset (SigLIP-L + DeepSeek LLM 1.3B; random weights, nothing can be
downloaded here), stage 2's trainable set (language model + adaptor, SigLIP frozen), FSDP2
on the devices of this one process (`training.distributed.shard_model`: bf16 compute, fp32
reduction, fp32 sharded master weights), AdamW, gradient clipping, packed language rows of
`--seq-len` tokens (the language steps that are 70% or more of stage 2). Per configuration:
`--warmup` untimed steps, then `--steps` timed ones.

Printed side by side (activation checkpointing off = baseline):
  tokens/s, step time, MFU and peak memory (`torch.cuda.max_memory_allocated`), and the
  planner's estimate (`training.plan`) where that module is available.
MFU = model FLOPs per token x tokens/s / peak. Model FLOPs per token (PaLM's convention):
6 x the matmul parameters the step trains through (decoder layers + lm_head; the embedding
lookup is not a matmul) + 12 x layers x hidden x seq_len for attention; recomputation by
activation checkpointing is NOT counted (it is overhead, not model work). Peak: 989 TFLOP/s,
the H100 SXM's dense bf16 figure (--peak-tflops to change).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

H100_SXM_BF16_DENSE_TFLOPS = 989.0


def build_model(preset: str, device: torch.device):
    """The preset's model with random weights, on `device`, in fp32 (the master dtype)."""
    from model.presets import build_config, model_class_for

    config = build_config(preset)
    torch.manual_seed(0)
    with torch.device(device):
        model = model_class_for(config)(config)
    model.config.text_config.use_cache = False
    return model


def model_flops_per_token(model, seq_len: int) -> float:
    """6 x matmul parameters trained through + 12 x layers x hidden x seq (attention)."""
    text = model.config.text_config
    layers = model.model.language_model.layers
    matmul = sum(p.numel() for p in layers.parameters()) + model.lm_head.weight.numel()
    return 6.0 * matmul + 12.0 * text.num_hidden_layers * text.hidden_size * seq_len


def planned_bytes(preset: str, seq_len: int, batch_size: int, checkpointing: bool,
                  device: str) -> dict | None:
    """The memory planner's per-GPU estimate for this run, or None without training.plan."""
    try:
        from training.plan import plan_memory
    except ImportError:
        return None
    try:
        plan = plan_memory(preset, 2, gpus=1, strategy="fsdp", seq_len=seq_len,
                           micro_batch=batch_size, activation_checkpointing=checkpointing,
                           dtype="bf16" if device == "cuda" else "fp32", images_per_sample=0,
                           device=device)
    except Exception as exc:  # the planner is another module: report, don't crash the bench
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {key: value for key, value in plan.to_dict().items()
            if key in ("peak", "weights", "grads", "optimizer", "activations", "fits")}


def run_config(args, device: torch.device, checkpointing: bool) -> dict:
    """Warm-up + timed steps of one configuration; its figures."""
    from training.distributed import DistInfo, apply_activation_checkpointing, shard_model
    from training.distributed import clip_grad_norm
    from training.stages import TRAINABLE
    from training.trainable import apply_trainable

    cuda = device.type == "cuda"
    # the previous configuration's FSDP model is reference-cyclic (module <-> hooks): only
    # the cycle collector frees it, and until then it counted in this one's peak (on an
    # H100 the second, checkpointed 1.3b run measured 7,852,140,032 B too much: exactly the
    # first model's fp32 shards)
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    at_start = torch.cuda.memory_allocated(device) if cuda else None
    began = time.perf_counter()
    model = build_model(args.preset, device)
    apply_trainable(model, TRAINABLE[2])
    if checkpointing:
        apply_activation_checkpointing(model)
    shard_model(model, DistInfo(0, 1, 0, device), bf16=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-5, betas=(0.9, 0.95), weight_decay=0.0)
    build_s = time.perf_counter() - began
    vocab = model.config.text_config.vocab_size
    flops_token = model_flops_per_token(model, args.seq_len)
    generator = torch.Generator(device="cpu").manual_seed(0)
    times, cpu_times, losses = [], [], []
    status = "ok"
    try:
        for step in range(args.warmup + args.steps):
            ids = torch.randint(0, vocab, (args.batch_size, args.seq_len), generator=generator)
            ids = ids.to(device)
            if cuda:
                torch.cuda.synchronize(device)
            t0, c0 = time.perf_counter(), time.process_time()
            # as training/loop.py does: the model output (its logits) lives through backward
            output = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids)
            loss = output.loss
            loss.backward()
            del output
            clip_grad_norm(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize(device)
            if step >= args.warmup:
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
                losses.append(float(loss.detach()))
    except torch.cuda.OutOfMemoryError as exc:  # a figure too: this setting does not fit
        status = f"out of memory: {str(exc).splitlines()[0]}"
    tokens = args.batch_size * args.seq_len
    step_s = sorted(times)[len(times) // 2] if times else float("nan")
    tokens_s = tokens / step_s if times else float("nan")
    result = {
        "activation_checkpointing": checkpointing, "status": status,
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in model.parameters()),
        "model_flops_per_token": flops_token, "build_s": round(build_s, 2),
        "median_step_s": step_s, "tokens_per_step": tokens, "tokens_per_s": tokens_s,
        "mfu": flops_token * tokens_s / (args.peak_tflops * 1e12) if times else None,
        "cpu_s_per_step": sorted(cpu_times)[len(cpu_times) // 2] if cpu_times else None,
        "losses": losses,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
        "allocated_at_start_bytes": at_start,
        "plan": planned_bytes(args.preset, args.seq_len, args.batch_size, checkpointing,
                              device.type),
    }
    del model, optimizer, params
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def loop_check(device: torch.device, out_dir: str) -> dict:
    """The real `training.loop.train` on the tiny preset on `device`: DDP, then FSDP with
    activation checkpointing and CPU offload, stopped after 2 of 4 steps and resumed.

    Stage 2, language-only rows (a text file made here; no run directory needed). Returns
    the losses of each and whether the resumed FSDP run repeated the uninterrupted one.
    """
    import tempfile

    from model.build import init_model_dir
    from training.loop import train
    from training.parallel import ParallelConfig
    from training.stages import stage_preset

    tmp = tempfile.mkdtemp(dir=out_dir)
    model_dir = str(init_model_dir("tiny", os.path.join(tmp, "model")))
    text = os.path.join(tmp, "corpus.txt")
    with open(text, "w", encoding="utf-8") as handle:
        handle.write("\n\n".join(f"document {i} " + "words of text " * (5 + i % 7)
                                   for i in range(64)))
    config = stage_preset(2).replace(max_steps=4, save_every=100, batch_size=2,
                                     language_ratio_start=1.0, language_ratio_target=1.0)
    common = dict(model_dir=model_dir, text=[text], device=str(device), progress=False)
    fsdp = ParallelConfig(strategy="fsdp", activation_checkpointing=True, cpu_offload=True)
    ddp = train(config, out=os.path.join(tmp, "ddp"), parallel=ParallelConfig(strategy="ddp"),
                **common)
    whole = train(config, out=os.path.join(tmp, "fsdp"), parallel=fsdp, **common)
    first = train(config, out=os.path.join(tmp, "split"), parallel=fsdp, stop_after=2,
                  **common)
    second = train(config, out=os.path.join(tmp, "split"), parallel=fsdp, resume="auto",
                   **common)
    return {"ddp_losses": ddp.losses, "fsdp_losses": whole.losses,
            "resumed_losses": first.losses + second.losses,
            "resume_exact": first.losses + second.losses == whole.losses,
            "fsdp_vs_ddp_max_abs": max(abs(a - b) for a, b in zip(ddp.losses, whole.losses)),
            "model_saved": bool(whole.model_dir and os.path.exists(
                os.path.join(whole.model_dir, "config.json")))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="1.3b")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny-siglip preset, seq 64, 2 steps: checks the script on a CPU")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=2, help="sequences per step")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=H100_SXM_BF16_DENSE_TFLOPS,
                        help="dense bf16 peak for MFU (default: H100 SXM, 989)")
    parser.add_argument("--json-out", help="write the figures as JSON here")
    parser.add_argument("--loop-check", metavar="DIR",
                        help="instead: run training.loop.train (tiny, ddp, fsdp + activation "
                             "checkpointing + CPU offload, stop and resume) on the device, "
                             "working in DIR")
    args = parser.parse_args()
    if args.tiny:
        args.preset, args.seq_len, args.warmup, args.steps = "tiny-siglip", 64, 1, 2
    device = torch.device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or "cpu"
    if args.loop_check:
        report = loop_check(device, args.loop_check)
        print(json.dumps(report, indent=2))
        if args.json_out:
            with open(args.json_out, "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=2)
        return 0 if report["resume_exact"] and report["model_saved"] else 1
    import transformers

    precision = "bf16 compute / fp32 reduce" if device.type == "cuda" else "fp32"
    print(f"{args.preset}, stage 2 (language model + adaptor train), FSDP on 1 {device.type} "
          f"({name}), {precision}, seq {args.seq_len} x batch {args.batch_size}, "
          f"{args.warmup} warm-up + {args.steps} timed steps; torch {torch.__version__}, "
          f"transformers {transformers.__version__}; MFU against {args.peak_tflops:g} TFLOP/s")
    results = [run_config(args, device, checkpointing) for checkpointing in (False, True)]
    base = results[0]
    print(f"\n{'activation checkpointing':26s} {'tokens/s':>10s} {'ratio':>6s} {'step s':>7s} "
          f"{'MFU':>6s} {'peak GiB':>9s} {'plan GiB (measured/plan)':>9s}  status")
    for row in results:
        gib = (row["peak_memory_bytes"] or 0) / 2 ** 30
        plan = (row["plan"] or {}).get("peak")
        plan_gib = f"{plan / 2 ** 30:9.2f}" if plan else f"{'-':>9s}"
        if plan and row["peak_memory_bytes"]:
            plan_gib += f" ({row['peak_memory_bytes'] / plan:4.2f}x)"
        ratio = row["tokens_per_s"] / base["tokens_per_s"] if base["tokens_per_s"] else float("nan")
        mfu = f"{100 * row['mfu']:5.1f}%" if row["mfu"] is not None else "     -"
        print(f"{'on' if row['activation_checkpointing'] else 'off (baseline)':26s} "
              f"{row['tokens_per_s']:10.0f} {ratio:5.2f}x {row['median_step_s']:7.3f} {mfu} "
              f"{gib:9.2f} {plan_gib}  {row['status']}")
    print(f"\ntrainable {base['trainable_params'] / 1e9:.3f}B of {base['total_params'] / 1e9:.3f}B "
          f"parameters; model FLOPs/token {base['model_flops_per_token'] / 1e9:.2f} G")
    for row in results:
        print(f"plan (activation checkpointing {row['activation_checkpointing']}): "
              f"{row['plan'] if row['plan'] is not None else 'training.plan not available'}")
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump({"device": name, "torch": torch.__version__, "preset": args.preset,
                       "seq_len": args.seq_len, "batch_size": args.batch_size,
                       "warmup": args.warmup, "steps": args.steps,
                       "peak_tflops": args.peak_tflops, "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
