"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Iterator

from model.chat import DEFAULT_QUESTION, Chat


def run_prompts(chat: Chat, samples: Iterable[Any], question: str) -> Iterator[tuple[Any, Any, str | None]]:
    """(sample, encoded prompt or error message, reference answer) for each sample of a run."""
    from model.collate import SampleEncodeError

    for sample in samples:
        conversation = ((sample.meta or {}).get("sft") or {}).get("conversation")
        reference = None
        if conversation:
            turns = list(conversation)
            if turns and turns[-1].get("role") == "assistant":
                reference = turns.pop()["content"]
        else:
            turns = [{"role": "user", "content": question}]
        try:
            yield sample, chat.collator.encode_prompt(turns, sample.images, key=sample.key), reference
        except SampleEncodeError as exc:
            yield sample, str(exc), reference

def answer_run(chat: Chat, run: str, out, *, question: str = DEFAULT_QUESTION,
               batch_size: int = 8, limit: int | None = None, **kwargs) -> dict[str, int]:
    """Answer every sample of a finished run; one JSON line per sample written to `out`."""
    import itertools

    from tqdm import tqdm

    from pipelines.core.run_dir import RunDir

    run_dir = RunDir(run).require_complete()
    total = run_dir.manifest_num_rows() if limit is None else limit
    samples = itertools.islice(run_dir.iter_samples(), limit)
    counts = {"answered": 0, "errors": 0}
    pending: list[tuple[Any, Any, str | None]] = []

    def flush() -> None:
        answers = chat.generate([p for _, p, _ in pending], **kwargs)
        for (sample, _, reference), answer in zip(pending, answers):
            out.write(json.dumps({"key": sample.key, "answer": answer, "reference": reference},
                                 ensure_ascii=False) + "\n")
        counts["answered"] += len(pending)
        pending.clear()

    for sample, prompt, reference in tqdm(run_prompts(chat, samples, question), total=total,
                                          desc="answering", unit="sample", file=sys.stderr):
        if isinstance(prompt, str):  # a sample that cannot be asked: record why, go on
            out.write(json.dumps({"key": sample.key, "error": prompt}) + "\n")
            counts["errors"] += 1
            continue
        pending.append((sample, prompt, reference))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return counts
