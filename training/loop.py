"""THE training loop: every stage (and head fine-tuning) runs through `train`.

Read top to bottom: join the process group → load the model → freeze all but the stage's
groups → build the data streams → AdamW + LR schedule → maybe resume → for each optimizer
step pick its modality, accumulate micro-batches, clip, step, log, checkpoint → save the
model and the plots.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from training import checkpoint as ckpt
from training.data import (DataError, PackedTextBatches, SampleBatches, TextDocumentStream,
                           run_streams)
from training.distributed import (DistInfo, barrier, gather_objects, init_distributed,
                                  mean_across_ranks, shutdown, unwrap, wrap_model)
from training.metrics import MetricsLog, plot_metrics
from training.modality import LANGUAGE, MULTIMODAL, ModalityBatches
from training.stages import StageConfig
from training.trainable import apply_trainable

log = logging.getLogger(__name__)

# Config fields a resumed run may change without breaking "same curve as uninterrupted".
RESUMABLE_CHANGES = {"max_steps", "save_every", "log_every"}


@dataclass
class TrainResult:
    """What a finished (or stopped) `train` call leaves behind."""

    run_dir: str
    step: int
    losses: list[float] = field(default_factory=list)  # per optimizer step, this call only
    modalities: list[str] = field(default_factory=list)
    resumed_from: int = 0
    checkpoint: str | None = None
    model_dir: str | None = None
    trainable: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped_samples: dict[str, int] = field(default_factory=dict)


def build_data(config: StageConfig, *, processor: Any, collator: Any, data: Sequence[str],
               text: Sequence[str], info: DistInfo) -> ModalityBatches:
    """The stage's data: multimodal run streams and/or language text, per this rank."""
    problems = []
    if config.uses_multimodal and not data:
        problems.append(f"stage {config.stage} trains on multimodal data: pass --data RUN_DIR")
    if config.uses_language and not text:
        problems.append(f"stage {config.stage} mixes in language-only data (ratio "
                        f"{config.language_ratio_start}→{config.language_ratio_target}): pass "
                        "--text FILE, or --language-ratio 0 to train without it")
    if problems:
        raise DataError("; ".join(problems))
    common = dict(seed=config.seed, rank=info.rank, world_size=info.world_size,
                  shuffle_buffer=config.shuffle_buffer)
    sources: dict[str, Any] = {}
    if config.uses_multimodal:
        stream = run_streams(list(data), dict(config.mixture), **common)
        sources[MULTIMODAL] = SampleBatches(stream, config.batch_size, collator)
    if config.uses_language:
        docs = TextDocumentStream(list(text), **{**common, "seed": config.seed + 1})
        sources[LANGUAGE] = (PackedTextBatches(docs, processor.tokenizer, config.seq_len,
                                               config.batch_size)
                             if config.packing else SampleBatches(docs, config.batch_size,
                                                                  collator))
    return ModalityBatches(config, sources)


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _resume_state(out: str, resume: str | None) -> dict[str, Any] | None:
    if not resume:
        return None
    path = ckpt.latest_checkpoint(out) if resume == "auto" else resume
    if path is None:
        log.info("--resume auto: no checkpoint in %s, starting fresh", out)
        return None
    log.info("resuming from %s", path)
    return ckpt.load_checkpoint(path)


def _check_resumable(saved: dict[str, Any], config: StageConfig, info: DistInfo,
                     model_dir: str) -> None:
    old = saved["config"]
    new = config.to_dict()
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    problems = [f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in changed]
    if saved["model_dir"] != os.path.abspath(model_dir):
        problems.append(f"--model {saved['model_dir']} -> {os.path.abspath(model_dir)} "
                        "(frozen weights come from it)")
    if saved["world_size"] != info.world_size:
        problems.append(f"world size {saved['world_size']} -> {info.world_size} "
                        "(each rank's data position is saved)")
    if problems:
        raise ValueError("cannot resume: the run's settings changed (use a new --out):\n  - "
                         + "\n  - ".join(problems))


