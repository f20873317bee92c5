"""`vlforge chat`: ask a model about images, or answer every sample of a run directory.

    vlforge chat --model DIR --image a.png [--image b.png] "What is in the image?"
    vlforge chat --model DIR --run RUNDIR --out answers.jsonl [--question "Describe it."]

One question streams the answer token by token (transformers' `TextStreamer`). With
``--run`` every sample of a finished run is answered in batches (left-padded): samples with
a conversation (``meta["sft"]``) are asked their conversation up to the last answer, whose
text is written as ``reference``; other samples are asked ``--question`` about their images.
Generation is greedy unless ``--sample`` (temperature / top-p).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger(__name__)

DEFAULT_QUESTION = "Describe the image."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = __doc__
    parser.add_argument("question", nargs="?", help="the question (single-question mode)")
    parser.add_argument("--model", required=True, help="model directory (vlforge model init / "
                        "a training checkpoint / published weights in transformers layout)")
    parser.add_argument("--image", action="append", default=[], metavar="FILE",
                        help="an image file; repeat for several (placed in order)")
    parser.add_argument("--run", help="answer every sample of this run directory instead")
    parser.add_argument("--out", help="JSONL file for --run answers (default: stdout)")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per batch with --run")
    parser.add_argument("--limit", type=int, help="answer at most this many samples of --run")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0, help="seed for --sample")
    parser.add_argument("--system", help="system prompt (default: DeepSeek-VL's)")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: cuda if available)")
    parser.add_argument("--no-stream", action="store_true", help="print the answer at the end")
    parser.add_argument("--json", action="store_true", help="single question: print JSON")


class Chat:
    """A loaded model + collator that turns conversations into answers."""

    def __init__(self, model_dir: str | Path, *, device: str | None = None,
                 system_prompt: str | None = None, dtype=None):
        import torch

        from model.collate import DEFAULT_SYSTEM_PROMPT, VLCollator
        from model.loading import load_model

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model, self.processor = load_model(model_dir, dtype=dtype, device=device)
        self.model.eval()
        self.device = device
        self.tokenizer = self.processor.tokenizer
        self.collator = VLCollator(self.processor, padding_side="left",
                                   system_prompt=system_prompt or DEFAULT_SYSTEM_PROMPT)

    def _generation_kwargs(self, max_new_tokens: int, sample: bool, temperature: float,
                           top_p: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": sample,
                                  "eos_token_id": self.tokenizer.eos_token_id,
                                  "pad_token_id": self.collator.pad_id}
        if sample:
            kwargs.update(temperature=temperature, top_p=top_p)
        return kwargs

    def generate(self, prompts: list, *, max_new_tokens: int = 128, sample: bool = False,
                 temperature: float = 0.7, top_p: float = 0.9, streamer=None) -> list[str]:
        """Answers to encoded prompts (`VLCollator.encode_prompt`), one batch."""
        import torch

        from model.collate import model_inputs

        batch = self.collator.pad(prompts)
        inputs = {k: v.to(self.device) for k, v in model_inputs(batch, with_labels=False).items()}
        if "pixel_values" in inputs:
            dtype = next(self.model.parameters()).dtype
            for key in ("pixel_values", "high_res_pixel_values"):
                if key in inputs:
                    inputs[key] = inputs[key].to(dtype)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, streamer=streamer,
                **self._generation_kwargs(max_new_tokens, sample, temperature, top_p))
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return [text.strip() for text in
                self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def ask(self, question: str, images: Iterable[Any] = (), *, stream: bool = False, **kwargs) -> str:
        """One question about `images` (paths, bytes or PIL images)."""
        loaded = [Path(i).read_bytes() if isinstance(i, (str, Path)) else i for i in images]
        content = question
        if loaded and self.processor.image_token not in question:
            content = self.processor.image_token * len(loaded) + "\n" + question
        prompt = self.collator.encode_prompt([{"role": "user", "content": content}], loaded)
        streamer = None
        if stream:
            from transformers import TextStreamer

            streamer = TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        return self.generate([prompt], streamer=streamer, **kwargs)[0]


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

    from pipelines.run_dir import RunDir

    run_dir = RunDir(run).require_complete()
    total = run_dir.manifest().num_rows if limit is None else limit
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


def main(args: argparse.Namespace, extra: list[str]) -> int:
    import torch

    if not args.run and not args.question:
        raise ValueError("give a question, or --run RUNDIR to answer a run's samples")
    if args.sample:
        torch.manual_seed(args.seed)
    chat = Chat(args.model, device=args.device, system_prompt=args.system)
    kwargs = dict(max_new_tokens=args.max_new_tokens, sample=args.sample,
                  temperature=args.temperature, top_p=args.top_p)
    if args.run:
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
        try:
            counts = answer_run(chat, args.run, out, question=args.question or DEFAULT_QUESTION,
                                batch_size=args.batch_size, limit=args.limit, **kwargs)
        finally:
            if args.out:
                out.close()
        print(json.dumps(counts), file=sys.stderr)
        return 0
    stream = not (args.no_stream or args.json)
    answer = chat.ask(args.question, args.image, stream=stream, **kwargs)
    if args.json:
        print(json.dumps({"question": args.question, "images": args.image, "answer": answer},
                         ensure_ascii=False))
    elif not stream:
        print(answer)
    return 0
