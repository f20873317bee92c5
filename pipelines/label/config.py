"""Settings of the "label" pipeline (`vlforge label RUN_DIR... --out RUN_DIR2`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.core.config import Config


@dataclass
class LabelConfig(Config):
    """Relabel the samples of finished runs into a new run."""

    threshold: float | None = None
    """Confidence below which a label is 'unlabeled' (None: the labeler's default, 0.40)."""
    taxonomy_file: str | None = None
    """Taxonomy YAML to label with (None: the shipped one)."""
    quantize: bool = True
    """Embed with the dynamic-int8 MiniLM (False: the float one, ~3x slower)."""
    source_runs: list[str] = field(default_factory=list)
    """The runs whose samples are relabeled (recorded for lineage; the inputs name them)."""

    def problems(self) -> list[str]:
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            return [f"threshold must be within 0..1 (got {self.threshold})"]
        return []
