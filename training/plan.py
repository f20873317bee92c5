"""What a stage costs per GPU before anything runs: parameters, memory, micro-batch.

`plan_memory(preset, stage, gpus, gpu_memory_gb, strategy, ...)` returns a `MemoryPlan`:
per-GPU bytes for weights, gradients, optimizer states and activations, the peak they add up
to, the micro-batch and gradient accumulation that reach the paper's global batch, and
whether it fits. `plan_table` gives the four plans ddp/fsdp x activation checkpointing
off/on that ``vlforge train --plan`` prints. Parameter counts are exact: the preset's model is
instantiated on the meta device (no memory) and the stage's groups frozen as in training.

Assumptions (what the formulas model; each is how this repository trains, see
training/loop.py, training/distributed.py):

**Weights, gradients, optimizer** (AdamW: ``exp_avg`` + ``exp_avg_sq``, fp32, 8 B per
trainable parameter; frozen parameters get no gradient and no state).

- ddp: every rank holds the whole model in fp32 (4 B/param) and fp32 gradients (4 B per
  trainable param), plus DDP's gradient buckets, another 4 B per trainable param, when more
  than one process runs. With ``dtype="bf16"`` the loop uses autocast: each weight on the
  gradient path (the language model, the adaptor, any trained tower) gets a bf16 copy
  (2 B/param) that matmul saves for backward.
- fsdp (FSDP2 `fully_shard` per decoder layer and per vision tower, then the root): fp32
  master weights, gradients and AdamW states are sharded 1/gpus. Gathered ("unsharded")
  parameters in the compute dtype: the root unit (embeddings, lm_head, final norm, adaptor)
  for the whole step (FSDP2 does not reshard the root after forward) plus two units (the
  running one and the prefetched next one) of the largest size; while a unit's gradient is
  reduce-scattered it exists unsharded in the compute dtype and, with bf16 compute, again in
  fp32 (reduce dtype). Frozen parameters are sharded and gathered like the others.

**Activations** per micro-batch (b sequences of s tokens, one image of the stage's data per
sequence, every token real), counted tensor by tensor from what autograd saves in
transformers' Llama / SigLIP / SAM / DeepSeek-VL-hybrid modules with SDPA attention (no
s x s attention matrix is stored). ``a`` = bytes of an activation (2 for bf16, 4 for fp32);
RMSNorm computes in fp32, so what it saves of its input is 4 B either way. Per token and
decoder layer, with the layer's weights trained:

- RMSNorm x2: its input (4 B x h) + the normalised input to its weight (a x h) + the
  output that the next projections save (a x h);
- attention: rotated q, k, v, the SDPA output (a x (h + 2 kv + h)) + logsumexp
  (4 B x heads); the o_proj input is a view of the SDPA output;
- MLP (SwiGLU): gate, silu(gate), up, their product (4 x a x ffn).

With frozen weights (stage 1: the gradient still flows through the LM to the adaptor)
matmuls do not save their inputs: the norm outputs, the normalised inputs to the norm
weights and the down_proj input drop out.
This is Korthikanti et al. (2022)'s per-layer count sbh(34 + 5as/h) redone for this
architecture: no dropout masks, SwiGLU instead of a 4h GELU MLP, flash/SDPA attention
(their "selective recomputation" term 5as/h is never stored).

Loss: HF's causal-LM loss upcasts the logits to fp32 and runs log_softmax over the
vocabulary V; at the start of backward the model's logits (a x V, held by the output), the
saved log_softmax (4 B x V) and two fp32 gradient buffers of the same size (nll and
log_softmax backward) coexist: (a + 12) x V bytes per token, the largest single term
for DeepSeek's 102400-entry vocabulary.

Vision: frozen towers save nothing (no input needs a gradient); SAM's per-layer hidden
states are kept in the model output (the hybrid model asks for them to read the first
global-attention block). DeepSeek's adaptor saves its conv/LayerNorm inputs at 64x64 (neck)
and at the interpolated 96x96 / 48x48 grids (two passes through the shared stride-2 convs),
and the aligner its linear/GELU inputs. A trained SigLIP saves per token and layer
8 d + 2 i (d width, i MLP width).

Activation checkpointing (per decoder layer) keeps each layer's input (the residual stream:
a x h, fp32 under autocast) and recomputes one layer at a time in backward: L x input + one
layer's activations.

**Peak** (ddp): weights + optimizer states + the larger of two moments. (1) The start of
backward: the activations (or, with checkpointing, a layer's recomputation, whichever is
larger) + the first gradient written, lm_head's fp32 one, + DDP's buckets. (2) The end of
backward / the optimizer step: all gradients and, on GPU, the foreach AdamW step's one fp32
temporary of the trainable size. In between, activations are freed layer by layer as
gradients appear, so the peak is at one end.

**Peak** (fsdp): the fp32 shard + optimizer states + the largest of three moments, each
with what FSDP has gathered then (measured from a CUDA memory snapshot of the 1.3b step).
(1) The start of backward: the root and two decoder layers gathered (a vision tower is
gathered only during its own forward, before the LM's activations exist) + the stored
activations with the loss buffers, whose peak is log_softmax's backward, before lm_head's
gradient exists; or, with checkpointing, a layer's recomputation + the logits + lm_head's
unsharded gradient (compute dtype, waiting for the root's reduce-scatter), whichever is
larger. (2) The end of backward: the root and two units gathered + the shard's gradients +
the root's and the largest unit's unsharded gradients being reduced (compute dtype and fp32).
(3) The optimizer step: everything resharded; the shard's gradients + the foreach AdamW
temporary. ``weights`` still reports the shard + the gathered parameters.

Not modelled: CUDA context, NCCL buffers and allocator fragmentation — `fits` keeps
``headroom`` (10 %) of the GPU free for them.

Checked against measurement: tests/training/test_plan.py runs a real forward + backward +
AdamW step of the tiny preset on CPU (fp32, stages 1-3, with and without activation
checkpointing) under `torch.profiler` with ``profile_memory=True`` and compares the peak of
its memory timeline (every CPU allocation and free, tensors alive before the step included)
with `plan_memory(..., dtype="fp32", device="cpu")`: within 15 %. GPU figures (bf16, FSDP)
are compared by bench/train_gpu.py when a GPU is lent; on one H100 (1.3b, stage 2, seq 4096
x micro-batch 2, language rows) the planned peak is within 1 % of
`torch.cuda.max_memory_allocated` with and without checkpointing (pinned in
tests/training/test_plan.py).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

STRATEGIES = ("ddp", "fsdp")
DTYPES = {"bf16": 2, "bfloat16": 2, "fp32": 4, "float32": 4}
GIB = 1024 ** 3


# -- parameters ---------------------------------------------------------------------------
def meta_model(preset: str | None = None, *, model_dir: str | None = None):
    """The preset's (or a model directory's) model on the meta device: shapes, no memory."""
    import torch

    from model.presets import build_config, model_class_for

    if model_dir is not None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(model_dir))
    elif preset is not None:
        config = build_config(preset)
    else:
        raise ValueError("meta_model needs a preset or a model directory")
    with torch.device("meta"):
        return model_class_for(config)(config)


@dataclass(frozen=True)
class ParamCounts:
    """Exact parameter counts of a model with a stage's groups trainable."""

    total: int
    trainable: int
    by_group: dict[str, dict[str, int]]
    """{group: {"params": n, "trainable": n}} as `training.trainable.apply_trainable` counts."""
    root: int
    """Parameters outside the FSDP units (decoder layers, vision towers)."""
    root_trainable: int
    largest_unit: int
    """Parameters of the largest FSDP unit (a decoder layer or a vision tower)."""
    largest_trainable_unit: int
    grad_path: int
    """Parameters of modules the gradient flows through (their matmuls save bf16 weight
    copies under autocast): the language model and adaptor always, towers when trained."""
    largest_layer: int = 0
    """Parameters of the largest decoder layer: the FSDP units gathered while the language
    model's activations are alive (a vision tower is gathered only during its own forward,
    before them, and resharded after it)."""


