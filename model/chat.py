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

import logging
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

DEFAULT_QUESTION = "Describe the image."


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
