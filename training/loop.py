"""THE training loop: every stage (and head fine-tuning) runs through `train`.

Read top to bottom: join the process group → open the model without allocating it (meta
device) → freeze all but the stage's groups → pick DDP or FSDP, checkpoint/compile the
decoder layers, shard → each rank materialises its part of the weights → build the data
streams (in loader workers if asked) → AdamW + LR schedule → maybe resume → for each
optimizer step pick its modality, accumulate micro-batches, clip, step, log, checkpoint →
save the model and the plots. DDP and FSDP are a setting (`ParallelConfig.strategy`), not
two loops: they differ in how the model is wrapped and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from training import checkpoint as ckpt
from training.data import (
    DataError,
    PackedTextBatches,
    SampleBatches,
    TextDocumentStream,
    run_streams,
)
from training.distributed import (
    DistInfo,
    apply_activation_checkpointing,
    barrier,
    clip_grad_norm,
    compile_layers,
    gather_objects,
    init_distributed,
    is_sharded,
    mean_across_ranks,
    shard_model,
    shutdown,
    unwrap,
    wrap_model,
)
from training.loader import BatchLoader, redivide_loader_states
from training.metrics import MetricsLog, plot_metrics
from training.modality import LANGUAGE, MULTIMODAL, ModalityBatches
from training.parallel import (
    ParallelConfig,
    choose_strategy,
    default_activation_checkpointing,
)
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
    strategy: str = "ddp"


def build_data(config: StageConfig, *, processor: Any, collator: Any, data: Sequence[str],
               text: Sequence[str], info: DistInfo, workers: int = 0) -> ModalityBatches:
    """The stage's data: multimodal run streams and/or language text, per this rank.

    workers: loader worker processes per source (`training.loader`); 0 reads on this thread.
    """
    problems = []
    if config.uses_multimodal and not data:
        problems.append(f"stage {config.stage} trains on multimodal data: pass --data RUN_DIR")
    if config.uses_language and not text:
        problems.append(f"stage {config.stage} mixes in language-only data (ratio "
                        f"{config.language_ratio_start}→{config.language_ratio_target}): pass "
                        "--text FILE, or --language-ratio 0 to train without it")
    if problems:
        raise DataError("; ".join(problems))
    common = dict(seed=config.seed, shuffle_buffer=config.shuffle_buffer)
    data, text = list(data), list(text)

    def multimodal(rank: int, world_size: int) -> SampleBatches:
        stream = run_streams(data, dict(config.mixture), rank=rank, world_size=world_size,
                             subset=config.subset, **common)
        return SampleBatches(stream, config.batch_size, collator)

    def language(rank: int, world_size: int) -> Any:
        docs = TextDocumentStream(text, rank=rank, world_size=world_size,
                                  **{**common, "seed": config.seed + 1})
        if config.packing:
            return PackedTextBatches(docs, processor.tokenizer, config.seq_len,
                                     config.batch_size)
        return SampleBatches(docs, config.batch_size, collator)

    loader = dict(rank=info.rank, world_size=info.world_size, workers=workers,
                  skipped=collator.skipped)
    sources: dict[str, Any] = {}
    if config.uses_multimodal:
        sources[MULTIMODAL] = BatchLoader(multimodal, **loader)
    if config.uses_language:
        sources[LANGUAGE] = BatchLoader(language, **loader)
    return ModalityBatches(config, sources)


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _resume_path(root: str, out: str, resume: str | None) -> str | None:
    if not resume:
        return None
    path = ckpt.latest_checkpoint(out, root) if resume == "auto" else resume
    if path is None:
        log.info("--resume auto: no checkpoint in %s, starting fresh", root)
        return None
    log.info("resuming from %s", path)
    return path


def _check_resumable(saved: dict[str, Any], config: StageConfig, info: DistInfo,
                     model_dir: str) -> None:
    old = saved["config"]
    new = config.to_dict()
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    problems = [f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in changed]
    if saved["model_dir"] != os.path.abspath(model_dir):
        problems.append(f"--model {saved['model_dir']} -> {os.path.abspath(model_dir)} "
                        "(frozen weights come from it)")
    if problems:
        raise ValueError("cannot resume: the run's settings changed (use a new --out):\n  - "
                         + "\n  - ".join(problems))
    if saved["world_size"] != info.world_size:
        log.warning("resuming a %d-rank checkpoint on %d ranks: weights and optimizer are "
                    "re-sharded exactly; the data position is re-divided (same epoch and "
                    "amount consumed, not the same items) and the global batch changes",
                    saved["world_size"], info.world_size)


def _restore_data(batches: ModalityBatches, saved: list[dict[str, Any]], info: DistInfo,
                  workers: int) -> None:
    """Each source's position: exact at the same layout, re-divided otherwise."""
    for name, source in batches.sources.items():
        states = [rank_state[name] for rank_state in saved if name in rank_state]
        if not states:
            continue
        same = (len(saved) == info.world_size
                and states[info.rank].get("share_count") == source.share_count)
        source.load_state(states[info.rank] if same else
                          redivide_loader_states(states, info.rank, info.world_size, workers))


