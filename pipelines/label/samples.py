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
        label = label_without_model(labeler, sample)
        if label is not None:
            labels[i] = label
            continue
        prompt = prompt_of(sample)
        prompts.append(prompt[0])
        counts.append(prompt[1])
        where.append(i)
    for i, label in zip(where, labeler.label_prompts(prompts, counts)):
        labels[i] = label
    return labels  # type: ignore[return-value]


def label_without_model(labeler: Labeler, sample: Sample) -> Label | None:
    """`sample`'s label when the classifier is not needed (a task rule fired, or there is
    no prompt to classify: unlabeled); None when its prompt needs the classifier."""
    hit = task_rule(sample)
    label = (labeler.label_rule(hit.node_id, hit.rule, hit.reason, hit.confidence)
             if hit is not None else None)
    if label is not None:
        return label
    if prompt_of(sample) is not None:
        return None
    return labeler.unlabeled(
        "text-only sample without a prompt (language data has no use case)"
        if sample.image is None else "no rule fired and no prompt to classify")


def label_sample(labeler: Labeler, sample: Sample) -> Label:
    """One sample's label (batch with `label_samples` where you can)."""
    return label_samples(labeler, [sample])[0]
