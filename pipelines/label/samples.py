"""Label pipeline samples: task rules first, then the taxonomy labeler over prompts."""

from __future__ import annotations

from typing import Sequence

from pipelines.core.sample import Sample
from pipelines.label.rules import prompt_of, task_rule
from taxonomy.labeler import Label, Labeler


def label_samples(labeler: Labeler, samples: Sequence[Sample]) -> list[Label]:
    """Label samples: rules where they fire, prompts batched through the classifier."""
    labels: list[Label | None] = [None] * len(samples)
    prompts, where, counts = [], [], []
    for i, sample in enumerate(samples):
        hit = task_rule(sample)
        label = (labeler.label_rule(hit.node_id, hit.rule, hit.reason, hit.confidence)
                 if hit is not None else None)
        if label is not None:
            labels[i] = label
            continue
        prompt = prompt_of(sample)
        if prompt is not None:
            prompts.append(prompt[0])
            counts.append(prompt[1])
            where.append(i)
            continue
        labels[i] = labeler.unlabeled(
            "text-only sample without a prompt (language data has no use case)"
            if sample.image is None else "no rule fired and no prompt to classify")
    for i, label in zip(where, labeler.label_prompts(prompts, counts)):
        labels[i] = label
    return labels  # type: ignore[return-value]


def label_sample(labeler: Labeler, sample: Sample) -> Label:
    """One sample's label (batch with `label_samples` where you can)."""
    return label_samples(labeler, [sample])[0]
