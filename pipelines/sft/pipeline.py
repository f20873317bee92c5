"""The "sft" pipeline: source samples (or external records) → verified conversations.

Every input is one conversation to make, planned before the run by the mixture sampler
(`pipelines.sft.mixture`), so accounting is one item per conversation and a retry re-reads
only the source sample(s) it needs. Three kinds of input ref:

* template:  ``{"run", "shard", "key", "family", "variant"}``: read one source sample from
  its shard and apply a template family (`pipelines.sft.templates`);
* pair:      the same plus ``"pair": {"run", "shard", "key"}``: a two-image comparison
  made from two source samples (the item is the pair; neither source is consumed);
* passthrough: ``family="passthrough"``: a sample that already holds a conversation (an
  imported one) is copied as is (its images, its label);
* import:    ``{"import_path", "format", "index", "image_root"}``: one record of an external
  LLaVA-style file (jsonl / json / parquet / HF dataset saved to disk), converted to the
  DeepSeek chat format and labeled by the taxonomy labeler on its first user turn.

A template that cannot give a verified answer drops the item with the template's reason
(``no_text``, ``answer_too_long``, ``no_well_posed_question``...). Output samples carry
``meta["sft"]`` (conversation, template, leaf, answer_source, computed), ``meta["taxonomy"]``
and ``text`` = the rendered conversation.
"""

from __future__ import annotations

import io
import json
import logging
import os
from typing import Any, Iterable, Iterator, Mapping

from pipelines.core.outcome import Outcome
from pipelines.core.sample import Sample, as_png
from pipelines.core.run_dir import SampleNotFound, SampleReader
from pipelines.core.split import document_id
from pipelines.core.stage import Record, StageFn
from pipelines.sft.config import SftConfig
from pipelines.sft.templates import (
    DEFAULT_MAX_ANSWER_CHARS,
    FAMILIES,
    IMAGE_TOKEN,
    SYSTEM_PROMPT,
    UNLABELED,
    NoAnswer,
    build_example,
    conversation,
    count_image_tokens,
    render_conversation,
)

log = logging.getLogger(__name__)

PASSTHROUGH = "passthrough"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
         "model": "assistant", "bot": "assistant", "system": "system"}
LLAVA_IMAGE = "<image>"


class SourceNotFound(KeyError):
    """The key a ref names is not in its shard (the source run changed since planning)."""


class RecordReader:
    """Reads record number N of an external instruction file (kept open per worker)."""

    def __init__(self) -> None:
        self._records: dict[str, Any] = {}

    def read(self, path: str, fmt: str, index: int) -> Mapping[str, Any]:
        records = self._records.get(path)
        if records is None:
            records = self._records[path] = load_records(path, fmt)
        return records[index]


