"""Settings of the de-duplication pipeline (`vlforge dedup`)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.config import Config
from pipelines.core.signatures import NUM_PERM


@dataclass
class DedupConfig(Config):
    """What counts as a duplicate, and how much work one bucket of candidates may cost."""

    text_threshold: float = 0.8
    """Estimated Jaccard similarity of word 5-gram shingles (MinHash) from which two
    texts are near duplicates."""

    text_bands: int = 16
    """LSH bands the MinHash signature is cut into: more bands find less similar pairs
    (and cost more candidate checks). Must divide the signature length."""

    min_text_chars: int = 50
    """Texts shorter than this are not compared at all (captions like "Figure 1" are
    shared by distinct samples); their images are compared by perceptual hash instead.
    Samples with more text are compared by text only (besides exact image checksums):
    a perceptual hash sees layout, and two pages set alike hash alike."""

    image_distance: int = 4
    """Perceptual-hash bits (of 64) within which two images are near duplicates (when
    their short texts also agree, or both have none: near-blank pages hash alike)."""

    max_bucket: int = 1000
    """Candidates compared per bucket member at most: a bucket of thousands of samples
    (a boilerplate page) costs a bounded amount of work; the overflow is counted."""

    def problems(self) -> list[str]:
        found = []
        if not 0.0 < self.text_threshold <= 1.0:
            found.append(f"text_threshold must be in (0, 1] (got {self.text_threshold})")
        if self.text_bands < 1 or NUM_PERM % self.text_bands:
            found.append(f"text_bands must divide {NUM_PERM} (got {self.text_bands})")
        if self.min_text_chars < 0:
            found.append(f"min_text_chars must be >= 0 (got {self.min_text_chars})")
        if not 0 <= self.image_distance < 32:
            found.append(f"image_distance must be in [0, 32) (got {self.image_distance})")
        if self.max_bucket < 2:
            found.append(f"max_bucket must be >= 2 (got {self.max_bucket})")
        return found
