"""Freeze a model, then unfreeze the parameter groups a stage trains (by name prefix)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from torch import nn

from training.stages import PARAM_GROUPS

log = logging.getLogger(__name__)


# A task model (training.heads) nests the VL model under this prefix.
NESTED_PREFIX = "encoder.vl_model."


def param_group(name: str, groups: dict[str, tuple[str, ...]] = PARAM_GROUPS) -> str | None:
    """The group whose longest prefix matches `name` (None when no group claims it)."""
    if name.startswith(NESTED_PREFIX):
        name = name[len(NESTED_PREFIX):]
    best, best_len = None, -1
    for group, prefixes in groups.items():
        for prefix in prefixes:
            if name.startswith(prefix) and len(prefix) > best_len:
                best, best_len = group, len(prefix)
    return best


def apply_trainable(model: nn.Module, trainable: Iterable[str]) -> dict[str, dict[str, int]]:
    """Set requires_grad so exactly the parameters of the `trainable` groups train.

    Returns ``{group: {"params": n, "trainable": n}}`` (element counts). Raises ValueError
    when a named group matches no parameter of this model (a stage that would silently
    train nothing of what it meant to), e.g. "sam" on the SigLIP-only 1.3B model.
    """
    wanted = set(trainable)
    totals: Counter = Counter()
    trained: Counter = Counter()
    for name, param in model.named_parameters():
        group = param_group(name) or "other"
        on = group in wanted
        param.requires_grad_(on)
        totals[group] += param.numel()
        if on:
            trained[group] += param.numel()
    missing = sorted(g for g in wanted if totals[g] == 0)
    if missing:
        raise ValueError(f"trainable group(s) {missing} match no parameter of "
                         f"{type(model).__name__} (groups present: {sorted(totals)})")
    summary = {g: {"params": totals[g], "trainable": trained[g]} for g in sorted(totals)}
    log.info("trainable groups %s: %d of %d parameters", sorted(wanted),
             sum(trained.values()), sum(totals.values()))
    return summary


@dataclass(frozen=True)
class TrainableTensor:
    """One parameter a stage trains."""

    name: str
    shape: tuple[int, ...]
    count: int
    group: str


@dataclass
class TrainableReport:
    """Every tensor a stage trains, with totals (what ``vlforge train --dry-run`` prints)."""

    tensors: list[TrainableTensor]
    trainable: int
    total: int
    groups: dict[str, dict[str, int]]
    """{group: {"params": n, "trainable": n}} over every parameter of the model."""

    def to_dict(self) -> dict:
        """JSON-ready: tensors as {name, shape, count, group} rows."""
        return {"trainable": self.trainable, "total": self.total, "groups": self.groups,
                "tensors": [{"name": t.name, "shape": list(t.shape), "count": t.count,
                             "group": t.group} for t in self.tensors]}


def trainable_report(model: nn.Module, trainable: Iterable[str]) -> TrainableReport:
    """Freeze `model` for the groups (`apply_trainable`) and list what trains.

    Works on a model on the meta device: only names and shapes are read.
    """
    groups = apply_trainable(model, trainable)
    tensors = [TrainableTensor(name, tuple(param.shape), param.numel(),
                               param_group(name) or "other")
               for name, param in model.named_parameters() if param.requires_grad]
    return TrainableReport(tensors=tensors, trainable=sum(t.count for t in tensors),
                           total=sum(g["params"] for g in groups.values()), groups=groups)