def count_parameters(model, trainable_groups) -> ParamCounts:
    """Freeze `model` for the groups (as training does) and count what each part holds."""
    from training.trainable import apply_trainable, param_group

    by_group = apply_trainable(model, trainable_groups)
    units: list[tuple[str, Any]] = []
    for name, module in model.named_modules():
        if type(module).__name__.endswith("DecoderLayer") or \
                name.rsplit(".", 1)[-1] in ("vision_model", "high_res_vision_model"):
            units.append((name + ".", module))
    unit_sizes, unit_trainable, in_units, layer_sizes = [], [], set(), [0]
    for prefix, module in units:
        params = list(module.parameters())
        unit_sizes.append(sum(p.numel() for p in params))
        if type(module).__name__.endswith("DecoderLayer"):
            layer_sizes.append(unit_sizes[-1])
        unit_trainable.append(sum(p.numel() for p in params if p.requires_grad))
        in_units.update(id(p) for p in params)
    everything = list(model.named_parameters())
    root = [p for _, p in everything if id(p) not in in_units]
    trained_groups = {g for g, c in by_group.items() if c["trainable"]}
    grad_path = sum(p.numel() for n, p in everything
                    if param_group(n) in trained_groups | {"language_model", "adaptor"})
    return ParamCounts(
        total=sum(p.numel() for _, p in everything),
        trainable=sum(p.numel() for _, p in everything if p.requires_grad),
        by_group=by_group, root=sum(p.numel() for p in root),
        root_trainable=sum(p.numel() for p in root if p.requires_grad),
        largest_unit=max(unit_sizes, default=0),
        largest_trainable_unit=max(unit_trainable, default=0), grad_path=grad_path,
        largest_layer=max(layer_sizes))


