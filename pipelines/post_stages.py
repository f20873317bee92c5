"""The stages every content pipeline ends with: OCR, chart extraction, taxonomy labeling.

Each is optional and imported only when enabled, so a pipeline that runs without OCR does
not load an OCR model. The settings are `pipelines.core.config.PostStageConfig`'s (which
every content pipeline's config extends).
"""

from __future__ import annotations

from typing import Any, Mapping

from pipelines.core.config import PostStageConfig
from pipelines.core.stage import StageFn


def post_stages(config: PostStageConfig | Mapping[str, Any]) -> list[StageFn]:
    """The enabled post stages, in order: OCR, charts, labels (a dict is read as a
    `PostStageConfig`, keys of the pipeline's own settings ignored)."""
    if not isinstance(config, PostStageConfig):
        names = PostStageConfig.__dataclass_fields__
        config = PostStageConfig.from_dict({k: v for k, v in config.items() if k in names})
    stages: list[StageFn] = []
    if config.ocr:
        from pipelines.ocr.stage import OcrImagesFn

        stages.append(OcrImagesFn(backend=config.ocr, policy=config.ocr_policy))
    if config.charts:
        from pipelines.charts.stage import ExtractChartsFn

        stages.append(ExtractChartsFn())
    if config.label:
        from pipelines.label.stage import LabelTaxonomyFn

        stages.append(LabelTaxonomyFn(threshold=config.label_threshold))
    return stages
