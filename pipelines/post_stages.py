"""The stages every content pipeline ends with: OCR, chart extraction, taxonomy labeling.

Each is optional and imported only when enabled, so a pipeline that runs without OCR does
not load an OCR model. Config keys: ``ocr`` (backend name, or None to skip),
``ocr_policy`` ("missing": only where no trustworthy text exists; "always": also where
ground truth exists, to measure OCR), ``charts`` (bool), ``label`` (bool),
``label_threshold`` (float or None for the labeler's default).
"""

from __future__ import annotations

from typing import Any

from pipelines.stage import StageFn


def post_stages(config: dict[str, Any]) -> list[StageFn]:
    stages: list[StageFn] = []
    if config.get("ocr"):
        from pipelines.ocr import OcrImagesFn

        stages.append(OcrImagesFn(backend=config["ocr"],
                                  policy=config.get("ocr_policy", "missing")))
    if config.get("charts"):
        from pipelines.charts.stage import ExtractChartsFn

        stages.append(ExtractChartsFn())
    if config.get("label"):
        from taxonomy.label_stage import LabelTaxonomyFn

        stages.append(LabelTaxonomyFn(threshold=config.get("label_threshold")))
    return stages


def add_post_stage_arguments(parser) -> None:
    """The CLI flags that switch the post stages (shared by `pdf`, `crawl`, `images`)."""
    parser.add_argument("--ocr", default="rapidocr", metavar="BACKEND",
                        help="OCR backend for pages/images without a text layer: rapidocr "
                             "(default), paddleocr, tesseract, or 'none' to skip OCR")
    parser.add_argument("--ocr-policy", choices=("missing", "always"), default="missing",
                        help="missing: OCR only where no trustworthy text exists (default); "
                             "always: also where ground truth exists, to measure OCR")
    parser.add_argument("--no-charts", dest="charts", action="store_false",
                        help="skip chart detection and data recovery")
    parser.add_argument("--no-label", dest="label", action="store_false",
                        help="skip taxonomy labeling")
    parser.add_argument("--label-threshold", type=float, default=None,
                        help="confidence below which a sample stays 'unlabeled'")


def post_stage_config(args) -> dict[str, Any]:
    return {"ocr": None if args.ocr in (None, "none") else args.ocr,
            "ocr_policy": args.ocr_policy, "charts": args.charts, "label": args.label,
            "label_threshold": args.label_threshold}
