"""The held-out split: which source documents a run keeps for validation.

A split is decided per *source document*, never per sample, so that no document straddles
it: all pages of one PDF, all tiles/shots of one URL, all figures cut from a page land on
the same side. The document of a sample is ``lineage["document"]`` when a stage set one
(label and SFT runs carry their source sample's document forward), else the root input it
descends from (``lineage["input_id"]``: one PDF file, one URL, one image file).

A document goes to validation when the hash of its id, read as a number in [0, 1), is
below the run's ``validation_fraction``: deterministic, independent of the order samples
arrive in, and stable for a document across runs that use the same fraction. With two or
more documents each side gets at least one (the smallest hash is moved to validation, the
largest to train), so a small run still has something to evaluate on and to train on.

The split is written into the manifest's ``split`` column when a run is finalized
(`pipelines.core.run_dir.RunDir.merged`); runs written before the column existed read as
all ``train``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pipelines.core.sample import Sample

TRAIN = "train"
VALIDATION = "validation"
SPLITS = (TRAIN, VALIDATION)
DEFAULT_VALIDATION_FRACTION = 0.02
"""Share of source documents held out (the paper gives none; 2% keeps most data for
training while a run of a few hundred documents still holds some out)."""


def document_id(sample: Sample) -> str:
    """The source document `sample` belongs to (see the module docstring)."""
    lineage = sample.lineage
    return str(lineage.get("document") or lineage.get("input_id") or sample.key)


def document_position(document: str) -> float:
    """The document id's hash as a number in [0, 1) (uniform, deterministic)."""
    digest = hashlib.sha256(f"split\n{document}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def assign_splits(documents: Iterable[str], fraction: float) -> dict[str, str]:
    """``{document: "train" | "validation"}`` for every distinct document.

    With ``fraction > 0`` and at least two documents, both sides hold at least one
    document; ``fraction == 0`` puts everything in train.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be within [0, 1) (got {fraction})")
    positions = {doc: document_position(doc) for doc in set(documents)}
    splits = {doc: VALIDATION if pos < fraction else TRAIN for doc, pos in positions.items()}
    if fraction > 0 and len(splits) >= 2:
        ordered = sorted(positions, key=lambda doc: (positions[doc], doc))
        if VALIDATION not in splits.values():
            splits[ordered[0]] = VALIDATION
        if TRAIN not in splits.values():
            splits[ordered[-1]] = TRAIN
    return splits
