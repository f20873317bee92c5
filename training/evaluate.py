"""Evaluation: validation loss per taxonomy category, multiple choice by option perplexity.

- Loss per category: every sample's summed next-token loss over its supervised tokens,
  grouped by the main category of ``meta["taxonomy"]["leaf"]`` (the paper's Table 3 top
  level; "unlabeled" when a sample has none).
- Multiple choice (the paper's monitoring trick for small models, which cannot yet follow
  "answer with A/B/C"): each option is scored as the assistant's answer to the question;
  the option with the lowest perplexity (mean NLL over its tokens) is the model's choice.
  Items come from samples whose ``meta["sft"]`` has ``options`` (+ ``answer``: index or
  option text; default: the conversation's own last answer), or from a jsonl of
  ``{"question", "options", "answer", "image"?: path}``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

from pipelines.core.sample import Sample

log = logging.getLogger(__name__)

UNLABELED = "unlabeled"


def main_category_fn() -> Any:
    """leaf id -> main category id, via the taxonomy when it loads (id prefix otherwise)."""
    try:
        from taxonomy.tree import load_taxonomy

        taxonomy = load_taxonomy()
    except Exception as exc:  # the taxonomy is optional for evaluation
        log.warning("taxonomy not loaded (%s): main category = leaf id prefix", exc)
        taxonomy = None

    def main_category(leaf: str | None) -> str:
        if not leaf:
            return UNLABELED
        if taxonomy is not None:
            resolved = taxonomy.resolve(leaf) or leaf
            if resolved in taxonomy.nodes:
                return taxonomy.main_category(resolved)
        return leaf.split(".")[0]

    return main_category


@torch.no_grad()
def token_losses(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed NLL, supervised token count) per row of a collated batch."""
    from model.collate import model_inputs

    logits = model(**model_inputs(batch, with_labels=False)).logits  # [b, t, vocab]
    labels = batch["labels"][:, 1:]  # token t is predicted from position t-1
    nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels, ignore_index=-100,
                          reduction="none")  # [b, t-1]
    mask = labels != -100
    return (nll * mask).sum(1), mask.sum(1)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _encode_all(collator: Any, samples: Iterable[Sample], skipped: dict[str, int]
                ) -> Iterator[tuple[Sample, Any]]:
    for sample in samples:
        try:
            yield sample, collator.encode(sample)
        except Exception as exc:  # a bad sample is counted, never fatal
            reason = getattr(exc, "reason", type(exc).__name__)
            skipped[reason] = skipped.get(reason, 0) + 1


def category_losses(model: Any, collator: Any, samples: Iterable[Sample], *,
                    batch_size: int = 8, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Loss over all samples and per main taxonomy category."""
    main_category = main_category_fn()
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])  # nll, tokens, samples
    skipped: dict[str, int] = {}
    for chunk in _batches(_encode_all(collator, samples, skipped), batch_size):
        batch = {k: v.to(device) for k, v in collator.pad([e for _, e in chunk]).items()}
        nll, count = token_losses(model, batch)
        for (sample, _), row_nll, row_count in zip(chunk, nll.tolist(), count.tolist()):
            leaf = (sample.meta.get("taxonomy") or {}).get("leaf")
            for name in ("all", main_category(leaf)):
                sums[name][0] += row_nll
                sums[name][1] += row_count
                sums[name][2] += 1
    report = {name: {"loss": nll / max(tokens, 1), "tokens": tokens, "samples": n}
              for name, (nll, tokens, n) in sums.items()}
    overall = report.pop("all", {"loss": float("nan"), "tokens": 0, "samples": 0})
    return {**overall, "by_category": dict(sorted(report.items())), "skipped": skipped}


# -- multiple choice -------------------------------------------------------------------------
@dataclass
class ChoiceItem:
    """A question with options; `answer` is the index of the right option."""

    key: str
    conversation: list[dict[str, str]]  # ends with the user turn the options answer
    options: list[str]
    answer: int
    images: tuple[bytes, ...] = ()
    category: str | None = None


def choice_item_from_sample(sample: Sample) -> ChoiceItem | None:
    """A ChoiceItem from a sample whose meta["sft"] has options (None otherwise)."""
    sft = sample.meta.get("sft") or {}
    options = sft.get("options")
    conversation = list(sft.get("conversation") or [])
    if not options or not conversation:
        return None
    final = conversation.pop() if conversation[-1].get("role") == "assistant" else None
    answer = sft.get("answer", final["content"] if final else None)
    if isinstance(answer, str):
        answer = options.index(answer) if answer in options else None
    if not isinstance(answer, int) or not 0 <= answer < len(options):
        return None
    return ChoiceItem(sample.key, conversation, list(options), answer, sample.images,
                      (sample.meta.get("taxonomy") or {}).get("leaf"))


def choice_items_from_jsonl(path: str) -> list[ChoiceItem]:
    """ChoiceItems from ``{"question", "options", "answer", "image"?}`` lines."""
    items = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [k for k in ("question", "options", "answer") if k not in row]
            if missing:
                raise ValueError(f"{path}:{number}: missing {', '.join(missing)}")
            answer = row["answer"]
            if isinstance(answer, str):
                answer = row["options"].index(answer)
            images: tuple[bytes, ...] = ()
            question = row["question"]
            if row.get("image"):
                image_path = os.path.join(os.path.dirname(path), row["image"])
                with open(image_path, "rb") as image:
                    images = (image.read(),)
                question = "<image_placeholder>" + question
            items.append(ChoiceItem(f"{os.path.basename(path)}#{number}",
                                    [{"role": "user", "content": question}],
                                    list(row["options"]), int(answer), images, row.get("category")))
    return items


def choice_accuracy(model: Any, collator: Any, items: Sequence[ChoiceItem], *,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """Accuracy of picking the lowest-perplexity option, overall and per main category."""
    main_category = main_category_fn()
    correct: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        encoded = []
        for option in item.options:
            conversation = item.conversation + [{"role": "assistant", "content": option}]
            sample = Sample(key=item.key, source="mc", locator=item.key,
                            image=item.images[0] if item.images else None,
                            extra_images=tuple(item.images[1:]),
                            meta={"sft": {"conversation": conversation}})
            encoded.append(collator.encode(sample))
        batch = {k: v.to(device) for k, v in collator.pad(encoded).items()}
        nll, count = token_losses(model, batch)
        perplexity = nll / count.clamp(min=1)  # mean NLL: longer options are not penalised
        hit = int(int(perplexity.argmin()) == item.answer)
        for name in ("all", main_category(item.category)):
            correct[name][0] += hit
            correct[name][1] += 1
    overall = correct.pop("all", [0, 0])
    return {"items": overall[1], "accuracy": overall[0] / overall[1] if overall[1] else None,
            "by_category": {k: {"items": n, "accuracy": c / n}
                            for k, (c, n) in sorted(correct.items())}}
