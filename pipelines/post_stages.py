"""The stages every content pipeline ends with: OCR, chart extraction, taxonomy labeling.

Each is optional and imported only when enabled, so a pipeline that runs without OCR does
not load an OCR model. Config keys: ``ocr`` (backend name, or None to skip),
``ocr_policy`` ("missing": only where no trustworthy text exists; "always": also where
ground truth exists, to measure OCR), ``charts`` (bool), ``label`` (bool),
``label_threshold`` (float or None for the labeler's default).
"""

from __future__ import annotations

from typing import Any

from pipelines.core.stage import StageFn


def post_stages(config: dict[str, Any]) -> list[StageFn]:
    stages: list[StageFn] = []
    if config.get("ocr"):
        from pipelines.ocr.stage import OcrImagesFn

        stages.append(OcrImagesFn(backend=config["ocr"],
                                  policy=config.get("ocr_policy", "missing")))
    if config.get("charts"):
        from pipelines.charts.stage import ExtractChartsFn

        stages.append(ExtractChartsFn())
    if config.get("label"):
        from pipelines.label.stage import LabelTaxonomyFn

        stages.append(LabelTaxonomyFn(threshold=config.get("label_threshold")))
    return stages
