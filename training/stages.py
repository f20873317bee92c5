"""A training stage is data: what trains, how fast, on what, for how long.

`StageConfig` holds every knob of one stage; `stage_preset(stage, scale)` gives the paper's
Table 4 settings (``scale="1.3b"`` / ``"7b"``) or the same recipe scaled down so a tiny
model shows it working on a CPU in seconds (``scale="tiny"``). `StageConfig.validate`
checks everything up front and raises one `StageConfigError` listing every problem.

The three DeepSeek-VL stages differ only in these fields:

====================  ==================  ===========================  ==================
                      1: adaptor warm-up  2: joint VL pretraining      3: SFT
trainable groups      adaptor             language_model + adaptor     + siglip (SAM frozen)
schedule, warm-up     cosine              step (80%/90% milestones)    cosine
packing               no                  yes (text)                   no
language ratio        0 (no text)         1.0 → 0.7 over a warm-up     ≈0.48 (text dialogue)
====================  ==================  ===========================  ==================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

# Parameter groups the stages name. Each group is a set of parameter-name prefixes; a
# parameter belongs to the group with the LONGEST matching prefix.
PARAM_GROUPS: dict[str, tuple[str, ...]] = {
    # the LLaMA-style language model; lm_head is tied to embed_tokens in the presets but
    # listed so an untied checkpoint still trains its head with the LM
    "language_model": ("model.language_model.", "lm_head."),
    # the paper's adaptor: the hybrid split-MLP aligner plus what DeepSeek added after SAM:
    # the extra neck on the first global-attention block (upstream "neck_hd"), the two
    # stride-2 convs (96x96x256 -> 24x24x1024, upstream "downsamples") and their mixing
    # weight ("hd_alpha_downsamples"). SAM's own neck
    # (model.high_res_vision_model.vision_encoder.neck.*) is NOT adaptor: it is part of the
    # pretrained SAM-B encoder (it makes the 64x64x256 map) and stays frozen with SAM.
    "adaptor": ("model.aligner.", "model.high_res_vision_neck.", "model.high_res_vision_proj.",
                "model.high_res_vision_alpha"),
    "siglip": ("model.vision_model.",),
    "sam": ("model.high_res_vision_model.",),
    # task heads (model/heads.py): TaskModel(encoder=VLEncoder(vl_model), head) — the head
    # and the encoder's attention pool; the VL model's own names are matched after
    # stripping "encoder.vl_model." (see training.trainable.param_group)
    "heads": ("head.", "encoder.pool."),
    # the seed's CNN hybrid (model/cnn_baseline.py) as a task model's encoder
    "cnn": ("encoder.high_res_encoder.", "encoder.low_res_encoder.", "encoder.adaptor.",
            "encoder.language_model."),
}

SCHEDULES = ("cosine", "step", "constant")


class StageConfigError(ValueError):
    """A stage configuration with one or more problems (all listed in the message)."""


@dataclass(frozen=True)
class StageConfig:
    """Everything that makes one training stage what it is (see the module docstring)."""

    stage: int
    """Which DeepSeek-VL stage this is: 1 adaptor warm-up, 2 joint pretraining, 3 SFT."""

    trainable: tuple[str, ...]
    """Names of `PARAM_GROUPS` whose parameters train; every other parameter is frozen."""

    lr: float
    """Peak learning rate, reached at the end of the warm-up."""

    schedule: str = "cosine"
    """LR decay after warm-up: "cosine" (to `min_lr_ratio`), "step" (x`step_gamma` at each
    milestone), or "constant"."""

    warmup_steps: int = 0
    """Optimizer steps of linear LR warm-up from 0 to `lr`."""

    min_lr_ratio: float = 0.1
    """Cosine schedule: the LR at the last step as a fraction of `lr`."""

    step_milestones: tuple[float, ...] = (0.8, 0.9)
    """Step schedule: fractions of `max_steps` at which the LR is multiplied by `step_gamma`
    (DeepSeek LLM's multi-step schedule: 80% and 90%)."""

    step_gamma: float = 0.316
    """Step schedule: factor applied at each milestone (0.316 twice ≈ 10% at the end)."""

    max_steps: int = 100
    """Optimizer steps in the stage (the CLI's --max-steps overrides it)."""

    batch_size: int = 4
    """Samples (or packed sequences) per micro-batch, per process."""

    grad_accum: int = 1
    """Micro-batches per optimizer step; the global batch is
    batch_size x grad_accum x world size."""

    seq_len: int = 512
    """Maximum tokens per sequence (image tokens included); longer inputs are truncated."""

    packing: bool = False
    """Pack language-only text into full `seq_len` sequences (documents joined by EOS)
    instead of one padded document per row."""

    mixture: Mapping[str, float] = field(default_factory=dict)
    """Sampling weight per multimodal run directory, keyed by the directory's base name;
    runs not named weigh 1.0."""

    language_ratio_start: float = 0.0
    """Fraction of optimizer steps that are language-only at step 0."""

    language_ratio_target: float = 0.0
    """Fraction of language-only steps after the ratio warm-up (paper stage 2: 0.7)."""

    language_ratio_warmup_steps: int = 0
    """Steps over which the language ratio moves linearly from start to target."""

    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas (paper: 0.9, 0.95)."""

    weight_decay: float = 0.0
    """AdamW weight decay (paper: 0)."""

    grad_clip: float = 1.0
    """Clip the global gradient norm to this value (0 disables)."""

    shuffle_buffer: int = 256
    """Samples held by the streaming shuffle buffer (per stream, per process)."""

    seed: int = 0
    """Seeds data order, modality choice and parameter-free randomness; a resumed run
    reproduces the uninterrupted one exactly."""

    log_every: int = 1
    """Write a metrics row every N optimizer steps."""

    save_every: int = 50
    """Write a checkpoint every N optimizer steps (and always at the end)."""

    bf16: bool = True
    """Use bf16 autocast when training on a GPU (ignored on CPU)."""

    subset: int | None = None
    """Train on only N samples of each run's train split (a fixed pick, the same every
    epoch): the seed design's "small subset first"; None trains on all of it."""

    # -- derived ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return {1: "adaptor-warmup", 2: "joint-pretraining", 3: "sft"}.get(self.stage, "custom")

    def replace(self, **changes: Any) -> "StageConfig":
        """A validated copy with `changes` applied."""
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mixture"] = dict(self.mixture)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StageConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StageConfigError("unknown stage config field(s): " + ", ".join(unknown))
        values = dict(data)
        for name in ("trainable", "step_milestones", "betas"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values).validate()

    def validate(self) -> "StageConfig":
        """Return self, or raise one `StageConfigError` listing every problem."""
        problems: list[str] = []
        if self.stage not in (1, 2, 3):
            problems.append(f"stage must be 1, 2 or 3 (got {self.stage!r})")
        unknown = [g for g in self.trainable if g not in PARAM_GROUPS]
        if unknown:
            problems.append(f"unknown trainable group(s) {unknown}; known: {sorted(PARAM_GROUPS)}")
        if not self.trainable:
            problems.append("trainable is empty: nothing would train")
        if not self.lr > 0:
            problems.append(f"lr must be > 0 (got {self.lr})")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES} (got {self.schedule!r})")
        for name in ("max_steps", "batch_size", "grad_accum", "seq_len", "log_every",
                     "save_every", "shuffle_buffer"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                problems.append(f"{name} must be an integer >= 1 (got {getattr(self, name)!r})")
        for name in ("warmup_steps", "language_ratio_warmup_steps"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0):
                problems.append(f"{name} must be an integer >= 0 (got {getattr(self, name)!r})")
        if not 0 <= self.min_lr_ratio <= 1:
            problems.append(f"min_lr_ratio must be within 0..1 (got {self.min_lr_ratio})")
        if any(not 0 < m < 1 for m in self.step_milestones) or \
                list(self.step_milestones) != sorted(self.step_milestones):
            problems.append(f"step_milestones must be increasing fractions within (0, 1) "
                            f"(got {list(self.step_milestones)})")
        if not 0 < self.step_gamma <= 1:
            problems.append(f"step_gamma must be within (0, 1] (got {self.step_gamma})")
        for name in ("language_ratio_start", "language_ratio_target"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be within 0..1 (got {getattr(self, name)})")
        if self.subset is not None and not (isinstance(self.subset, int) and self.subset >= 1):
            problems.append(f"subset must be None or an integer >= 1 (got {self.subset!r})")
        bad_weights = {k: v for k, v in self.mixture.items() if not v >= 0}
        if bad_weights:
            problems.append(f"mixture weights must be >= 0 (got {bad_weights})")
        if len(self.betas) != 2 or any(not 0 <= b < 1 for b in self.betas):
            problems.append(f"betas must be two numbers within [0, 1) (got {self.betas})")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay})")
        if self.grad_clip < 0:
            problems.append(f"grad_clip must be >= 0 (got {self.grad_clip})")
        if problems:
            raise StageConfigError("invalid stage config:\n  - " + "\n  - ".join(problems))
        return self

    # -- schedules -------------------------------------------------------------------------
    def lr_factor(self, step: int) -> float:
        """LR multiplier (0..1) at optimizer step `step` (0-based): warm-up, then decay."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "step":
            passed = sum(1 for m in self.step_milestones if step >= m * self.max_steps)
            return self.step_gamma ** passed
        import math

        span = max(1, self.max_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine

    def language_ratio(self, step: int) -> float:
        """Fraction of language-only optimizer steps wanted at `step` (modality warm-up)."""
        if self.language_ratio_warmup_steps == 0 or step >= self.language_ratio_warmup_steps:
            return self.language_ratio_target
        frac = step / self.language_ratio_warmup_steps
        return self.language_ratio_start + (self.language_ratio_target
                                             - self.language_ratio_start) * frac

    @property
    def uses_language(self) -> bool:
        return max(self.language_ratio_start, self.language_ratio_target) > 0

    @property
    def uses_multimodal(self) -> bool:
        return min(self.language_ratio_start, self.language_ratio_target) < 1


# -- presets (paper Table 4) -------------------------------------------------------------
TRAINABLE = {
    1: ("adaptor",),
    2: ("language_model", "adaptor"),
    3: ("language_model", "adaptor", "siglip"),
}

# Paper values per model size; "tiny" keeps the recipe (groups, schedule shape, packing,
# ratio warm-up) at CPU scale: few steps, small batches, short sequences and a higher LR so
# a 2-layer model visibly learns in tens of steps.
_TABLE4: dict[str, dict[int, dict[str, Any]]] = {
    "1.3b": {
        1: dict(lr=1e-3, schedule="cosine", warmup_steps=128, max_steps=15000, batch_size=256,
                seq_len=512, packing=False),
        2: dict(lr=3e-5, schedule="step", warmup_steps=2000, max_steps=96000, batch_size=1024,
                seq_len=4096, packing=True),
        3: dict(lr=2e-5, schedule="cosine", warmup_steps=256, max_steps=10000, batch_size=256,
                seq_len=4096, packing=False),
    },
    "7b": {
        1: dict(lr=1e-3, schedule="cosine", warmup_steps=128, max_steps=15000, batch_size=256,
                seq_len=512, packing=False),
        2: dict(lr=4.2e-5, schedule="step", warmup_steps=2000, max_steps=42000, batch_size=2304,
                seq_len=4096, packing=True),
        3: dict(lr=2e-5, schedule="cosine", warmup_steps=256, max_steps=10000, batch_size=256,
                seq_len=4096, packing=False),
    },
    "tiny": {
        1: dict(lr=2e-3, schedule="cosine", warmup_steps=4, max_steps=40, batch_size=4,
                seq_len=96, packing=False, save_every=10),
        2: dict(lr=1e-3, schedule="step", warmup_steps=4, max_steps=60, batch_size=4,
                seq_len=96, packing=True, save_every=10),
        3: dict(lr=1e-3, schedule="cosine", warmup_steps=4, max_steps=40, batch_size=4,
                seq_len=128, packing=False, save_every=10),
    },
}
SCALES = tuple(_TABLE4)

# Stage 2 modality warm-up: language ratio 1.0 → 0.7 over the first ~20% of training for
# the paper sizes; stage 3 mixes text-only dialogue at the paper's 47.9% share.
_RATIOS = {
    1: dict(language_ratio_start=0.0, language_ratio_target=0.0),
    2: dict(language_ratio_start=1.0, language_ratio_target=0.7),
    3: dict(language_ratio_start=0.48, language_ratio_target=0.48),
}


def stage_preset(stage: int, scale: str = "tiny") -> StageConfig:
    """The stage's settings from the paper's Table 4 at `scale` ("tiny", "1.3b", "7b")."""
    if scale not in _TABLE4:
        raise StageConfigError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    if stage not in TRAINABLE:
        raise StageConfigError(f"stage must be 1, 2 or 3 (got {stage!r})")
    values: dict[str, Any] = {**_TABLE4[scale][stage], **_RATIOS[stage]}
    if stage == 2:
        values["language_ratio_warmup_steps"] = max(1, values["max_steps"] // 5)
    # paper batches are global; keep per-process micro-batches modest and accumulate
    if scale != "tiny":
        values["grad_accum"] = max(1, values["batch_size"] // 16)
        values["batch_size"] = 16
        values["save_every"] = 1000
        values["log_every"] = 10
        values["shuffle_buffer"] = 4096
    return StageConfig(stage=stage, trainable=TRAINABLE[stage], **values).validate()
