"""How a stage runs on its processes: DDP or FSDP, activation checkpointing, compile, workers.

These settings change speed and memory, never the maths of a stage (that is `StageConfig`),
so a run may be resumed with different ones: a checkpoint written under DDP resumes under
FSDP and the other way round, because both save through `torch.distributed.checkpoint`.

    ParallelConfig(strategy="auto")   ddp when the model's training state fits one device,
                                      fsdp otherwise (`choose_strategy`, said in the log)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "ddp", "fsdp")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")

# Bytes per parameter of the training state under DDP with AdamW in fp32: weights 4 +
# gradients 4 + two moments 8 for a trainable parameter; a frozen one only holds its weights.
TRAINABLE_BYTES = 16
FROZEN_BYTES = 4
# Share of a device's memory the weights/gradients/optimizer may take before DDP is refused
# by "auto": the rest is for activations, the allocator's slack and the collectives' buffers.
DDP_STATE_FRACTION = 0.6


@dataclass(frozen=True)
class ParallelConfig:
    """Process-level settings of a training run (see the module docstring)."""

    strategy: str = "auto"
    """"ddp" (every rank holds the whole model), "fsdp" (FSDP2 `fully_shard`: parameters,
    gradients and optimizer states sharded across ranks) or "auto" (ddp when it fits)."""

    activation_checkpointing: bool | None = None
    """Recompute each decoder layer's activations in the backward pass instead of keeping
    them; None: on for the 7b preset's stages 2 and 3 (long sequences), off otherwise."""

    compile: bool = False
    """`torch.compile` each decoder layer (the repeated block; compiled once, reused)."""

    attn_implementation: str | None = None
    """Attention kernel of the language model: "sdpa", "eager" or "flash_attention_2"
    (needs the flash-attn package and a GPU); None keeps the model's (sdpa)."""

    cpu_offload: bool = False
    """FSDP only: keep sharded parameters, gradients and the optimizer step on the CPU
    (`CPUOffloadPolicy`), trading speed for GPU memory."""

    loader_workers: int = 0
    """Data-loader worker processes per rank that read, decode, preprocess and collate
    batches off the training thread (0: on the training thread)."""

    def validate(self) -> "ParallelConfig":
        """Return self, or raise ValueError listing every problem."""
        problems = []
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {STRATEGIES} (got {self.strategy!r})")
        if self.attn_implementation not in (None, *ATTN_IMPLEMENTATIONS):
            problems.append(f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS} "
                            f"(got {self.attn_implementation!r})")
        if not (isinstance(self.loader_workers, int) and self.loader_workers >= 0):
            problems.append(f"loader_workers must be an integer >= 0 (got "
                            f"{self.loader_workers!r})")
        if self.cpu_offload and self.strategy == "ddp":
            problems.append("cpu_offload needs strategy fsdp (DDP keeps whole copies on the "
                            "device)")
        if problems:
            raise ValueError("invalid parallel settings:\n  - " + "\n  - ".join(problems))
        return self

    def replace(self, **changes) -> "ParallelConfig":
        """A validated copy with `changes` applied."""
        return dataclasses.replace(self, **changes).validate()


def default_activation_checkpointing(scale: str, stage: int) -> bool:
    """On for the 7B's long-sequence stages (2 and 3: seq 4096), off elsewhere."""
    return scale == "7b" and stage in (2, 3)


def training_state_bytes(trainable: int, frozen: int) -> int:
    """Bytes of weights + gradients + AdamW moments (fp32) one DDP rank holds."""
    return TRAINABLE_BYTES * trainable + FROZEN_BYTES * frozen


def device_memory_bytes(device) -> int:
    """Memory one rank may use: the GPU's total, or this machine's RAM per local rank."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // max(1, local)


def choose_strategy(requested: str, *, trainable: int, frozen: int, device) -> tuple[str, str]:
    """(strategy, why): `requested` unless "auto", which picks ddp when the state fits."""
    if requested != "auto":
        return requested, "requested"
    need = training_state_bytes(trainable, frozen)
    have = device_memory_bytes(device)
    gib = 1024 ** 3
    if need <= DDP_STATE_FRACTION * have:
        return "ddp", (f"the training state ({need / gib:.1f} GiB: weights, gradients, AdamW) "
                       f"fits in {DDP_STATE_FRACTION:.0%} of one {device.type} rank's "
                       f"{have / gib:.0f} GiB")
    return "fsdp", (f"the training state ({need / gib:.1f} GiB) exceeds "
                    f"{DDP_STATE_FRACTION:.0%} of one {device.type} rank's {have / gib:.0f} GiB")
