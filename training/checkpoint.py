"""The training checkpoint: ONE dict with everything a run needs to continue exactly.

    {"model", "optimizer", "scheduler", "step", "rng", "data", "config", "world_size",
     "model_dir"}

`model` holds the TRAINABLE parameters only: frozen ones are by definition still those of
`model_dir`, which a resume must name again (stage 1 checkpoints stay adaptor-sized).
`rng` and `data` are lists indexed by DDP rank (each rank has its own data position and
random state). Files are ``RUN/checkpoints/step-000120.pt``, written under a temporary
name and renamed, so a run killed mid-write leaves the previous checkpoint intact; only
the newest `keep` are kept.
"""

from __future__ import annotations

import logging
import os
import random
import re
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d{6,})\.pt$")


def rng_state() -> dict[str, Any]:
    """Every random generator the loop touches (python, numpy, torch CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, CHECKPOINT_DIR, f"step-{step:06d}.pt")


def list_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """(step, path) of complete checkpoints in `run_dir`, oldest first."""
    folder = os.path.join(run_dir, CHECKPOINT_DIR)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = _NAME.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(folder, name)))
    return sorted(found)


def latest_checkpoint(run_dir: str) -> str | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_checkpoint(run_dir: str, state: dict[str, Any], keep: int = 2) -> str:
    """Write `state` atomically as the checkpoint of ``state["step"]``; prune old ones."""
    path = checkpoint_path(run_dir, int(state["step"]))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        os.remove(old)
    log.info("checkpoint %s", path)
    return path


def load_checkpoint(path: str) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (our own files: full unpickling)."""
    # weights_only=False: the dict holds python/numpy RNG states and config dicts, and the
    # file is one this code wrote into the user's own run directory.
    return torch.load(path, map_location="cpu", weights_only=False)
