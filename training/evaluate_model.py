"""`vlforge eval`: validation loss per taxonomy category and multiple-choice accuracy.

    vlforge eval --model RUN/model --data RUN_DIR [--choices mc.jsonl] [--json]

Loss is the next-token loss on each sample's supervised tokens (answers for conversations,
the text for image-text pairs), summed per main taxonomy category. Multiple-choice items
come from samples whose meta["sft"] lists options, and from --choices jsonl files; each
option is scored by its perplexity as the answer (the paper's trick for small models).
A model directory fine-tuned with task heads (``vlforge train --head ...``) also gets its
head's accuracy (classification) or error (regression).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from tqdm import tqdm


def evaluate(model_dir: str, data: list[str], choices: list[str] = (), *,
             max_samples: int | None = None, batch_size: int = 8, seq_len: int = 4096,
             device: str | None = None, progress: bool = True,
             split: str | None = "validation") -> dict[str, Any]:
    """The evaluation report for a model directory on runs and choice files.

    Runs are read on their held-out `split` ("validation", the default: documents the
    trainer never saw); ``split=None`` reads every sample.
    """
    import torch

    from model.collate import VLCollator
    from model.loading import load_model
    from pipelines.core.run_dir import RunDir
    from training.evaluate import (
        category_losses,
        choice_accuracy,
        choice_item_from_sample,
        choice_items_from_jsonl,
    )
    from training.heads import evaluate_heads, has_heads

    if not data and not choices:
        raise ValueError("nothing to evaluate: pass --data RUN_DIR and/or --choices FILE")
    from model.cnn_dir import is_cnn_dir

    if is_cnn_dir(model_dir):  # the CNN hybrid has no language model: its head's metrics
        if choices:
            raise ValueError("multiple-choice scoring needs a language model; a cnn-hybrid "
                             "model is scored by its task head only")
        report = {"model": model_dir, "runs": {}, "split": split or "all"}
        for url in data:
            run = RunDir(url).require_complete()
            report["runs"][url] = {"heads": evaluate_heads(
                model_dir, itertools.islice(run.iter_samples(split=split), max_samples),
                batch_size=batch_size,
                device=device or ("cuda" if torch.cuda.is_available() else "cpu"))}
        return report
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_model(model_dir, device=device)
    model.eval()
    collator = VLCollator(processor, max_length=seq_len)
    report: dict[str, Any] = {"model": model_dir, "runs": {}, "split": split or "all"}
    items = []
    for path in choices:
        items.extend(choice_items_from_jsonl(path))
    for url in data:
        run = RunDir(url).require_complete()

        def samples(run=run):
            stream = itertools.islice(run.iter_samples(split=split), max_samples)
            return tqdm(stream, desc=os.path.basename(url), unit="sample", disable=not progress)

        report["runs"][url] = category_losses(model, collator, samples(), batch_size=batch_size,
                                              device=device)
        items.extend(i for i in map(choice_item_from_sample,
                                    itertools.islice(run.iter_samples(split=split), max_samples)) if i)
        if has_heads(model_dir):
            report["runs"][url]["heads"] = evaluate_heads(
                model_dir, itertools.islice(run.iter_samples(split=split), max_samples),
                batch_size=batch_size, device=device)
    if items:
        report["multiple_choice"] = choice_accuracy(model, collator, items, device=device)
    return report
