"""From `Sample`s to model inputs: chat formatting, image-token expansion, answer-only labels.

Three kinds of sample share one batch format:

- **conversation** (``meta["sft"]["conversation"]``): DeepSeek-VL's chat format
  ``{system}\\n\\nUser: {q}\\n\\nAssistant: {a}<eos>User: ...``. Labels are -100 on the system
  prompt, user turns and the ``Assistant:`` prefix; the loss covers each answer and its
  end-of-sentence token only. The i-th ``<image_placeholder>`` in user turns is the i-th
  image of ``sample.images``; when a conversation has images but no placeholder, they are put
  at the start of the first user turn.
- **image + text pair** (captions, document OCR, web pages: images and ``text`` or
  ``markdown``): ``<bos><image tokens...>text<eos>``, loss on the text and eos.
  **Interleaved documents** (a web article, an e-book chapter, a PDF page with figures) are
  pairs whose text holds one ``<image_placeholder>`` per image: the i-th placeholder
  becomes the i-th image's token block at that place, ``<bos>text<image tokens>text...<eos>``.
  A text with images but no placeholder keeps them all first.
- **text only**: ``<bos>text<eos>``, loss on the text and eos.

Every sequence starts with the tokenizer's bos token (never trained on). Each placeholder
becomes ``num_image_tokens`` copies of the image token id (as transformers'
``DeepseekVLHybridProcessor.replace_image_token`` expands it: 576 for the real models,
``(image_size / patch_size) ** 2`` for the tiny presets), which the model replaces by the
adaptor's outputs; image tokens are never trained on.

Limits (`MAX_SEQUENCE_TOKENS`, `MAX_IMAGES_PER_SAMPLE`): images past the per-sample limit are
dropped with their placeholders; truncation never cuts an image's token block: when the
token limit falls inside or before a block, that image and every later one are dropped.
Both drops are counted in ``skipped`` (``image_over_limit``, ``image_truncated``: one per
image, the sample itself is kept). A batch is a dict of tensors (see `VLCollator.__call__`); images of all
samples are stacked in order along one axis, which is how the DeepSeek-VL models consume them.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful language and vision assistant. You are able to understand the visual "
    "content that the user provides, and assist the user with a variety of tasks using natural "
    "language.")
# Keys of a batch that the transformers DeepSeek-VL models accept as forward() arguments.
MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "labels", "pixel_values", "high_res_pixel_values")
# Paper Table 4: stages 2 and 3 train on 4096-token sequences (image tokens included).
MAX_SEQUENCE_TOKENS = 4096
# Six 576-token blocks are 3456 of those 4096 tokens, which leaves room for the text
# around them; a document with more images keeps its first six.
MAX_IMAGES_PER_SAMPLE = 6


class SampleEncodeError(ValueError):
    """A sample that cannot become model inputs (no text, bad image, placeholder mismatch)."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass
class EncodedSample:
    """One sample as token ids, labels (-100 = no loss) and decoded RGB images."""

    key: str
    kind: str  # "conversation" | "pair" | "text"
    input_ids: list[int]
    labels: list[int]
    images: list[Any] = field(default_factory=list)  # PIL images, in placeholder order
    target: float | int | None = None


def sample_kind(sample) -> str:
    """Which of the three formats `sample` is encoded in."""
    sft = (sample.meta or {}).get("sft") or {}
    if sft.get("conversation"):
        return "conversation"
    return "pair" if sample.images else "text"


