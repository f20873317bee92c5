"""Fine-tuning the task heads of `model.heads` (classification / regression) in THE loop.

A `HeadSpec` says which head, which ``sample.meta`` path holds the target, and the class
names. The loop trains ``TaskModel(VLEncoder(vl_model), head)`` exactly like a stage, with
the "heads" parameter group (the head and its attention pool) trainable, plus any other
groups the stage names. The result is a normal model directory with ``heads.pt`` added,
which `vlforge eval` scores (accuracy for classification, MSE/MAE for regression).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import torch

HEADS_FILE = "heads.pt"
# TaskModel nests the VL model; names below it match the plain model's groups.
ENCODER_PREFIX = "encoder.vl_model."


@dataclass(frozen=True)
class HeadSpec:
    """A task head to fine-tune.

    task: "classification" or "regression".
    target: dotted path into sample.meta holding the target ("taxonomy.leaf").
    classes: class names (classification); their order fixes the label indices.
    fusion: how image and text states are pooled ("concat" or "attention").
    """

    task: str
    target: str
    classes: tuple[str, ...] = field(default_factory=tuple)
    fusion: str = "concat"

    def validate(self) -> "HeadSpec":
        problems = []
        if self.task not in ("classification", "regression"):
            problems.append(f"task must be classification or regression (got {self.task!r})")
        if self.task == "classification" and len(self.classes) < 2:
            problems.append("classification needs at least two classes")
        if not self.target:
            problems.append("target (a meta path such as taxonomy.leaf) is required")
        if problems:
            raise ValueError("invalid head spec: " + "; ".join(problems))
        return self

    def build(self, vl_model: Any) -> tuple[Any, Any]:
        """(TaskModel around `vl_model`, the collator's target_fn)."""
        from model.heads import VLEncoder, build_task_model, meta_target

        self.validate()
        # an encoder already (the CNN hybrid has `representation`), else a VL model to pool
        encoder = (vl_model if hasattr(vl_model, "representation")
                   else VLEncoder(vl_model, fusion=self.fusion))
        task_model = build_task_model(encoder, self.task, num_classes=len(self.classes) or None)
        classes = list(self.classes) if self.task == "classification" else None
        return task_model, meta_target(self.target, classes)


def classes_from_runs(run_urls: Sequence[str]) -> tuple[str, ...]:
    """Taxonomy leaves present in the runs' manifests (for --target taxonomy.leaf)."""
    from pipelines.core.run_dir import RunDir

    found = set()
    for url in run_urls:
        manifest = RunDir(url).require_complete().manifest(["taxonomy_leaf"])
        found.update(v for v in manifest.column("taxonomy_leaf").to_pylist() if v)
    return tuple(sorted(found))


def head_state(task_model: Any) -> dict[str, torch.Tensor]:
    """Parameters of the task model that are not the VL model's (head, pool)."""
    return {n: p.detach().cpu() for n, p in task_model.state_dict().items()
            if not n.startswith(ENCODER_PREFIX)}


def save_heads(task_model: Any, spec: HeadSpec, model_dir: str) -> str:
    path = os.path.join(model_dir, HEADS_FILE)
    torch.save({"spec": asdict(spec), "state": head_state(task_model)}, path)
    return path


def restore_heads(task_model: Any, model_dir: str, spec: HeadSpec) -> bool:
    """Load `model_dir`'s trained head into `task_model` when it is the same head (same
    task, target and classes); returns whether it did."""
    if not has_heads(model_dir):
        return False
    saved = torch.load(os.path.join(model_dir, HEADS_FILE), map_location="cpu",
                       weights_only=True)
    if HeadSpec(**{**saved["spec"], "classes": tuple(saved["spec"]["classes"])}) != spec:
        return False
    task_model.load_state_dict(saved["state"], strict=False)
    return True


def has_heads(model_dir: str) -> bool:
    return os.path.exists(os.path.join(model_dir, HEADS_FILE))


def load_task_model(model_dir: str, device: str = "cpu") -> tuple[Any, Any, Any, HeadSpec]:
    """(task model, processor, target_fn, spec) from a model directory with heads.pt."""
    from model.loading import load_model

    saved = torch.load(os.path.join(model_dir, HEADS_FILE), map_location="cpu",
                       weights_only=True)
    spec = HeadSpec(**{**saved["spec"], "classes": tuple(saved["spec"]["classes"])})
    from model.cnn_dir import is_cnn_dir, load_cnn

    vl_model, processor = load_cnn(model_dir) if is_cnn_dir(model_dir) else load_model(model_dir)
    task_model, target_fn = spec.build(vl_model)
    missing = set(head_state(task_model)) - set(saved["state"])
    if missing:
        raise ValueError(f"{model_dir}/{HEADS_FILE} lacks {sorted(missing)}")
    task_model.load_state_dict(saved["state"], strict=False)
    return task_model.to(device).eval(), processor, target_fn, spec


@torch.no_grad()
def evaluate_heads(model_dir: str, samples: Iterable[Any], *, batch_size: int = 8,
                   device: str = "cpu") -> dict[str, Any]:
    """The head's metrics (accuracy, or MSE/MAE) over `samples` that carry a target."""
    from model.collate import VLCollator

    task_model, processor, target_fn, spec = load_task_model(model_dir, device)
    collator = VLCollator(processor, target_fn=target_fn)
    totals: dict[str, float] = {}
    count = 0
    batch: list[Any] = []

    def flush() -> None:
        nonlocal count
        collated = collator(batch)
        batch.clear()
        if collated is None:
            return
        collated = {k: v.to(device) for k, v in collated.items()}
        output = task_model(collated)
        n = int(collated["targets"].shape[0])
        for name, value in output.metrics.items():
            totals[name] = totals.get(name, 0.0) + value * n
        count += n

    for sample in samples:
        batch.append(sample)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return {"task": spec.task, "target": spec.target, "samples": count,
            "metrics": {k: v / count for k, v in totals.items()} if count else {},
            "skipped": dict(collator.skipped)}