def train(config: StageConfig, *, model_dir: str, out: str, data: Sequence[str] = (),
          text: Sequence[str] = (), resume: str | None = None, device: str | None = None,
          progress: bool = True, load: Callable[[str], tuple[Any, Any]] | None = None,
          save_model: bool = True, stop_after: int | None = None,
          head: Any = None) -> TrainResult:
    """Train one stage; returns the losses and where the checkpoint and model went.

    model_dir: a model directory (``vlforge model init`` or a previous stage's RUN/model).
    out: the run directory (checkpoints/, metrics.jsonl, tensorboard/, plots, model/).
    resume: None (fresh; refuses a run dir that already has checkpoints), "auto" (continue
        from the newest checkpoint if any) or a checkpoint path.
    load: ``model_dir -> (model, processor)``; defaults to `model.loading.load_model`.
    stop_after: stop (with a checkpoint) after this many steps of this call, as a time-boxed
        or preempted job does; the schedule still follows `config.max_steps`.
    head: a `training.heads.HeadSpec` to fine-tune a classification/regression head
        (multimodal data only; put "heads" in the config's trainable groups).
    """
    config.validate()
    info = init_distributed(device)
    if resume is None and ckpt.latest_checkpoint(out):
        raise ValueError(f"{out} already holds checkpoints: pass --resume auto to continue "
                         "or choose a new --out")
    if load is None:
        from model.loading import load_model as load
    from model.collate import VLCollator, model_inputs

    if head is not None and config.uses_language:
        raise ValueError("head fine-tuning trains on multimodal runs only: set the language "
                         "ratio to 0")
    torch.manual_seed(config.seed)
    model, processor = load(model_dir)
    target_fn = None
    if head is not None:  # TaskModel(VLEncoder(model), head): forward(batch) -> TaskOutput
        model, target_fn = head.build(model)
    model.to(info.device)
    trainable = apply_trainable(model, config.trainable)
    model.train()
    collator = VLCollator(processor, max_length=config.seq_len, target_fn=target_fn)
    batches = build_data(config, processor=processor, collator=collator, data=data, text=text,
                         info=info)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)

    saved = _resume_state(out, resume)
    start = 0
    if saved is not None:
        _check_resumable(saved, config, info, model_dir)
        missing = set(n for n, p in model.named_parameters() if p.requires_grad) - \
            set(saved["model"])
        if missing:
            raise ValueError(f"checkpoint lacks trainable parameters: {sorted(missing)[:5]}...")
        model.load_state_dict(saved["model"], strict=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        batches.load_state(saved["data"][info.rank])
        ckpt.set_rng_state(saved["rng"][info.rank])
        start = int(saved["step"])

    ddp_model = wrap_model(model, info)
    metrics = MetricsLog(out, enabled=info.is_main, resume_step=start)
    if info.is_main:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "stage.json"), "w", encoding="utf-8") as handle:
            json.dump({"config": config.to_dict(), "model_dir": os.path.abspath(model_dir),
                       "data": list(data), "text": list(text), "world_size": info.world_size,
                       "trainable": trainable}, handle, indent=2)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if info.device.type == "cuda" and config.bf16 else contextlib.nullcontext())
    result = TrainResult(run_dir=out, step=start, resumed_from=start, trainable=trainable)
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=config.max_steps, initial=start, desc=f"stage {config.stage}",
                   unit="step", dynamic_ncols=True)

    def save(step: int) -> str | None:
        states = gather_objects({"data": batches.state(), "rng": ckpt.rng_state()}, info)
        path = None
        if info.is_main:
            path = ckpt.save_checkpoint(out, {
                "model": {n: p.detach().cpu() for n, p in model.named_parameters()
                          if p.requires_grad},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "rng": [s["rng"] for s in states],
                "data": [s["data"] for s in states],
                "config": config.to_dict(),
                "world_size": info.world_size,
                "model_dir": os.path.abspath(model_dir),
            })
            plot_metrics(out)
        barrier(info)
        return path

    try:
        end = config.max_steps if stop_after is None else min(config.max_steps,
                                                              start + stop_after)
        for step in range(start, end):
            began = time.perf_counter()
            modality = batches.modality(step)
            loss_sum, samples, tokens, data_time = 0.0, 0, 0, 0.0
            for micro in range(config.grad_accum):
                fetched = time.perf_counter()
                batch, count = batches.next_batch(modality)
                data_time += time.perf_counter() - fetched
                samples += count
                tokens += int(batch["attention_mask"].sum())
                batch = _to_device(batch, info.device)
                last = micro == config.grad_accum - 1
                sync = contextlib.nullcontext() if last or not info.enabled else ddp_model.no_sync()
                with sync:
                    with autocast:
                        output = (ddp_model(batch) if head is not None
                                  else ddp_model(**model_inputs(batch)))
                    loss = output.loss / config.grad_accum
                    loss.backward()
                loss_sum += float(loss.detach())
            grad_norm = (torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                         if config.grad_clip > 0 else torch.tensor(0.0))
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = mean_across_ranks(loss_sum, info)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"loss is {loss_value} at step {step + 1}")
            elapsed = time.perf_counter() - began
            result.step = step + 1
            result.losses.append(loss_value)
            result.modalities.append(modality)
            if (step + 1) % config.log_every == 0 or step + 1 == config.max_steps:
                metrics.write({
                    "step": step + 1, "loss": loss_value, "lr": lr, "modality": modality,
                    "language_ratio": config.language_ratio(step),
                    "grad_norm": float(grad_norm), "samples": samples * info.world_size,
                    "tokens": tokens * info.world_size,
                    "samples_per_s": samples * info.world_size / elapsed,
                    "tokens_per_s": tokens * info.world_size / elapsed,
                    "data_fraction": data_time / elapsed,
                })
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}",
                                samples_s=f"{samples * info.world_size / elapsed:.1f}",
                                mod=modality[:4])
            if (step + 1) % config.save_every == 0 and step + 1 < end:
                result.checkpoint = save(step + 1)
        if result.step > start or result.checkpoint is None:
            result.checkpoint = save(result.step)
        if save_model and info.is_main and result.step == config.max_steps:
            from model.build import save_model_dir

            trained = unwrap(ddp_model)
            result.model_dir = str(save_model_dir(
                trained.encoder.vl_model if head is not None else trained, processor,
                os.path.join(out, "model"),
                card={"trained_from": os.path.abspath(model_dir), "stage": config.stage,
                      "steps": result.step, "head": head.task if head is not None else None}))
            if head is not None:
                from training.heads import save_heads

                save_heads(trained, head, result.model_dir)
        result.skipped_samples = dict(collator.skipped)
        barrier(info)
    finally:
        if bar is not None:
            bar.close()
        metrics.close()
        shutdown(info)
    return result
