"""Settings of the "images" pipeline (`vlforge images`)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.config import PostStageConfig

CAPTION_TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")


@dataclass
class ImagesConfig(PostStageConfig):
    """Image files → samples, then the optional post stages."""

    min_side: int = 16
    """Images whose shorter side is below this many pixels are dropped (too_small)."""

    sidecar_captions: bool = True
    """Read each image's caption from ``NAME.txt`` / ``NAME.json`` (``caption`` or ``text``
    field) beside ``NAME.jpg``, as img2dataset and most caption datasets lay them out."""

    captions: str = ""
    """A caption table (parquet, CSV or TSV with ``url``/``path``/``key`` and
    ``caption``/``text`` columns); its captions win over sidecar files. Empty: none."""

    def problems(self) -> list[str]:
        found = super().problems()
        if self.min_side < 1:
            found.append(f"min_side must be >= 1 (got {self.min_side})")
        if self.captions and not self.captions.lower().split("?", 1)[0].endswith(
                CAPTION_TABLE_SUFFIXES):
            found.append(f"captions must be a {'/'.join(CAPTION_TABLE_SUFFIXES)} file "
                         f"(got {self.captions!r})")
        return found
