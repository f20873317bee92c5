"""The training checkpoint: a sharded `torch.distributed.checkpoint` directory per step.

    RUN/checkpoints/step-000120/          (or any fsspec URL: --checkpoint-dir s3://...)
        .metadata, __0_0.distcp, ...       model + optimizer, each rank writes its shards
        train_state.pt                     {"scheduler", "step", "rng", "data", "config",
                                            "world_size", "model_dir", "strategy"}

One format for DDP and FSDP: `get_state_dict` gives plain tensors under DDP and DTensor
shards under FSDP, and DCP re-shards on load, so a checkpoint resumes under the other
strategy and at another world size (`training.loader.redivide` re-divides the data
position then; `rng` and `data` are lists indexed by the rank that saved them).
The model part holds the TRAINABLE parameters only: frozen ones are by definition still
those of `model_dir`, which a resume must name again (stage 1 checkpoints stay
adaptor-sized). `train_state.pt` is written by rank 0 after every rank's shards and DCP's
metadata have landed, so it marks a complete checkpoint: a run killed mid-write leaves a
directory without it, which is ignored and overwritten. Only the newest `keep` are kept.
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
from typing import Any

import fsspec
import numpy as np
import torch
from fsspec.core import url_to_fs

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
TRAIN_STATE = "train_state.pt"
_NAME = re.compile(r"^step-(\d{6,})$")


def rng_state() -> dict[str, Any]:
    """Every random generator the loop touches (python, numpy, torch CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_root(run_dir: str, checkpoint_dir: str | None = None) -> str:
    """Where a run's checkpoints go: `checkpoint_dir` (a path or URL) or RUN/checkpoints."""
    return checkpoint_dir.rstrip("/") if checkpoint_dir else os.path.join(run_dir,
                                                                          CHECKPOINT_DIR)


def checkpoint_path(root: str, step: int) -> str:
    """The directory of step `step`'s checkpoint under `root`."""
    return f"{root.rstrip('/')}/step-{step:06d}"


def _is_url(path: str) -> bool:
    return "://" in path


def list_checkpoints(run_dir: str, checkpoint_dir: str | None = None) -> list[tuple[int, str]]:
    """(step, path) of complete checkpoints of a run, oldest first."""
    root = checkpoint_root(run_dir, checkpoint_dir)
    fs, path = url_to_fs(root)
    if not fs.isdir(path):
        return []
    found = []
    for entry in fs.ls(path, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        match = _NAME.match(name)
        if match and fs.exists(f"{entry.rstrip('/')}/{TRAIN_STATE}"):
            found.append((int(match.group(1)), checkpoint_path(root, int(match.group(1)))))
    return sorted(found)


def latest_checkpoint(run_dir: str, checkpoint_dir: str | None = None) -> str | None:
    """The newest complete checkpoint of a run, or None."""
    found = list_checkpoints(run_dir, checkpoint_dir)
    return found[-1][1] if found else None


def _writer(path: str):
    from torch.distributed.checkpoint import FileSystemWriter

    if _is_url(path):
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecWriter

        return FsspecWriter(path)
    return FileSystemWriter(path)


def _reader(path: str):
    from torch.distributed.checkpoint import FileSystemReader

    if _is_url(path):
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader

        return FsspecReader(path)
    return FileSystemReader(path)


def save_checkpoint(root: str, step: int, model: torch.nn.Module, optimizer: Any,
                    train_state: dict[str, Any] | None, *, is_main: bool, barrier: Any,
                    keep: int = 2) -> str:
    """Every rank: write model + optimizer shards of step `step`; rank 0 then `train_state`.

    barrier: a no-argument callable synchronising the ranks (a no-op for one process).
    Returns the checkpoint's path; older complete checkpoints beyond `keep` are deleted.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    path = checkpoint_path(root, step)
    fs, local = url_to_fs(path)
    if is_main and fs.exists(local):  # an incomplete one from a killed run: start over
        fs.rm(local, recursive=True)
    barrier()
    model_state, optim_state = get_state_dict(
        model, optimizer, options=StateDictOptions(ignore_frozen_params=True))
    dcp.save({"model": model_state, "optimizer": optim_state}, storage_writer=_writer(path))
    barrier()
    if is_main:
        buffer = io.BytesIO()
        torch.save(train_state, buffer)
        tmp = f"{local}/{TRAIN_STATE}.tmp"
        with fs.open(tmp, "wb") as handle:
            handle.write(buffer.getvalue())
        fs.mv(tmp, f"{local}/{TRAIN_STATE}")
        for _, old in list_checkpoints_at(root)[:-keep]:
            old_fs, old_path = url_to_fs(old)
            old_fs.rm(old_path, recursive=True)
        log.info("checkpoint %s", path)
    barrier()
    return path


def list_checkpoints_at(root: str) -> list[tuple[int, str]]:
    """(step, path) of complete checkpoints directly under `root`, oldest first."""
    return list_checkpoints("", root)


def load_train_state(path: str) -> dict[str, Any]:
    """The small, rank-0-written part of a checkpoint (step, data positions, RNG, ...)."""
    # weights_only=False: the dict holds python/numpy RNG states and config dicts, and the
    # file is one this code wrote into the user's own run directory.
    with fsspec.open(f"{path.rstrip('/')}/{TRAIN_STATE}", "rb") as handle:
        return torch.load(io.BytesIO(handle.read()), map_location="cpu", weights_only=False)


def load_into(path: str, model: torch.nn.Module, optimizer: Any) -> None:
    """Every rank: read the model + optimizer shards of `path` into `model` / `optimizer`.

    DCP re-shards: the checkpoint may come from another world size or strategy.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_state_dict,
        set_state_dict,
    )

    model_state, optim_state = get_state_dict(
        model, optimizer, options=StateDictOptions(ignore_frozen_params=True))
    saved = set(_reader(path).read_metadata().state_dict_metadata)
    missing = sorted(name for name in model_state if f"model.{name}" not in saved)
    if missing:
        raise ValueError(f"checkpoint {path} lacks trainable parameters: {missing[:5]}")
    # AdamW creates a parameter's state at its first gradient: one that got none before the
    # checkpoint (the image adaptor after language-only steps) must stay without state, not
    # take the placeholder get_state_dict made up, or its bias correction would differ
    for name in [n for n in optim_state["state"] if f"optimizer.state.{n}.step" not in saved]:
        del optim_state["state"][name]
    state = {"model": model_state, "optimizer": optim_state}
    # the frozen parameters are absent by design, hence strict=False when setting
    dcp.load(state, storage_reader=_reader(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optimizer"],
                   options=StateDictOptions(ignore_frozen_params=True, strict=False))


def load_checkpoint(path: str) -> dict[str, Any]:
    """The whole checkpoint in one process, as plain tensors: for inspection and tools.

    ``{**train_state, "model": {name: tensor}, "optimizer": {...}}``; no process group needed.
    """
    from torch.distributed.checkpoint.state_dict_loader import (
        _load_state_dict_from_keys,
    )

    state = load_train_state(path)
    tensors = _load_state_dict_from_keys(storage_reader=_reader(path))
    state["model"] = tensors.get("model", {})
    state["optimizer"] = tensors.get("optimizer", {})
    return state