def detect_format(path: str) -> str:
    """'hf' for a `datasets.save_to_disk` directory, else from the suffix."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "dataset_info.json")) or \
                os.path.exists(os.path.join(path, "dataset_dict.json")):
            return "hf"
        raise ValueError(f"{path}: a directory that is not a saved HF dataset")
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"),
                        (".parquet", "parquet")):
        if path.lower().endswith(suffix):
            return fmt
    raise ValueError(f"{path}: unknown format (expected .jsonl, .json, .parquet or a saved "
                     "HF dataset directory)")


def load_records(path: str, fmt: str) -> Any:
    """An indexable sequence of records (dicts) for `path`."""
    if fmt == "jsonl":
        return JsonlRecords(path)
    if fmt == "json":
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON array of records")
        return data
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path, use_threads=False).to_pylist()
    if fmt == "hf":
        import datasets

        loaded = datasets.load_from_disk(path)
        if isinstance(loaded, datasets.DatasetDict):
            raise ValueError(f"{path}: a DatasetDict; pass one split's directory "
                             f"({', '.join(loaded)})")
        return loaded
    raise ValueError(f"unknown format {fmt!r}")


class JsonlRecords:
    """Record N of a jsonl file by seeking to its line (offsets indexed once, records not
    held in memory, so a multi-GB file costs one scan and a list of ints)."""

    def __init__(self, path: str):
        self.path = path
        self.offsets: list[int] = []
        with open(path, "rb") as handle:
            offset = 0
            for line in handle:
                if line.strip():
                    self.offsets.append(offset)
                offset += len(line)

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int) -> Mapping[str, Any]:
        with open(self.path, "rb") as handle:
            handle.seek(self.offsets[index])
            line = handle.readline()
        try:
            return json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path}: record {index} is not valid JSON: {exc}") from exc


def count_records(path: str, fmt: str) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return len(load_records(path, fmt))


# -- record conversion ---------------------------------------------------------------------
def _image_bytes(value: Any, base: str) -> bytes:
    """PNG bytes of an image given as a path, an HF Image dict, raw bytes or a PIL image
    (other formats re-encoded: every run has the one image member of core.schema)."""
    if isinstance(value, (bytes, bytearray)):
        return as_png(bytes(value))
    if isinstance(value, Mapping):
        if value.get("bytes"):
            return as_png(bytes(value["bytes"]))
        value = value.get("path")
    if isinstance(value, str):
        path = value if os.path.isabs(value) else os.path.join(base, value)
        with open(path, "rb") as handle:
            return as_png(handle.read())
    if hasattr(value, "save"):  # PIL image (a decoded HF Image feature)
        buffer = io.BytesIO()
        value.convert("RGB").save(buffer, format="PNG")
        return buffer.getvalue()
    raise ValueError(f"cannot read image from {type(value).__name__}")


def convert_record(record: Mapping[str, Any], base: str) -> tuple[list[bytes], list[dict[str, str]]]:
    """(images, turns) in the DeepSeek format from a LLaVA-style record.

    Roles human/gpt become user/assistant, ``<image>`` becomes ``<image_placeholder>``; a
    record with images but no ``<image>`` token gets the placeholders put in front of its
    first user turn (the LLaVA convention). Raises ValueError on a malformed record.
    """
    raw_images = record.get("images")
    if raw_images is None:
        raw_images = [record["image"]] if record.get("image") is not None else []
    elif not isinstance(raw_images, (list, tuple)):
        raw_images = [raw_images]
    images = [_image_bytes(value, base) for value in raw_images]
    turns_in = record.get("conversations") or record.get("messages")
    if not turns_in:
        raise ValueError("record has no 'conversations'")
    turns = []
    for turn in turns_in:
        role = ROLES.get(str(turn.get("from", turn.get("role", ""))).lower())
        if role is None:
            raise ValueError(f"unknown speaker {turn.get('from', turn.get('role'))!r}")
        content = str(turn.get("value", turn.get("content", "")))
        turns.append({"role": role, "content": content.replace(LLAVA_IMAGE, IMAGE_TOKEN)})
    if not any(t["role"] == "assistant" for t in turns) or not any(t["role"] == "user" for t in turns):
        raise ValueError("record needs at least one user and one assistant turn")
    if images and count_image_tokens(turns) == 0:
        first = next(t for t in turns if t["role"] == "user")
        first["content"] = (IMAGE_TOKEN + "\n") * len(images) + first["content"]
    return images, turns


def first_user_text(turns: Iterable[Mapping[str, str]]) -> str:
    for turn in turns:
        if turn["role"] == "user":
            return turn["content"].replace(IMAGE_TOKEN, "").strip()
    return ""


# -- the stage ------------------------------------------------------------------------------
class BuildSftFn(StageFn):
    """One planned conversation per input: template, pair, passthrough or import."""

    stage = "BuildSft"

    def __init__(self, max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS, system_prompt: bool = True,
                 label: bool = True, label_threshold: float | None = None):
        self.max_answer_chars = max_answer_chars
        self.system_prompt = system_prompt
        self.label = label
        self.label_threshold = label_threshold

    def open(self) -> None:
        self.sources = SampleReader()
        self.records = RecordReader()
        self._labeler = None
        self._tree = None

    # taxonomy tree and labeler are loaded on first use: a build never needs the labeler.
    @property
    def tree(self):
        if self._tree is None:
            from pipelines.sft.mixture import load_tree

            self._tree = load_tree() or False
        return self._tree or None

    def process_sample(self, seed: Sample) -> Iterable[Record]:
        ref = seed.lineage["input_ref"]
        if "import_path" in ref:
            yield from self._import(seed, ref)
        else:
            yield from self._from_sources(seed, ref)

    def close(self) -> None:
        self.sources.close()

    def _read_source(self, ref: Mapping[str, Any]) -> Sample:
        try:
            return self.sources.read(ref["run"], ref["shard"], ref["key"])
        except SampleNotFound as exc:  # a retryable error named for what it means here
            raise SourceNotFound(*exc.args) from exc

    def _from_sources(self, seed: Sample, ref: Mapping[str, Any]) -> Iterator[Record]:
        sources = [self._read_source(ref)]
        if ref.get("pair"):
            sources.append(self._read_source(ref["pair"]))
        lineage = {**seed.lineage, "sources": [
            {"run": r["run"], "shard": r["shard"], "key": r["key"]}
            for r in [ref] + ([ref["pair"]] if ref.get("pair") else [])],
            # held-out split: the conversation belongs to its (first) source's document,
            # and is held out when any of its source samples is
            "document": document_id(sources[0]),
            "split": ("validation" if any(s.lineage.get("split") == "validation"
                                          for s in sources)
                      else sources[0].lineage.get("split", ""))}
        family = ref["family"]
        if family == PASSTHROUGH:
            yield from self._passthrough(seed, sources[0], lineage)
            return
        if family not in FAMILIES:
            yield Outcome.dropped(seed, self.stage, "unknown_family", family)
            return
        try:
            example = build_example(family, sources, int(ref.get("variant", 0)),
                                    self.max_answer_chars)
        except NoAnswer as exc:
            yield Outcome.dropped(seed, self.stage, exc.reason, exc.detail)
            return
        turns = conversation(example, len(sources), system=self.system_prompt)
        sft = {"conversation": turns, "template": example.template, "family": family,
               "variant": int(ref.get("variant", 0)), "leaf": example.leaf,
               "answer_source": example.answer_source, "computed": dict(example.computed)}
        yield self._finish(seed, [s.image for s in sources], turns, sft, lineage,
                           self._taxonomy(example.leaf, f"template {family}", 1.0))

    def _passthrough(self, seed: Sample, source: Sample, lineage: dict) -> Iterator[Record]:
        old = source.meta.get("sft") or {}
        turns = old.get("conversation")
        if not turns:
            yield Outcome.dropped(seed, self.stage, "no_conversation")
            return
        label = dict(source.meta.get("taxonomy") or {"leaf": old.get("leaf", UNLABELED)})
        sft = {**old, "family": PASSTHROUGH, "variant": 0,
               "leaf": label.get("leaf", UNLABELED)}
        yield self._finish(seed, list(source.images), turns, sft, lineage, label)

    def _import(self, seed: Sample, ref: Mapping[str, Any]) -> Iterator[Record]:
        record = self.records.read(ref["import_path"], ref["format"], int(ref["index"]))
        base = ref.get("image_root") or os.path.dirname(os.path.abspath(ref["import_path"]))
        images, turns = convert_record(record, base)
        if count_image_tokens(turns) != len(images):
            yield Outcome.dropped(seed, self.stage, "image_count_mismatch",
                                  f"{count_image_tokens(turns)} placeholders, {len(images)} images")
            return
        if self.system_prompt and turns[0]["role"] != "system":
            # Same system prompt as built conversations, so a mix renders one way.
            turns = [{"role": "system", "content": SYSTEM_PROMPT}] + turns
        label = self._label_prompt(first_user_text(turns), len(images))
        sft = {"conversation": turns, "template": "imported", "family": "import", "variant": 0,
               "leaf": label["leaf"], "answer_source": "external",
               "external_id": str(record.get("id", "")), "computed": {}}
        lineage = {**seed.lineage, "import": {"path": ref["import_path"], "index": ref["index"]}}
        yield self._finish(seed, images, turns, sft, lineage, label)

    def _finish(self, seed: Sample, images: list[bytes], turns: list[dict], sft: dict,
                lineage: Mapping[str, Any], label: Mapping[str, Any]) -> Sample:
        if count_image_tokens(turns) != len(images):
            raise ValueError(f"{count_image_tokens(turns)} image placeholders for {len(images)} images")
        sample = seed.replace(image=images[0] if images else None, extra_images=tuple(images[1:]),
                              text=render_conversation(turns))
        return (sample.with_meta("sft", sft).with_meta("taxonomy", label)
                .with_meta("lineage", lineage))

    def _taxonomy(self, leaf: str, reason: str, confidence: float) -> dict[str, Any]:
        tree = self.tree
        label = {"leaf": leaf, "confidence": confidence, "reason": reason}
        if tree is not None:
            from pipelines.sft.mixture import node_path, tree_version

            label["path"] = node_path(tree, leaf)
            label["version"] = tree_version(tree)
        return label

    def _label_prompt(self, text: str, images: int) -> dict[str, Any]:
        """Label a prompt with the taxonomy labeler; 'unlabeled' when it is off or unsure."""
        if not self.label or not text:
            return {"leaf": UNLABELED, "confidence": 0.0,
                    "reason": "labeling off" if not self.label else "no user text"}
        if self._labeler is None:
            from pipelines.sft.mixture import load_labeler

            self._labeler = load_labeler(self.label_threshold)
        return self._labeler(text, images)


def build_stages(config: SftConfig | Mapping[str, Any]) -> list[StageFn]:
    """BuildSft: one verified conversation per planned input."""
    config = SftConfig.coerce(config)
    return [BuildSftFn(max_answer_chars=config.max_answer_chars,
                       system_prompt=config.system_prompt, label=config.label,
                       label_threshold=config.label_threshold)]


# -- planning: what the sources can give, and the input refs for the chosen ones -------------
def scan_sources(run_urls: Iterable[str], progress: bool = False):
    """Candidates (`pipelines.sft.mixture.Candidate`) from every sample of complete runs.

    A sample that already holds a conversation becomes one passthrough candidate; any other
    sample one candidate per single-image family that applies. Two-image families pair
    eligible samples in a seeded hash order (each sample in at most one pair per family).
    """
    from pipelines.core.run_dir import RunDir
    from pipelines.sft.mixture import Candidate
    from pipelines.sft.templates import choice_hash

    candidates: list[Candidate] = []
    pair_pools: dict[str, list[dict[str, str]]] = {n: [] for n, f in FAMILIES.items()
                                                   if f.images == 2}
    bar = _progress(progress, "scanning sources")
    for run_url in run_urls:
        run = RunDir(run_url).require_complete()
        removed = run.removed_keys()  # duplicates found by `vlforge dedup` give no data
        for shard in run.shard_names():
            for sample in run.iter_shard(shard):
                bar.update(1)
                if sample.key in removed:
                    continue
                ref = {"run": run.url, "shard": shard, "key": sample.key}
                if (sample.meta.get("sft") or {}).get("conversation"):
                    leaf = (sample.meta.get("taxonomy") or {}).get("leaf") or UNLABELED
                    candidates.append(Candidate(PASSTHROUGH, leaf, bool(sample.images), (ref,)))
                    continue
                for name, family in FAMILIES.items():
                    if not family.applies(sample):
                        continue
                    if family.images == 2:
                        pair_pools[name].append(ref)
                    else:
                        candidates.append(Candidate(name, family.leaf, True, (ref,),
                                                    family.phrasings))
    bar.close()
    for name, pool in pair_pools.items():
        pool.sort(key=lambda r: choice_hash("pair", name, r["run"], r["key"]))
        family = FAMILIES[name]
        for first, second in zip(pool[0::2], pool[1::2]):
            candidates.append(Candidate(name, family.leaf, True, (first, second),
                                        family.phrasings))
    return candidates


def plan_refs(chosen) -> list[dict[str, Any]]:
    """Input refs of the "sft" pipeline for the sampler's (candidate, variant) choices."""
    from pipelines.core.runner import input_ref

    refs = []
    for candidate, variant in chosen:
        first = candidate.sources[0]
        locator = (candidate.uid + f"|v{variant}")
        fields: dict[str, Any] = {"run": first["run"], "shard": first["shard"],
                                  "key": first["key"], "family": candidate.family,
                                  "variant": variant, "leaf": candidate.leaf}
        if len(candidate.sources) > 1:
            fields["pair"] = dict(candidate.sources[1])
        refs.append(input_ref("sft", locator, **fields))
    return refs


def import_refs(path: str, image_root: str | None = None) -> list[dict[str, Any]]:
    """One input ref per record of an external instruction file."""
    from pipelines.core.runner import input_ref

    path = os.path.abspath(path)
    fmt = detect_format(path)
    count = count_records(path, fmt)
    return [input_ref("sft", f"import:{path}#{index}", import_path=path, format=fmt,
                      index=index, image_root=os.path.abspath(image_root) if image_root else None)
            for index in range(count)]


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(enabled: bool, desc: str):
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(desc=desc, unit=" samples")