# -- activations --------------------------------------------------------------------------
def activation_bytes(config, by_group: dict[str, dict[str, int]], *, micro_batch: int,
                     seq_len: int, act_bytes: int, checkpointing: bool,
                     images_per_sample: int = 1, autocast: bool = False) -> dict[str, int]:
    """Activation bytes by part (see the module docstring).

    "recomputed_layer" (activation checkpointing) is alive only while that layer's backward
    runs, when the loss buffers except the logits are gone: see `peak_activations`.
    """
    text = config.text_config
    h, f, layers = text.hidden_size, text.intermediate_size, text.num_hidden_layers
    heads = text.num_attention_heads
    kv = (getattr(text, "num_key_value_heads", None) or heads) * (h // heads)
    vocab = text.vocab_size
    a = act_bytes
    trains = {g for g, c in by_group.items() if c["trainable"]}
    lm_trained = "language_model" in trains
    tokens = micro_batch * seq_len
    norm = 4 * h + 4 + (2 * a * h if lm_trained else 0)  # + the rsqrt per token
    attention = a * (h + 2 * kv + h) + 4 * heads
    mlp = a * f * (4 if lm_trained else 3)
    layer = tokens * (2 * norm + attention + mlp)
    parts: dict[str, int] = {}
    if checkpointing:
        residual = 4 if autocast else a  # the residual stream stays fp32 under autocast
        parts["decoder_layers"] = layers * tokens * residual * h
        # one layer recomputed at a time in backward, after the loss buffers are freed
        parts["recomputed_layer"] = layer
    else:
        parts["decoder_layers"] = layers * layer
        parts["recomputed_layer"] = 0
    # final norm (its input; plus the output lm_head saves when lm_head trains)
    parts["final_norm"] = tokens * (4 * h + (2 * a * h if lm_trained else 0))
    parts["logits_and_loss"] = tokens * vocab * (a + 12)
    parts["inputs"] = micro_batch * seq_len * 8 * 3  # ids, labels, attention mask (int64)
    images = micro_batch * images_per_sample
    vision = config.vision_config
    side = vision.image_size // vision.patch_size
    d, i, vision_layers = vision.hidden_size, vision.intermediate_size, vision.num_hidden_layers
    parts["inputs"] += images * 3 * vision.image_size ** 2 * 4  # fp32 pixel values
    siglip = 0
    if "siglip" in trains:
        heads_v = vision.num_attention_heads  # + LayerNorm mean/rstd, SDPA logsumexp
        siglip = images * (side * side * (vision_layers * (a * (8 * d + 2 * i) + 16 + 4 * heads_v)
                                          + a * d + 8)
                           + 3 * vision.image_size ** 2 * a)  # patch conv input
    adaptor = 0
    if "adaptor" in trains:
        out = text.hidden_size
        if config.model_type == "deepseek_vl_hybrid":
            adaptor = images * side * side * a * (d + 4 * _high(config).output_channels
                                                  + 2 * out)
        else:
            adaptor = images * side * side * a * (d + 2 * out)
    parts["siglip"] = siglip
    if config.model_type == "deepseek_vl_hybrid":
        sam = _high(config)
        grid = sam.image_size // sam.patch_size
        width, c = sam.hidden_size, sam.output_channels
        parts["inputs"] += images * 3 * sam.image_size ** 2 * 4
        # hidden states of every SAM layer (+ embeddings), kept in the output
        parts["sam_hidden_states"] = images * (sam.num_hidden_layers + 1) * grid * grid * width * a
        if "adaptor" in trains:
            neck = grid * grid * (width + 3 * c + 4)  # conv / LayerNorm inputs, LN stats
            proj = 2 * ((4 * side) ** 2 * c + (2 * side) ** 2 * 2 * c)  # two passes
            alpha = side * side * 4 * c
            adaptor += images * a * (neck + proj + alpha)
    parts["adaptor"] = adaptor
    return parts


def activation_moments(parts: dict[str, int], *, tokens: int, vocab: int,
                       act_bytes: int) -> tuple[int, int]:
    """The two activation peaks: the start of backward (everything stored plus the loss
    buffers, at log_softmax's backward) and a checkpointed layer's recomputation (the loss
    buffers freed but the model output's logits, plus that layer's activations)."""
    stored = sum(v for k, v in parts.items() if k != "recomputed_layer")
    recompute = (stored - parts["logits_and_loss"] + tokens * vocab * act_bytes
                 + parts.get("recomputed_layer", 0))
    return stored, recompute


def peak_activations(parts: dict[str, int], *, tokens: int, vocab: int, act_bytes: int) -> int:
    """The larger of the two `activation_moments`."""
    return max(activation_moments(parts, tokens=tokens, vocab=vocab, act_bytes=act_bytes))


def _high(config):
    return config.high_res_vision_config


# -- the plan -----------------------------------------------------------------------------
@dataclass
class MemoryPlan:
    """Per-GPU memory of one training configuration (bytes), and whether it fits."""

    preset: str
    stage: int
    strategy: str
    gpus: int
    dtype: str
    seq_len: int
    micro_batch: int
    grad_accum: int
    global_batch: int
    """Sequences per optimizer step over all GPUs: micro_batch x grad_accum x gpus."""
    target_global_batch: int
    """The stage's global batch (paper Table 4 for 1.3b / 7b)."""
    activation_checkpointing: bool
    params_total: int
    params_trainable: int
    weights: int
    grads: int
    optimizer: int
    activations: int
    peak: int
    gpu_memory: int
    headroom: float
    fits: bool
    breakdown: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (bytes as integers)."""
        return dataclasses.asdict(self)


def _normalise(strategy: str, dtype: str) -> tuple[str, int]:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES} (got {strategy!r})")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)} (got {dtype!r})")
    return strategy, DTYPES[dtype]


def _stage_defaults(preset: str, stage: int):
    from training.stages import SCALES, stage_preset

    config = stage_preset(stage, preset if preset in SCALES else "tiny")
    return config, config.batch_size * config.grad_accum


def state_bytes(counts: ParamCounts, *, strategy: str, gpus: int, act_bytes: int) -> dict[str, int]:
    """Per-GPU weights / gradients / optimizer bytes (see the module docstring)."""
    bf16 = act_bytes == 2
    if strategy == "ddp":
        weights = 4 * counts.total + (2 * counts.grad_path if bf16 else 0)
        grads = 4 * counts.trainable + (4 * counts.trainable if gpus > 1 else 0)
        optimizer = 8 * counts.trainable
        return {"weights": weights, "grads": grads, "optimizer": optimizer,
                "weights.fp32": 4 * counts.total,
                "weights.autocast_copies": weights - 4 * counts.total,
                "grads.ddp_buckets": 4 * counts.trainable if gpus > 1 else 0,
                "grads.transient": 0}
    def shard(n: int) -> int:
        return math.ceil(n / gpus)

    gathered = act_bytes * (counts.root + 2 * counts.largest_unit)
    weights = 4 * shard(counts.total) + gathered
    # while the LM's activations are alive: the root + the running and the prefetched layer
    gathered_lm = act_bytes * (counts.root + 2 * (counts.largest_layer or counts.largest_unit))
    transient = (act_bytes + (4 if bf16 else 0)) * (counts.root_trainable
                                                    + counts.largest_trainable_unit)
    return {"weights": weights, "grads": 4 * shard(counts.trainable) + transient,
            "optimizer": 8 * shard(counts.trainable),
            "weights.fp32_shard": 4 * shard(counts.total), "weights.gathered": gathered,
            "weights.gathered_in_lm": gathered_lm,
            "grads.transient": transient}


def plan_memory(preset: str, stage: int, gpus: int = 1, gpu_memory_gb: float = 80.0,
                strategy: str = "fsdp", seq_len: int | None = None,
                micro_batch: int | None = None, activation_checkpointing: bool = False,
                dtype: str = "bf16", *, images_per_sample: int = 1,
                global_batch: int | None = None, headroom: float = 0.10,
                device: str = "cuda", _counts: tuple | None = None) -> MemoryPlan:
    """The per-GPU memory plan of one configuration.

    seq_len / global_batch: default to the stage's (paper Table 4 for 1.3b and 7b).
    micro_batch: None picks the largest divisor of the per-GPU share of the global batch
        that fits (1 when none does); gradient accumulation makes up the rest.
    dtype: "bf16" (bf16 compute: autocast for ddp, MixedPrecisionPolicy for fsdp) or "fp32".
    device: "cuda" counts the foreach AdamW step's temporary buffer, "cpu" does not (the
        CPU AdamW steps one tensor at a time).
    """
    strategy, act = _normalise(strategy, dtype)
    if gpus < 1:
        raise ValueError(f"gpus must be >= 1 (got {gpus})")
    stage_config, target = _stage_defaults(preset, stage)
    seq_len = seq_len or stage_config.seq_len
    target = global_batch or target
    if _counts is None:
        model = meta_model(preset)
        _counts = (model.config, count_parameters(model, stage_config.trainable))
    config, counts = _counts
    per_gpu = math.ceil(target / gpus)
    notes: list[str] = []
    if target % gpus:
        notes.append(f"global batch {target} is not a multiple of {gpus} GPUs: "
                     f"{per_gpu} per GPU gives {per_gpu * gpus}")
    states = state_bytes(counts, strategy=strategy, gpus=gpus, act_bytes=act)
    gpu_memory = int(gpu_memory_gb * GIB)

    def build(micro: int) -> MemoryPlan:
        parts = activation_bytes(config, counts.by_group, micro_batch=micro, seq_len=seq_len,
                                 act_bytes=act, checkpointing=activation_checkpointing,
                                 images_per_sample=images_per_sample,
                                 autocast=strategy == "ddp" and act == 2)
        stored, recompute = activation_moments(parts, tokens=micro * seq_len,
                                               vocab=config.text_config.vocab_size,
                                               act_bytes=act)
        activations = max(stored, recompute)
        text = config.text_config
        lm_trained = bool(counts.by_group.get("language_model", {}).get("trainable"))
        step_temp = 0
        if device == "cuda":  # foreach AdamW: one fp32 temporary of the (local) trainable size
            step_temp = 4 * (counts.trainable if strategy == "ddp"
                             else math.ceil(counts.trainable / gpus))
        persistent_grads = states["grads"] - states["grads.transient"]
        moments: dict[str, int] = {}
        if strategy == "ddp":
            # lm_head's fp32 gradient is the first one written; DDP's buckets always exist
            backward_start = (activations + states["grads.ddp_buckets"]
                              + (4 * text.vocab_size * text.hidden_size if lm_trained else 0))
            step_end = states["grads"] + step_temp
            resident = states["weights"] + states["optimizer"]
            moments = {"peak.backward_start": backward_start, "peak.optimizer_step": step_end}
        else:
            # Measured on an H100 (bench/train_gpu.py, 1.3b): what is gathered depends on the
            # moment. (1) backward start: the root and two decoder layers are gathered; the
            # loss buffers peak in log_softmax's backward, before lm_head's gradient exists;
            # that gradient (unsharded, compute dtype, waiting for the root's reduce-scatter)
            # is alive from then on, so during a checkpointed layer's recomputation.
            # (2) end of backward: the root's and a unit's unsharded gradients, in the compute
            # dtype and in fp32, being reduce-scattered. (3) optimizer step: FSDP has
            # resharded everything (no gathered weights, no unsharded gradients); the shard's
            # gradients + the foreach AdamW temporary.
            lm_head_grad = act * text.vocab_size * text.hidden_size if lm_trained else 0
            backward_start = (states["weights.gathered_in_lm"]
                              + max(stored, recompute + lm_head_grad))
            backward_end = (states["weights.gathered"] + persistent_grads
                            + states["grads.transient"])
            step_end = persistent_grads + step_temp
            resident = states["weights.fp32_shard"] + states["optimizer"]
            moments = {"peak.backward_start": backward_start, "peak.backward_end": backward_end,
                       "peak.optimizer_step": step_end}
        peak = resident + max(moments.values())
        accum = math.ceil(per_gpu / micro)
        breakdown = {**{k: v for k, v in states.items() if "." in k},
                     **{f"activations.{k}": v for k, v in parts.items()},
                     **moments, "peak.resident": resident,
                     "persistent_grads": persistent_grads}
        return MemoryPlan(
            preset=preset, stage=stage, strategy=strategy, gpus=gpus, dtype=dtype,
            seq_len=seq_len, micro_batch=micro, grad_accum=accum,
            global_batch=micro * accum * gpus, target_global_batch=target,
            activation_checkpointing=activation_checkpointing, params_total=counts.total,
            params_trainable=counts.trainable, weights=states["weights"],
            grads=states["grads"], optimizer=states["optimizer"], activations=activations,
            peak=peak, gpu_memory=gpu_memory, headroom=headroom,
            fits=peak <= gpu_memory * (1 - headroom), breakdown=breakdown, notes=list(notes))

    if micro_batch is not None:
        return build(micro_batch)
    candidates = [m for m in range(1, per_gpu + 1) if per_gpu % m == 0]
    best = build(1)
    for micro in candidates[1:]:
        plan = build(micro)
        if not plan.fits:
            break
        best = plan
    return best


def plan_table(preset: str, stage: int, gpus: int = 1, gpu_memory_gb: float = 80.0,
               seq_len: int | None = None, micro_batch: int | None = None,
               dtype: str = "bf16", **kwargs: Any) -> list[MemoryPlan]:
    """The plans for ddp and fsdp, each without and with activation checkpointing."""
    from training.stages import SCALES, stage_preset

    model = meta_model(preset)
    trainable = stage_preset(stage, preset if preset in SCALES else "tiny").trainable
    counts = (model.config, count_parameters(model, trainable))
    return [plan_memory(preset, stage, gpus, gpu_memory_gb, strategy, seq_len, micro_batch,
                        checkpointing, dtype, _counts=counts, **kwargs)
            for strategy in STRATEGIES for checkpointing in (False, True)]
