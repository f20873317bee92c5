"""Settings of the "images" pipeline (`vlforge images`)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.config import PostStageConfig


@dataclass
class ImagesConfig(PostStageConfig):
    """Image files → samples, then the optional post stages."""

    min_side: int = 16
    """Images whose shorter side is below this many pixels are dropped (too_small)."""

    def problems(self) -> list[str]:
        found = super().problems()
        if self.min_side < 1:
            found.append(f"min_side must be >= 1 (got {self.min_side})")
        return found