def _vl_model(model: Any, head: Any) -> Any:
    """The model under a task head (a VL model, or the CNN hybrid encoder itself)."""
    return getattr(model.encoder, "vl_model", model.encoder) if head is not None else model


def _scale_of(vl_model: Any) -> str:
    return str(getattr(vl_model.config, "vlforge_preset", "") or "")


def train(config: StageConfig, *, model_dir: str, out: str, data: Sequence[str] = (),
          text: Sequence[str] = (), resume: str | None = None, device: str | None = None,
          progress: bool = True, load: Callable[[str], tuple[Any, Any]] | None = None,
          save_model: bool = True, stop_after: int | None = None,
          head: Any = None, parallel: ParallelConfig | None = None,
          checkpoint_dir: str | None = None) -> TrainResult:
    """Train one stage; returns the losses and where the checkpoint and model went.

    model_dir: a model directory (``vlforge model init`` or a previous stage's RUN/model).
    out: the run directory (checkpoints/, metrics.jsonl, tensorboard/, plots, model/).
    resume: None (fresh; refuses a run dir that already has checkpoints), "auto" (continue
        from the newest checkpoint if any) or a checkpoint path.
    load: ``model_dir -> (model, processor)`` of a whole model; by default the model is
        opened on the meta device and each rank loads only its part (`training.sharded_load`).
    stop_after: stop (with a checkpoint) after this many steps of this call, as a time-boxed
        or preempted job does; the schedule still follows `config.max_steps`.
    head: a `training.heads.HeadSpec` to fine-tune a classification/regression head
        (multimodal data only; put "heads" in the config's trainable groups).
    parallel: DDP/FSDP, activation checkpointing, compile, loader workers (`ParallelConfig`).
    checkpoint_dir: where checkpoints go (a path or fsspec URL); default RUN/checkpoints.
    """
    config.validate()
    parallel = (parallel or ParallelConfig()).validate()
    root = ckpt.checkpoint_root(out, checkpoint_dir)
    info = init_distributed(device)
    if resume is None and ckpt.latest_checkpoint(out, root):
        raise ValueError(f"{root} already holds checkpoints: pass --resume auto to continue "
                         "or choose a new --out")
    from model.collate import VLCollator, model_inputs

    if head is not None and config.uses_language:
        raise ValueError("head fine-tuning trains on multimodal runs only: set the language "
                         "ratio to 0")
    torch.manual_seed(config.seed)
    from model.cnn_dir import is_cnn_dir, load_cnn

    cnn = is_cnn_dir(model_dir)  # the seed's CNN hybrid: another encoder under a task head
    if cnn and head is None:
        raise ValueError(f"{model_dir} is a cnn-hybrid model: it trains with a task head "
                         "(--head classification|regression)")
    if load is None and cnn:
        model, processor = load_cnn(model_dir)
    elif load is None:
        from training.sharded_load import empty_model

        model, processor = empty_model(model_dir)
    else:
        model, processor = load(model_dir)
    target_fn = None
    if head is not None:  # TaskModel(encoder, head): forward(batch) -> TaskOutput
        model, target_fn = head.build(model)
        if cnn:  # a CNN directory trained before continues with its head (--subset first)
            from training.heads import restore_heads

            restore_heads(model, model_dir, head)
    vl_model = _vl_model(model, head)
    if parallel.attn_implementation:
        vl_model.set_attn_implementation({"text_config": parallel.attn_implementation})
    # no KV cache while training: it is never read, and recomputed layers would append twice
    text_config = getattr(getattr(vl_model, "config", None), "text_config", None)
    use_cache = getattr(text_config, "use_cache", None)
    if text_config is not None:
        text_config.use_cache = False
    trainable = apply_trainable(model, config.trainable)
    count = {on: sum(p.numel() for p in model.parameters() if p.requires_grad == on)
             for on in (True, False)}
    strategy, why = choose_strategy(parallel.strategy, trainable=count[True],
                                    frozen=count[False], device=info.device)
    log.info("strategy %s (%s)", strategy, why)
    if strategy == "fsdp" and head is not None:
        raise ValueError("head fine-tuning runs with --strategy ddp (heads are small)")
    checkpointing = (parallel.activation_checkpointing
                     if parallel.activation_checkpointing is not None
                     else default_activation_checkpointing(_scale_of(vl_model), config.stage))
    if checkpointing:
        log.info("activation checkpointing on %d decoder layers",
                 apply_activation_checkpointing(model))
    if parallel.compile:
        log.info("torch.compile on %d decoder layers", compile_layers(model))
    on_meta = any(p.is_meta for p in model.parameters())
    if not on_meta:
        model.to("cpu" if parallel.cpu_offload else info.device)
    if strategy == "fsdp":
        shard_model(model, info, bf16=config.bf16, cpu_offload=parallel.cpu_offload)
    weights_read = None  # bytes of the weight files this rank read (its shard, under FSDP)
    if on_meta:
        from training.sharded_load import materialize

        weights_read = materialize(model, model_dir,
                                   "cpu" if parallel.cpu_offload else info.device,
                                   prefix="encoder.vl_model." if head is not None else "")
    weights_read_by_rank = gather_objects(weights_read, info)
    model.train()
    collator = VLCollator(processor, max_length=config.seq_len, target_fn=target_fn)
    batches = build_data(config, processor=processor, collator=collator, data=data, text=text,
                         info=info, workers=parallel.loader_workers)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)

    start = 0
    path = _resume_path(root, out, resume)
    if path is not None:
        saved = ckpt.load_train_state(path)
        _check_resumable(saved, config, info, model_dir)
        ckpt.load_into(path, model, optimizer)
        scheduler.load_state_dict(saved["scheduler"])
        _restore_data(batches, saved["data"], info, parallel.loader_workers)
        rngs = saved["rng"]
        ckpt.set_rng_state(rngs[info.rank] if info.rank < len(rngs) else rngs[0])
        start = int(saved["step"])

    ddp_model = wrap_model(model, info) if strategy == "ddp" else model
    metrics = MetricsLog(out, enabled=info.is_main, resume_step=start)
    if info.is_main:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "stage.json"), "w", encoding="utf-8") as handle:
            json.dump({"config": config.to_dict(), "model_dir": os.path.abspath(model_dir),
                       "data": list(data), "text": list(text), "world_size": info.world_size,
                       "strategy": strategy, "parallel": dataclasses.asdict(parallel),
                       "activation_checkpointing": checkpointing, "checkpoints": root,
                       "weights_read_bytes": weights_read_by_rank,
                       "trainable": trainable}, handle, indent=2)
    # FSDP casts to bf16 itself (MixedPrecisionPolicy); DDP computes under autocast
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if info.device.type == "cuda" and config.bf16 and strategy == "ddp"
                else contextlib.nullcontext())
    result = TrainResult(run_dir=out, step=start, resumed_from=start, trainable=trainable,
                         strategy=strategy)
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=config.max_steps, initial=start, desc=f"stage {config.stage}",
                   unit="step", dynamic_ncols=True)

    def save(step: int) -> str:
        states = gather_objects({"data": batches.state(), "rng": ckpt.rng_state()}, info)
        train_state = {
            "scheduler": scheduler.state_dict(), "step": step,
            "rng": [s["rng"] for s in states], "data": [s["data"] for s in states],
            "config": config.to_dict(), "world_size": info.world_size,
            "model_dir": os.path.abspath(model_dir), "strategy": strategy,
        }
        saved_at = ckpt.save_checkpoint(root, step, ddp_model, optimizer, train_state,
                                        is_main=info.is_main, barrier=lambda: barrier(info))
        if info.is_main:
            plot_metrics(out)
        return saved_at

    try:
        end = config.max_steps if stop_after is None else min(config.max_steps,
                                                              start + stop_after)
        for step in range(start, end):
            began = time.perf_counter()
            modality = batches.modality(step)
            loss_sum, samples, tokens, data_time = 0.0, 0, 0, 0.0
            for micro in range(config.grad_accum):
                fetched = time.perf_counter()
                batch, count_ = batches.next_batch(modality)
                data_time += time.perf_counter() - fetched
                samples += count_
                tokens += int(batch["attention_mask"].sum())
                batch = _to_device(batch, info.device)
                last = micro == config.grad_accum - 1
                # DDP skips the all-reduce until the last micro-batch; FSDP reduce-scatters
                # each one (keeping whole gradients between them would undo the sharding)
                sync = (ddp_model.no_sync() if info.enabled and not last and strategy == "ddp"
                        else contextlib.nullcontext())
                with sync:
                    with autocast:
                        output = (ddp_model(batch) if head is not None
                                  else ddp_model(**model_inputs(batch)))
                    loss = output.loss / config.grad_accum
                    loss.backward()
                loss_sum += float(loss.detach())
            grad_norm = clip_grad_norm(params, config.grad_clip) if config.grad_clip > 0 else 0.0
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
                    "grad_norm": grad_norm, "samples": samples * info.world_size,
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
        batches.close()
        if result.step > start or result.checkpoint is None:
            result.checkpoint = save(result.step)
        if text_config is not None:
            text_config.use_cache = use_cache
        if save_model and result.step == config.max_steps:
            result.model_dir = _save_final_model(
                ddp_model, head, processor, info, model_dir, out,
                card={"trained_from": os.path.abspath(model_dir), "stage": config.stage,
                      "steps": result.step, "strategy": strategy,
                      "head": head.task if head is not None else None})
        result.skipped_samples = dict(collator.skipped)
        barrier(info)
    finally:
        batches.close()
        if bar is not None:
            bar.close()
        metrics.close()
        shutdown(info)
    return result


