"""The original design's task heads over a fused image+text representation.

Step 5-7 of the seed design: fuse the image and text outputs (concatenation or attention),
put a dense output layer on top — softmax + cross-entropy + accuracy for classification,
linear + MSE for regression. `TaskModel` pairs any *encoder* (something with
``representation(batch) -> [b, dim]`` and ``representation_dim``) with a head:

- `VLEncoder` wraps any DeepSeek-VL preset (tiny, tiny-siglip, 1.3b, 7b): the language
  model's last hidden states are pooled into [mean over image tokens, mean over text tokens]
  (concat) or by a learned query attending over all tokens (attention).
- `model.cnn_baseline.CNNHybridBaseline` is the original design's CNN hybrid encoder.

Batches come from `model.collate.VLCollator` with a ``target_fn`` (``batch["targets"]``);
`meta_target` builds such a function from a sample's meta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

FUSIONS = ("concat", "attention")


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of hidden [b, t, d] over positions where mask [b, t] is true; zeros if none."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # [b, t, 1]
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # [b, d]


class AttentionPool(nn.Module):
    """A learned query attending over a sequence: [b, t, d] -> [b, d]."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        heads = heads if dim % heads == 0 else 1
        self.query = nn.Parameter(torch.randn(1, 1, dim) * dim ** -0.5)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, sequence: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        query = self.query.expand(sequence.shape[0], -1, -1).to(sequence.dtype)  # [b, 1, d]
        pooled, _ = self.attention(query, sequence, sequence, key_padding_mask=~mask.bool())
        return self.norm(pooled[:, 0])  # [b, d]


class VLEncoder(nn.Module):
    """Fused representation of a DeepSeek-VL model's inputs (any preset).

    fusion="concat": [mean of image-token states, mean of text-token states] -> [b, 2d]
    (the image half is zero for text-only samples). fusion="attention": a learned query
    attends over all non-padding states -> [b, d].
    """

    def __init__(self, vl_model, fusion: str = "concat"):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        self.vl_model = vl_model
        self.fusion = fusion
        hidden = vl_model.config.text_config.hidden_size
        self.image_token_id = vl_model.config.image_token_id
        self.pool = AttentionPool(hidden) if fusion == "attention" else None
        self.representation_dim = 2 * hidden if fusion == "concat" else hidden

    def representation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values",
                                        "high_res_pixel_values") if k in batch}
        hidden = self.vl_model.model(**inputs).last_hidden_state  # [b, t, d]
        valid = batch["attention_mask"].bool()
        if self.fusion == "attention":
            return self.pool(hidden, valid)
        image = batch["input_ids"] == self.image_token_id
        return torch.cat([masked_mean(hidden, image & valid),
                          masked_mean(hidden, valid & ~image)], dim=-1)  # [b, 2d]


@dataclass
class TaskOutput:
    """What a task model returns: loss (when targets were given), raw outputs, metrics."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class ClassificationHead(nn.Module):
    """Dense layer + softmax; cross-entropy loss, accuracy metric."""

    kind = "classification"

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, num_classes)

    def forward(self, representation: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(representation))  # logits [b, classes]

    @staticmethod
    def probabilities(logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(-1)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets.long())

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {"accuracy": (logits.argmax(-1) == targets.long()).float().mean().item()}


class RegressionHead(nn.Module):
    """Linear output (no activation); mean-squared-error loss, MAE metric."""

    kind = "regression"

    def __init__(self, in_dim: int, out_dim: int = 1):
        super().__init__()
        self.out_dim = out_dim
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, representation: torch.Tensor) -> torch.Tensor:
        out = self.linear(representation)  # [b, out]
        return out[:, 0] if self.out_dim == 1 else out

    def loss(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(predictions.float(), targets.float().reshape(predictions.shape))

    def metrics(self, predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        error = predictions.float() - targets.float().reshape(predictions.shape)
        return {"mse": error.pow(2).mean().item(), "mae": error.abs().mean().item()}


class TaskModel(nn.Module):
    """An encoder + a task head; ``forward(batch)`` -> TaskOutput (loss if batch has targets)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, batch: dict[str, torch.Tensor]) -> TaskOutput:
        representation = self.encoder.representation(batch)
        logits = self.head(representation)
        output = TaskOutput(logits=logits)
        targets = batch.get("targets")
        if targets is not None:
            output.loss = self.head.loss(logits, targets)
            with torch.no_grad():
                output.metrics = self.head.metrics(logits, targets)
        return output


def build_task_model(encoder: nn.Module, task: str, *, num_classes: int | None = None,
                     out_dim: int = 1) -> TaskModel:
    """A TaskModel with a classification (needs num_classes) or regression head."""
    if task == "classification":
        if not num_classes or num_classes < 2:
            raise ValueError("classification needs num_classes >= 2")
        return TaskModel(encoder, ClassificationHead(encoder.representation_dim, num_classes))
    if task == "regression":
        return TaskModel(encoder, RegressionHead(encoder.representation_dim, out_dim))
    raise ValueError(f"task must be 'classification' or 'regression', not {task!r}")


def meta_target(path: str, classes: Sequence[str] | None = None) -> Callable[[Any], int | float]:
    """A collator ``target_fn`` reading ``sample.meta`` at a dotted path ("taxonomy.leaf").

    With `classes`, the value is mapped to its index (classification); without, it is
    returned as a float (regression). A missing value raises KeyError, so the collator
    skips that sample and counts it.
    """
    index = {name: i for i, name in enumerate(classes)} if classes is not None else None

    def target(sample) -> int | float:
        value: Any = sample.meta
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"sample has no meta.{path}")
            value = value[part]
        if index is not None:
            if value not in index:
                raise KeyError(f"meta.{path}={value!r} is not a known class")
            return index[value]
        return float(value)

    return target
