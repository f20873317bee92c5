"""Open a model without allocating it, then give each rank only its part of the weights.

    model, processor = empty_model(model_dir)      # parameters on the meta device: no memory
    ... apply_trainable / checkpointing / shard_model(model) ...
    materialize(model, model_dir, device)          # each rank reads its shard from safetensors

`materialize` allocates the parameters where they will train (DTensor shards under FSDP,
whole tensors otherwise) and fills them from the directory's safetensors files by slicing
(`safe_open(...).get_slice`): a rank reads only its own rows of each tensor and converts
them to the parameter's dtype on the way, so no rank ever holds a full fp32 copy of a
sharded model. Tensors that were already real before (non-persistent buffers such as the
rotary frequencies, a freshly initialised task head) keep their values.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

log = logging.getLogger(__name__)


def empty_model(model_dir: str | Path) -> tuple[nn.Module, Any]:
    """(model with meta parameters and real buffers, processor) for a vlforge model dir."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig

    from model.presets import model_class_for
    from model.processor import load_processor

    config = AutoConfig.from_pretrained(str(model_dir))
    # buffers stay real: rotary frequencies and position ids are not in the weight files
    with init_empty_weights(include_buffers=False):
        model = model_class_for(config)(config)
    return model, load_processor(Path(model_dir), config)


def weight_files(model_dir: str | Path) -> list[Path]:
    """The directory's safetensors files (one file, or the shards its index names)."""
    directory = Path(model_dir)
    index = directory / "model.safetensors.index.json"
    if index.exists():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [directory / name for name in names]
    single = directory / "model.safetensors"
    if not single.exists():
        raise FileNotFoundError(f"{directory}: no model.safetensors (or index) to load")
    return [single]


def _local_view(tensor: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...], tuple[int, ...]]:
    """(this rank's storage, its shape, its offset in the full tensor)."""
    from torch.distributed.tensor import DTensor

    if isinstance(tensor, DTensor):
        from torch.distributed.tensor._utils import (
            compute_local_shape_and_global_offset,
        )

        shape, offset = compute_local_shape_and_global_offset(
            tensor.shape, tensor.device_mesh, tensor.placements)
        return tensor.to_local(), tuple(shape), tuple(offset)
    return tensor, tuple(tensor.shape), (0,) * tensor.dim()


def _states(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from model.named_parameters()
    yield from model.named_buffers()


def materialize(model: nn.Module, model_dir: str | Path, device: torch.device | str, *,
                prefix: str = "") -> int:
    """Allocate `model`'s meta tensors on `device` and load this rank's part; returns bytes read.

    prefix: where the saved model sits inside `model` (a task model nests it under
    "encoder.vl_model."): file key K fills parameter prefix + K.
    Raises ValueError naming the parameters the weight files do not hold.
    """
    kept = {name: _local_view(t)[0].detach().clone() for name, t in _states(model)
            if not t.is_meta}
    wanted = {name[len(prefix):]: name for name, t in _states(model)
              if t.is_meta and name.startswith(prefix)}
    model.to_empty(device=device)
    states = dict(_states(model))
    targets = {key: states[name] for key, name in wanted.items()}
    with torch.no_grad():
        for name, value in kept.items():
            _local_view(states[name])[0].copy_(value)
        read = _fill_from_files(targets, set(wanted), model_dir)
    missing = sorted(set(wanted) - set(read))
    if missing:
        raise ValueError(f"{model_dir}: weights missing for {len(missing)} parameter(s): "
                         f"{missing[:5]}")
    total = sum(read.values())
    log.info("materialised %d tensors on %s (%.1f MiB read for this rank)", len(read), device,
             total / 2 ** 20)
    return total


def _fill_from_files(targets: dict[str, torch.Tensor], wanted: set[str],
                     model_dir: str | Path) -> dict[str, int]:
    from safetensors import safe_open

    read: dict[str, int] = {}
    for path in weight_files(model_dir):
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            for name in handle.keys():
                if name not in wanted:
                    continue
                local, shape, offset = _local_view(targets[name])
                if local.numel() == 0:  # more ranks than rows: this rank holds nothing
                    read[name] = 0
                    continue
                rows = handle.get_slice(name)
                index = tuple(slice(o, o + n) for o, n in zip(offset, shape))
                part = rows[index] if index else handle.get_tensor(name)
                local.copy_(part.reshape(local.shape))
                read[name] = part.numel() * part.element_size()
    return read