def decode_image(data: bytes):
    """RGB PIL image from encoded bytes; SampleEncodeError when they are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SampleEncodeError("bad_image", f"cannot decode image: {exc}") from exc
    return image.convert("RGB")


class VLCollator:
    """Encode samples and batch them; usable as a DataLoader ``collate_fn``.

    processor: a DeepSeek-VL processor (`model.processor.build_processor` / `load_model`).
    max_length: truncate sequences to this many tokens (images cut by the limit are dropped
        with their tokens); None keeps everything.
    max_images: images per sample; later ones are dropped with their placeholders
        (a conversation with more is skipped as ``too_many_images``: its questions would
        ask about images it no longer has). None: no limit.
    system_prompt: put before conversations that have no system turn (None: nothing).
    target_fn: ``sample -> int | float`` for the task heads; its values go to
        ``batch["targets"]``.
    on_error: "skip" (log, count in ``self.skipped[reason]``, leave the sample out) or
        "raise".
    padding_side: "right" for training, "left" for batched generation.
    """

    def __init__(self, processor, *, max_length: int | None = MAX_SEQUENCE_TOKENS,
                 max_images: int | None = MAX_IMAGES_PER_SAMPLE,
                 system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
                 target_fn: Callable[[Any], float | int] | None = None,
                 on_error: str = "skip", padding_side: str = "right"):
        if on_error not in ("skip", "raise"):
            raise ValueError("on_error must be 'skip' or 'raise'")
        if padding_side not in ("left", "right"):
            raise ValueError("padding_side must be 'left' or 'right'")
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_token = processor.image_token
        self.image_token_id = int(processor.image_token_id)
        self.num_image_tokens = int(processor.num_image_tokens)
        self.hybrid = "high_res_pixel_values" in getattr(
            processor.image_processor, "model_input_names", ())
        if max_images is not None and max_images < 0:
            raise ValueError("max_images must be >= 0 or None")
        self.max_length = max_length
        self.max_images = max_images
        self.system_prompt = system_prompt
        self.target_fn = target_fn
        self.on_error = on_error
        self.padding_side = padding_side
        self.skipped: Counter = Counter()
        tok = self.tokenizer
        self.bos_id = tok.bos_token_id
        self.eos_id = tok.eos_token_id
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if self.eos_id is None:
            raise ValueError("the tokenizer has no eos token")

    # -- encoding ---------------------------------------------------------------------
    def _text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _segment_ids(self, text: str) -> tuple[list[int], int]:
        """Ids of `text` with each placeholder expanded; also the number of placeholders."""
        ids: list[int] = []
        parts = text.split(self.image_token)
        for index, part in enumerate(parts):
            if index:
                ids += [self.image_token_id] * self.num_image_tokens
            ids += self._text_ids(part)
        return ids, len(parts) - 1

    def conversation_segments(self, conversation: Sequence[dict], num_images: int,
                              *, add_generation_prompt: bool = False) -> list[tuple[str, bool]]:
        """(text, trained) pieces of a conversation in DeepSeek-VL's chat format.

        With ``add_generation_prompt`` the pieces end with ``Assistant:`` (for generation).
        """
        turns = [dict(t) for t in conversation]
        if any(self.image_token in str(t.get("content", "")) for t in turns
               if t.get("role") != "user"):
            raise SampleEncodeError("placeholder_outside_user_turn",
                                    f"{self.image_token} may only appear in user turns")
        placeholders = sum(t.get("content", "").count(self.image_token)
                           for t in turns if t.get("role") == "user")
        if num_images and not placeholders:
            first_user = next((t for t in turns if t.get("role") == "user"), None)
            if first_user is None:
                raise SampleEncodeError("no_user_turn", "images but no user turn to put them in")
            first_user["content"] = self.image_token * num_images + "\n" + first_user["content"]
            placeholders = num_images
        if placeholders != num_images:
            raise SampleEncodeError(
                "placeholder_mismatch",
                f"{placeholders} {self.image_token} in user turns but {num_images} images")
        segments: list[tuple[str, bool]] = []
        if turns and turns[0].get("role") == "system":
            segments.append((turns.pop(0)["content"] + "\n\n", False))
        elif self.system_prompt:
            segments.append((self.system_prompt + "\n\n", False))
        for turn in turns:
            role, content = turn.get("role"), turn.get("content", "")
            if role == "user":
                segments.append((f"User: {content}\n\n", False))
            elif role == "assistant":
                segments.append(("Assistant:", False))
                segments.append((f" {content}", True))
                segments.append((None, True))  # the end-of-sentence token, trained
            else:
                raise SampleEncodeError("bad_role", f"unknown role {role!r} in conversation")
        if add_generation_prompt:
            segments.append(("Assistant:", False))
        return segments

    def _encode_segments(self, segments: Sequence[tuple[str | None, bool]]) -> tuple[list[int], list[int]]:
        input_ids: list[int] = []
        labels: list[int] = []
        if self.bos_id is not None:
            input_ids.append(self.bos_id)
            labels.append(IGNORE_INDEX)
        for text, trained in segments:
            if text is None:  # eos
                ids = [self.eos_id]
            else:
                ids, _ = self._segment_ids(text)
            input_ids += ids
            # Image tokens are never predicted, even inside a trained segment.
            labels += [(i if trained and i != self.image_token_id else IGNORE_INDEX) for i in ids]
        return input_ids, labels

    def encode(self, sample) -> EncodedSample:
        """One sample as ids/labels/images; raises SampleEncodeError on unusable input."""
        kind = sample_kind(sample)
        data = list(sample.images)
        if kind == "conversation":
            if self.max_images is not None and len(data) > self.max_images:
                raise SampleEncodeError("too_many_images",
                                        f"{len(data)} images, the limit is {self.max_images}")
            images = [decode_image(d) for d in data]
            segments = self.conversation_segments(sample.meta["sft"]["conversation"], len(images))
        else:
            text = sample.text or sample.markdown or ""
            if not text.strip():
                raise SampleEncodeError("no_text", "sample has neither a conversation nor text")
            placeholders = text.count(self.image_token)
            if placeholders and placeholders != len(data):
                raise SampleEncodeError(
                    "placeholder_mismatch",
                    f"{placeholders} {self.image_token} in the text but {len(data)} images")
            keep = len(data) if self.max_images is None else min(len(data), self.max_images)
            if keep < len(data):
                self.skipped["image_over_limit"] += len(data) - keep
                data = data[:keep]
                if placeholders:
                    text = self.drop_placeholders(text, keep)
            images = [decode_image(d) for d in data]
            if placeholders:  # interleaved: each block where its placeholder stands
                segments = [(text, True), (None, True)]
            else:  # images first, then their text
                segments = [(self.image_token * len(images), False)] if images else []
                segments += [(text, True), (None, True)]
        input_ids, labels = self._encode_segments(segments)
        target = self.target_fn(sample) if self.target_fn is not None else None
        encoded = EncodedSample(sample.key, kind, input_ids, labels, images, target)
        return self._truncate(encoded)

    def drop_placeholders(self, text: str, keep: int) -> str:
        """`text` with every placeholder after the first `keep` removed (the text stays)."""
        parts = text.split(self.image_token)
        return self.image_token.join(parts[:keep + 1]) + "".join(parts[keep + 1:])

    def encode_prompt(self, conversation: Sequence[dict], images: Sequence[Any] = (),
                      key: str = "prompt") -> EncodedSample:
        """A generation prompt: the conversation so far, ending in ``Assistant:``.

        `images` are PIL images or encoded bytes, filling the placeholders in order.
        """
        images = [decode_image(i) if isinstance(i, (bytes, bytearray)) else i.convert("RGB")
                  for i in images]
        segments = self.conversation_segments(conversation, len(images), add_generation_prompt=True)
        input_ids, labels = self._encode_segments(segments)
        return EncodedSample(key, "conversation", input_ids, labels, list(images))

    def _truncate(self, encoded: EncodedSample) -> EncodedSample:
        if self.max_length is None or len(encoded.input_ids) <= self.max_length:
            return encoded
        ids = encoded.input_ids[: self.max_length]
        labels = encoded.labels[: self.max_length]
        image_tokens = sum(1 for i in ids if i == self.image_token_id)
        whole, partial = divmod(image_tokens, self.num_image_tokens)
        if partial:
            # The limit cut an image's block: drop the part that fits. Only `partial`
            # tokens, since blocks of images placed first touch each other.
            ids, labels = ids[:-partial], labels[:-partial]
        if not any(label != IGNORE_INDEX for label in labels):
            raise SampleEncodeError("truncated_away",
                                    f"nothing to learn within max_length={self.max_length}")
        dropped = len(encoded.images) - whole
        if dropped:
            self.skipped["image_truncated"] += dropped
            log.debug("sample %s: %d image(s) past max_length=%d dropped",
                      encoded.key, dropped, self.max_length)
        encoded.input_ids, encoded.labels = ids, labels
        encoded.images = encoded.images[:whole]
        return encoded

    # -- batching ---------------------------------------------------------------------
    def __call__(self, samples: Sequence[Any]) -> dict[str, torch.Tensor] | None:
        """A padded batch, or None when every sample was skipped.

        Keys: ``input_ids``, ``attention_mask``, ``labels`` [b, t]; when any sample has
        images: ``pixel_values`` [n_images, 3, s, s] (+ ``high_res_pixel_values`` [n, 3, S, S]
        for the hybrid family) and ``image_sample_index`` [n_images] (batch row of each
        image); ``targets`` [b] when a target_fn is set. Pass ``model_inputs(batch)`` to the
        model.
        """
        encoded: list[EncodedSample] = []
        for sample in samples:
            if isinstance(sample, EncodedSample):
                encoded.append(sample)
                continue
            try:
                encoded.append(self.encode(sample))
            except Exception as exc:  # one bad sample must not stop a training run
                if self.on_error == "raise":
                    raise
                reason = getattr(exc, "reason", type(exc).__name__)
                self.skipped[reason] += 1
                log.warning("skipping sample %s: %s", getattr(sample, "key", "?"), exc)
        if not encoded:
            return None
        return self.pad(encoded)

    def pad(self, encoded: Sequence[EncodedSample]) -> dict[str, torch.Tensor]:
        """Pad encoded samples into one batch (see `__call__` for the keys)."""
        length = max(len(e.input_ids) for e in encoded)
        batch_ids = torch.full((len(encoded), length), self.pad_id, dtype=torch.long)
        batch_labels = torch.full((len(encoded), length), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(encoded), length), dtype=torch.long)
        for row, e in enumerate(encoded):
            n = len(e.input_ids)
            span = slice(length - n, length) if self.padding_side == "left" else slice(0, n)
            batch_ids[row, span] = torch.tensor(e.input_ids, dtype=torch.long)
            batch_labels[row, span] = torch.tensor(e.labels, dtype=torch.long)
            attention[row, span] = 1
        batch: dict[str, torch.Tensor] = {
            "input_ids": batch_ids, "attention_mask": attention, "labels": batch_labels}
        images = [image for e in encoded for image in e.images]
        if images:
            pixels = self.processor.image_processor(images=images, return_tensors="pt")
            batch["pixel_values"] = pixels["pixel_values"]  # [n, 3, s, s]
            if self.hybrid:
                batch["high_res_pixel_values"] = pixels["high_res_pixel_values"]  # [n, 3, S, S]
            batch["image_sample_index"] = torch.tensor(
                [row for row, e in enumerate(encoded) for _ in e.images], dtype=torch.long)
        if self.target_fn is not None:
            targets = [e.target for e in encoded]
            dtype = torch.long if all(isinstance(t, int) for t in targets) else torch.float
            batch["targets"] = torch.tensor(targets, dtype=dtype)
        return batch


def model_inputs(batch: dict[str, torch.Tensor], *, with_labels: bool = True) -> dict[str, torch.Tensor]:
    """The subset of a batch that DeepSeek-VL's forward() accepts."""
    keys = MODEL_INPUT_KEYS if with_labels else tuple(k for k in MODEL_INPUT_KEYS if k != "labels")
    return {k: batch[k] for k in keys if k in batch}
