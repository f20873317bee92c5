"""Multi-process training through torchrun: DDP or FSDP2, over gloo (CPU) or nccl (GPU).

``torchrun --nproc_per_node N -m training train ...`` sets RANK / WORLD_SIZE / LOCAL_RANK;
`init_distributed` reads them (a plain ``vlforge train`` is world size 1 and creates no
process group, except that FSDP wants one: `ensure_process_group`). Nothing home-made:
torch.distributed, DistributedDataParallel and `fully_shard` only.

FSDP layout (`shard_model`): one `fully_shard` unit per decoder layer and per vision tower,
then the root (embeddings, adaptor, final norm, lm_head). A unit's parameters are gathered
just before it runs and freed after, so a rank holds its 1/N shard of everything plus one
unit at a time. On a GPU parameters are computed in bf16 and gradients reduced in fp32
(`MixedPrecisionPolicy`); the sharded master weights stay fp32, as on the CPU.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size, and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the torchrun process group if there is one; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend=backend)
        log.info("rank %d/%d joined the %s process group", rank, world_size, backend)
    return DistInfo(rank, world_size, local_rank, chosen)


def ensure_process_group(info: DistInfo) -> None:
    """A one-process group when running without torchrun (FSDP and DCP collectives need one)."""
    if dist.is_initialized():
        return
    backend = "nccl" if info.device.type == "cuda" else "gloo"
    # an in-memory store: nothing listens on a port, so parallel single runs never collide
    dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1)
    log.info("started a one-process %s group (FSDP without torchrun)", backend)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The language model's repeated blocks (whatever wraps the VL model: heads, ...)."""
    return [module for module in model.modules()
            if type(module).__name__.endswith("DecoderLayer")]


def vision_towers(model: nn.Module) -> list[nn.Module]:
    """The image encoders: SigLIP (``vision_model``) and SAM (``high_res_vision_model``)."""
    return [module for name, module in model.named_modules()
            if name.rsplit(".", 1)[-1] in ("vision_model", "high_res_vision_model")]


def apply_activation_checkpointing(model: nn.Module) -> int:
    """Recompute each decoder layer in backward; returns how many layers.

    torch's composable `checkpoint` works in place (parameter names unchanged, so the
    checkpoint keys and trainable groups are the same with and without it).
    """
    from torch.distributed._composable import checkpoint

    layers = decoder_layers(model)
    for layer in layers:
        checkpoint(layer)
    return len(layers)


def compile_layers(model: nn.Module) -> int:
    """`torch.compile` each decoder layer in place (one graph, reused by every layer)."""
    layers = decoder_layers(model)
    for layer in layers:
        layer.compile()
    return len(layers)


def shard_model(model: nn.Module, info: DistInfo, *, bf16: bool = True,
                cpu_offload: bool = False) -> nn.Module:
    """FSDP2 on `model` in place: decoder layers, vision towers, then the root.

    Works on a model whose parameters are still on the meta device (nothing allocated:
    materialise the shards afterwards: `training.sharded_load.materialize`).
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import (
        CPUOffloadPolicy,
        MixedPrecisionPolicy,
        fully_shard,
    )

    ensure_process_group(info)
    # the root returns a ModelOutput whose logits are a view; the loop never modifies
    # outputs in place, which is what this warning is about
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view")
    mesh = init_device_mesh(info.device.type, (info.world_size,))
    options: dict[str, Any] = {"mesh": mesh}
    if info.device.type == "cuda" and bf16:
        options["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16,
                                                    reduce_dtype=torch.float32)
    if cpu_offload and info.device.type == "cpu":
        # CPUOffloadPolicy moves shards between an accelerator and pinned host memory;
        # training on the CPU, they are already where it would put them
        log.info("--cpu-offload: parameters already live on the CPU, nothing to offload")
        cpu_offload = False
    if cpu_offload:
        options["offload_policy"] = CPUOffloadPolicy()
    units = vision_towers(model) + decoder_layers(model)
    for unit in units:
        fully_shard(unit, **options)
    fully_shard(model, **options)
    log.info("FSDP: %d units (%d decoder layers, %d vision towers) + root over %d rank(s)%s%s",
             len(units), len(decoder_layers(model)), len(vision_towers(model)),
             info.world_size, ", bf16 compute / fp32 reduce" if "mp_policy" in options else "",
             ", CPU offload" if cpu_offload else "")
    return model


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """DDP-wrap `model` when running with more than one process (FSDP: `shard_model`)."""
    if not info.enabled or is_sharded(model):
        return model
    ids = [info.local_rank] if info.device.type == "cuda" else None
    # frozen towers produce no gradients for their parameters; DDP must not wait for them
    return nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                               find_unused_parameters=True)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (FSDP2 wraps in place: the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_sharded(model: nn.Module) -> bool:
    """Whether `fully_shard` was applied to `model`."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> float:
    """Clip the global gradient norm (DTensor shards included); returns the norm before."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    full_tensor = getattr(norm, "full_tensor", None)  # a DTensor under FSDP
    return float(full_tensor() if full_tensor is not None else norm)


def gather_objects(value: Any, info: DistInfo) -> list[Any]:
    """Every rank's `value`, in rank order (just [value] without a process group)."""
    if not info.enabled:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def mean_across_ranks(value: float, info: DistInfo) -> float:
    if not info.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64,
                          device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return float(tensor.item()) / info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group (torchrun's, or the one-process one FSDP started)."""
    if dist.is_initialized():
        dist.destroy_process_group()
