"""Settings of the "sft" pipeline (`vlforge sft build` and `vlforge sft import`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.core.config import Config
from pipelines.sft.templates import DEFAULT_MAX_ANSWER_CHARS


@dataclass
class SftConfig(Config):
    """Planned conversations → verified SFT samples."""

    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS
    """Template answers longer than this are dropped (answer_too_long)."""
    system_prompt: bool = True
    """Start every conversation with the DeepSeek system prompt."""
    label: bool = True
    """Label imported conversations by their first user turn (built ones carry their
    template's leaf)."""
    label_threshold: float | None = None
    """Confidence below which an imported conversation stays 'unlabeled'."""
    mixture: str | None = None
    """The mixture file a build sampled with (recorded for lineage)."""
    mixture_name: str | None = None
    """That mixture's name (recorded for lineage)."""
    sources: list[str] = field(default_factory=list)
    """Source runs of a build (recorded for lineage; the inputs name them)."""
    import_file: str | None = None
    """The instruction file an import converted (recorded for lineage)."""

    def problems(self) -> list[str]:
        found = []
        if self.max_answer_chars < 1:
            found.append(f"max_answer_chars must be >= 1 (got {self.max_answer_chars})")
        if self.label_threshold is not None and not 0 <= self.label_threshold <= 1:
            found.append(f"label_threshold must be within 0..1 (got {self.label_threshold})")
        return found

    @classmethod
    def from_dict(cls, data):
        """As `Config.from_dict`, reading the ``import`` key of earlier runs too."""
        data = dict(data or {})
        if "import" in data:  # the key runs made before this class recorded
            data["import_file"] = data.pop("import")
        return super().from_dict(data)
