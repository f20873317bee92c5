"""Streams training samples from finished run directories and text corpora.

Nothing is materialised: shards are read one at a time (`iter_shard_samples`) through a
seeded shuffle buffer. Every stream is infinite (epoch after epoch, each with its own
seeded order) so that all DDP ranks always have data for the same number of steps, and
every stream has a small `state()` — ``{"epoch", "offset"}`` — that pins its exact
position: a resumed run rebuilds the same epoch order and skips `offset` items, which are
only read, never decoded or collated.

Layers, bottom up:
  ShardSampleStream   samples of run dirs' shards; shards split across ranks
  TextDocumentStream  documents of --text files (plain text or jsonl); split across ranks
  WeightedInterleave  several streams mixed by weight (the stage's `mixture`)
  SampleBatches       micro-batches through the model's collator
  PackedTextBatches   text packed into full seq_len rows (stage 2)
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
from typing import Any, Iterable, Iterator, Sequence

import torch

from pipelines.core.run_dir import RunDir
from pipelines.core.sample import Sample
from pipelines.core.shards import iter_shard_samples
from pipelines.core.text import IMAGE_PLACEHOLDER

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".jsonl", ".json")


class DataError(RuntimeError):
    """Training data that cannot be used (unfinished run, empty stream, bad text file)."""


def run_shards(run_urls: Sequence[str]) -> list[str]:
    """Shard URLs of finished runs, in a fixed order; unfinished runs are refused."""
    shards: list[str] = []
    for url in run_urls:
        run = RunDir(url).require_complete()
        found = run.shard_urls()
        if not found:
            log.warning("%s: finished run has no shards", url)
        shards.extend(found)
    return shards


def buffer_shuffle(items: Iterable[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Streaming shuffle: hold `size` items, emit a random one as each new item arrives."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        index = rng.randrange(size)
        yield buffer[index]
        buffer[index] = item
    rng.shuffle(buffer)
    yield from buffer


class EpochStream:
    """An endless, deterministic stream whose position is ``{"epoch", "offset"}``.

    Subclasses implement `epoch_items(epoch)`: this rank's items of one epoch in a seeded
    order; a shuffle buffer seeded by (seed, epoch, rank) sits on top.
    """

    def __init__(self, *, seed: int, rank: int, world_size: int, shuffle_buffer: int):
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.shuffle_buffer = shuffle_buffer
        self.epoch = 0
        self.offset = 0
        self.lenient = False
        self._items: Iterator[Any] | None = None

    def epoch_items(self, epoch: int) -> Iterator[Any]:
        raise NotImplementedError

    def __iter__(self) -> "EpochStream":
        return self

    def __next__(self) -> Any:
        for _ in range(2):  # at most one epoch boundary per item
            if self._items is None:
                self._items = self._open_epoch()
            try:
                item = next(self._items)
            except StopIteration:
                if self.offset == 0:
                    raise DataError(f"{type(self).__name__}: rank {self.rank} has no data "
                                    f"(world size {self.world_size})") from None
                self.epoch, self.offset, self._items = self.epoch + 1, 0, None
                continue
            self.offset += 1
            return item
        raise DataError(f"{type(self).__name__}: rank {self.rank} has no data")

    def _open_epoch(self) -> Iterator[Any]:
        rng = random.Random(f"{self.seed}/{self.epoch}/{self.rank}")
        items = buffer_shuffle(self.epoch_items(self.epoch), self.shuffle_buffer, rng)
        if self.offset:  # resume: replay the epoch's order up to where we stopped
            skipped = sum(1 for _ in itertools.islice(items, self.offset))
            if skipped < self.offset and self.lenient:
                # a position re-divided for another world size (training.loader.redivide)
                # may overshoot this rank's shorter part of the epoch: start the next one
                log.info("%s: rank part of epoch %d has %d items (< %d): next epoch",
                         type(self).__name__, self.epoch, skipped, self.offset)
                self.epoch, self.offset, self.lenient = self.epoch + 1, 0, False
                return self._open_epoch()
            if skipped < self.offset:
                raise DataError(f"cannot resume {type(self).__name__} at offset {self.offset}: "
                                f"epoch {self.epoch} has only {skipped} items (data changed?)")
        return items

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state(self, state: dict[str, int]) -> None:
        """Continue at `state()`; ``"lenient": True`` marks a re-divided (approximate) one."""
        self.epoch, self.offset, self._items = int(state["epoch"]), int(state["offset"]), None
        self.lenient = bool(state.get("lenient", False))


class ShardSampleStream(EpochStream):
    """Samples of a list of shards, each epoch in a new seeded shard order.

    With at least as many shards as ranks, each rank reads its own shards (every
    world_size-th of the epoch's order); with fewer, every rank reads all shards and keeps
    every world_size-th sample, so small runs still split evenly.
    """

    def __init__(self, shards: Sequence[str], *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle_buffer: int = 256,
                 exclude: frozenset[str] | set[str] = frozenset(),
                 include: frozenset[str] | set[str] | None = None):
        super().__init__(seed=seed, rank=rank, world_size=world_size,
                         shuffle_buffer=shuffle_buffer)
        if not shards:
            raise DataError("no shards to train on")
        self.shards = list(shards)
        self.exclude = frozenset(exclude)  # keys never trained on (the held-out split)
        self.include = None if include is None else frozenset(include)  # a fixed subset

    def _wanted(self, sample: Sample) -> bool:
        return sample.key not in self.exclude and (self.include is None
                                                   or sample.key in self.include)

    def epoch_items(self, epoch: int) -> Iterator[Sample]:
        order = list(self.shards)
        random.Random(f"{self.seed}/shards/{epoch}").shuffle(order)
        if len(order) >= self.world_size:
            for url in order[self.rank::self.world_size]:
                yield from (s for s in iter_shard_samples(url) if self._wanted(s))
            return
        index = 0
        for url in order:
            for sample in iter_shard_samples(url):
                if not self._wanted(sample):
                    continue
                if index % self.world_size == self.rank:
                    yield sample
                index += 1


class TextDocumentStream(EpochStream):
    """Documents of text files as text-only Samples (documents split across ranks).

    ``.jsonl``/``.json``: one JSON object a line with "text", or a "conversation" /
    "messages" list of {"role", "content"} (a text-only dialogue, put in meta["sft"]).
    Other files: plain text, documents separated by blank lines.
    """

    def __init__(self, files: Sequence[str], *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle_buffer: int = 256):
        super().__init__(seed=seed, rank=rank, world_size=world_size,
                         shuffle_buffer=shuffle_buffer)
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise DataError("text file(s) not found: " + ", ".join(missing))
        if not files:
            raise DataError("no text files given")
        self.files = sorted(os.path.abspath(f) for f in files)

    def epoch_items(self, epoch: int) -> Iterator[Sample]:
        index = 0
        for path in self.files:
            for number, doc in enumerate(read_documents(path)):
                if index % self.world_size == self.rank:
                    yield doc_sample(path, number, doc)
                index += 1


def read_documents(path: str) -> Iterator[dict[str, Any]]:
    """Documents of one text file: ``{"text": str}`` or ``{"conversation": [...]}``."""
    with open(path, encoding="utf-8") as handle:
        if path.endswith((".jsonl", ".json")):
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{line_no}: not JSON: {exc}") from exc
                conversation = row.get("conversation") or row.get("messages")
                if conversation:
                    yield {"conversation": conversation}
                elif isinstance(row.get("text"), str) and row["text"].strip():
                    yield {"text": row["text"]}
                else:
                    raise DataError(f"{path}:{line_no}: needs a 'text' or 'conversation' field")
            return
        lines: list[str] = []
        for line in handle:
            if line.strip():
                lines.append(line.rstrip("\n"))
            elif lines:
                yield {"text": "\n".join(lines)}
                lines = []
        if lines:
            yield {"text": "\n".join(lines)}


def doc_sample(path: str, number: int, doc: dict[str, Any]) -> Sample:
    """A text-only Sample for document `number` of `path`.

    Image placeholders are removed: a language-only sequence has no image to put there,
    and the tokenizer would turn each into an image token (packed) or the collator reject
    the document for it (unpacked)."""
    meta = {}
    text = doc.get("text")
    if text is not None:
        text = text_only(text)
    if "conversation" in doc:
        conversation = [{**turn, "content": text_only(turn["content"])}
                        if isinstance(turn.get("content"), str) else turn
                        for turn in doc["conversation"]]
        meta["sft"] = {"conversation": conversation, "template": "text-dialogue"}
    return Sample.create("text", f"{os.path.basename(path)}#{number}", text=text, meta=meta)


def text_only(text: str) -> str:
    """`text` without image placeholders (a removed one leaves a space between words)."""
    if IMAGE_PLACEHOLDER not in text:
        return text
    text = re.sub(r"[ \t]*" + re.escape(IMAGE_PLACEHOLDER) + r"[ \t]*", " ", text)
    text = re.sub(r"\n[ \t]+(?=\n)", "\n", text)  # a placeholder's own line, now blank
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class WeightedInterleave:
    """Draws from several streams by weight; the i-th draw is seeded by (seed, i)."""

    def __init__(self, streams: Sequence[EpochStream], weights: Sequence[float], seed: int = 0):
        if not streams or len(streams) != len(weights) or sum(weights) <= 0:
            raise DataError(f"need streams with positive total weight (got {list(weights)})")
        self.streams, self.weights, self.seed = list(streams), list(weights), seed
        self.draws = 0

    def __iter__(self) -> "WeightedInterleave":
        return self

    def __next__(self) -> Any:
        rng = random.Random(f"{self.seed}/mix/{self.draws}")
        (stream,) = rng.choices(self.streams, weights=self.weights)
        self.draws += 1
        return next(stream)

    def state(self) -> dict[str, Any]:
        return {"draws": self.draws, "streams": [s.state() for s in self.streams]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.draws = int(state["draws"])
        for stream, sub in zip(self.streams, state["streams"], strict=True):
            stream.load_state(sub)


def run_streams(run_urls: Sequence[str], mixture: dict[str, float], *, seed: int, rank: int,
                world_size: int, shuffle_buffer: int,
                subset: int | None = None) -> WeightedInterleave:
    """One stream per run directory, interleaved by the stage's mixture weights.

    Only the runs' ``train`` split is streamed: the held-out documents (the manifest's
    ``split`` column, `pipelines.core.split`) are left for `vlforge eval`. With `subset`,
    each run contributes only that many of its train samples (the smallest keys: a fixed,
    hash-random pick).
    """
    streams, weights = [], []
    for index, url in enumerate(run_urls):
        shards = run_shards([url])
        if not shards:
            continue
        run = RunDir(url)
        # held-out documents are eval's; duplicates found by `vlforge dedup` train once
        excluded = run.split_keys("validation") | run.removed_keys()
        include = None if subset is None else set(sorted(run.split_keys("train"))[:subset])
        streams.append(ShardSampleStream(shards, seed=seed + 7919 * index, rank=rank,
                                         world_size=world_size, shuffle_buffer=shuffle_buffer,
                                         exclude=excluded, include=include))
        weights.append(float(mixture.get(os.path.basename(url.rstrip("/")), 1.0)))
    if not streams:
        raise DataError("none of the run directories holds any shard: " + ", ".join(run_urls))
    return WeightedInterleave(streams, weights, seed=seed)


# -- micro-batches -------------------------------------------------------------------------
Batch = dict[str, torch.Tensor]


class SampleBatches:
    """Micro-batches of exactly `batch_size` encodable samples, collated by the model's collator.

    Samples the collator cannot encode (no text, broken image...) are skipped and counted in
    ``collator.skipped``; the batch is topped up from the stream so every step sees the
    same number of samples. A stream in which nothing is encodable raises `DataError`
    instead of spinning forever.
    """

    max_consecutive_skips = 1000

    def __init__(self, stream: Any, batch_size: int, collator: Any):
        self.stream, self.batch_size, self.collator = stream, batch_size, collator

    def next_batch(self) -> tuple[Batch, int]:
        """(batch, number of samples in it)."""
        encoded, skips = [], 0
        while len(encoded) < self.batch_size:
            sample = next(self.stream)
            try:
                encoded.append(self.collator.encode(sample))
                skips = 0
            except Exception as exc:  # one bad sample must not stop a training run
                reason = getattr(exc, "reason", type(exc).__name__)
                self.collator.skipped[reason] += 1
                log.warning("skipping sample %s: %s", sample.key, exc)
                skips += 1
                if skips >= self.max_consecutive_skips:
                    raise DataError(f"{skips} samples in a row could not be encoded "
                                    f"(skipped so far: {dict(self.collator.skipped)})") from exc
        return self.collator.pad(encoded), len(encoded)

    def state(self) -> dict[str, Any]:
        return {"stream": self.stream.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.stream.load_state(state["stream"])


class PackedTextBatches:
    """Text packed into rows of exactly `seq_len` tokens: BOS doc EOS BOS doc EOS ...

    Every position is supervised (labels = input_ids), no padding is wasted. Documents
    that straddle a row boundary continue in the next row; the leftover tokens are part of
    the position (`state()`), so resume is exact. Conversations are rendered as plain
    "role: content" lines (packing is a pretraining device, stage 2).
    """

    def __init__(self, stream: Any, tokenizer: Any, seq_len: int, batch_size: int):
        self.stream, self.tokenizer = stream, tokenizer
        self.seq_len, self.batch_size = seq_len, batch_size
        self.carry: list[int] = []
        self.bos = tokenizer.bos_token_id
        self.eos = tokenizer.eos_token_id

    def _document_tokens(self, sample: Sample) -> list[int]:
        text = sample.text
        if text is None:
            conversation = (sample.meta.get("sft") or {}).get("conversation") or []
            text = "\n\n".join(f"{t['role']}: {t['content']}" for t in conversation)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ([self.bos] if self.bos is not None else []) + list(ids) + \
            ([self.eos] if self.eos is not None else [])

    def next_batch(self) -> tuple[Batch, int]:
        rows = []
        for _ in range(self.batch_size):
            while len(self.carry) < self.seq_len:
                self.carry.extend(self._document_tokens(next(self.stream)))
            rows.append(self.carry[:self.seq_len])
            self.carry = self.carry[self.seq_len:]
        input_ids = torch.tensor(rows, dtype=torch.long)  # [b, seq_len]
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                "labels": input_ids.clone()}, len(rows)

    def state(self) -> dict[str, Any]:
        return {"stream": self.stream.state(), "carry": list(self.carry)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.stream.load_state(state["stream"])
        self.carry = list(state["carry"])