def _save_final_model(model: Any, head: Any, processor: Any, info: DistInfo, model_dir: str,
                      out: str, card: dict[str, Any]) -> str | None:
    """RUN/model as a transformers `save_pretrained` directory (rank 0 writes it).

    Under FSDP every rank takes part in gathering the full state dict, which only rank 0
    keeps (on the CPU) and loads into a fresh model skeleton to save.
    """
    from model.build import save_model_dir

    trained = unwrap(model)
    target = os.path.join(out, "model")
    if is_sharded(trained):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
        )

        from training.sharded_load import empty_model

        full = get_model_state_dict(trained, options=StateDictOptions(full_state_dict=True,
                                                                      cpu_offload=True))
        if not info.is_main:
            return None
        clean, _ = empty_model(model_dir)
        clean.load_state_dict(full, strict=True, assign=True)
        return str(save_model_dir(clean, processor, target, card=card))
    if not info.is_main:
        return None
    inner = _vl_model(trained, head)
    if not hasattr(inner, "save_pretrained"):  # the CNN hybrid: its own directory layout
        from model.cnn_dir import save_cnn_dir

        saved = str(save_cnn_dir(inner, processor, target, card=card))
    else:
        saved = str(save_model_dir(inner, processor, target, card=card))
    if head is not None:
        from training.heads import save_heads

        save_heads(trained, head, saved)
    return saved
