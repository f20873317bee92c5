"""Settings of the "synth" pipeline (`vlforge charts synth`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.charts.synthetic import CHART_TYPES
from pipelines.core.config import Config

FAMILIES = ("matplotlib", "plotly")


@dataclass
class SynthConfig(Config):
    """Synthetic charts drawn by real plotting libraries, each kept with its code and table."""

    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    """Plotting libraries, used in turn (chart i is drawn by families[i % len])."""
    chart_types: list[str] = field(default_factory=lambda: list(CHART_TYPES))
    """Chart types to draw (each chart picks one at random from these)."""
    seed: int = 0
    """Seed of the specs: chart i of a seed is the same chart on every run."""
    dpi: int = 100
    """matplotlib resolution (plotly figures are drawn at the spec's pixel size)."""

    def problems(self) -> list[str]:
        found = []
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown or not self.families:
            found.append(f"families must be a non-empty subset of {FAMILIES} (got {self.families})")
        bad = sorted(set(self.chart_types) - set(CHART_TYPES))
        if bad or not self.chart_types:
            found.append(f"chart_types must be a non-empty subset of {CHART_TYPES} "
                         f"(got {self.chart_types})")
        if self.dpi < 20:
            found.append(f"dpi must be >= 20 (got {self.dpi})")
        return found
