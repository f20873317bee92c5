"""Task-derived labeling rules: what a sample *is* decides its leaf before any embedding.

A pipeline knows what it produced: a page with a text layer is an OCR/transcription pair,
a chart with recovered data is chart analysis, a web screenshot with its HTML is UI→code.
`task_rule` returns the first rule that fires, in the order of `RULES`; rule targets are
node ids resolved through ``replaced_by``, so merging or renaming a node never breaks a
rule. Samples that carry a user prompt (SFT conversations) are classified by their prompt
instead (`prompt_of`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

from pipelines.core.sample import Sample
from pipelines.core.text import trusted_text

IMAGE_PLACEHOLDER = "<image_placeholder>"


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired: the node it points at, its name, why, and how sure it is."""

    node_id: str
    rule: str
    reason: str
    confidence: float = 0.95


def _sft_leaf(sample: Sample) -> RuleHit | None:
    sft = sample.meta.get("sft") or {}
    if sft.get("leaf"):
        template = sft.get("template") or "an SFT template"
        return RuleHit(sft["leaf"], "sft_template", f"built by {template} for this leaf", 1.0)
    return None


def _chart(sample: Sample) -> RuleHit | None:
    charts = (sample.meta.get("chart") or {}).get("charts") or []
    if charts:
        kinds = sorted({str(c.get("type") or "chart") for c in charts})
        return RuleHit("analysis.data_chart_analysis.graph_interpretation", "chart_meta",
                       f"{len(charts)} chart(s) with recovered data ({', '.join(kinds)})")
    return None


def _pdf_table(sample: Sample) -> RuleHit | None:
    if (sample.meta.get("pdf") or {}).get("kind") == "table":
        return RuleHit("analysis.data_chart_analysis.table_interpretation", "pdf_table",
                       "table cut out of a PDF page")
    return None


def _web_html(sample: Sample) -> RuleHit | None:
    if sample.meta.get("web") is not None and sample.html and sample.image is not None:
        return RuleHit("conversion.image_to_code.ui_to_code", "web_screenshot_html",
                       "web page screenshot paired with its HTML")
    return None


# The rule name and reason for each origin of a trusted text layer (`core.text`).
TRANSCRIPTION_RULES = {
    "ocr": ("ocr_transcription", "image with an OCR transcription"),
    "pdf_text": ("pdf_text_layer", "rendered PDF page paired with its text layer"),
    "dom": ("web_text_boxes", "web screenshot paired with its rendered text lines"),
}


def _transcription(sample: Sample) -> RuleHit | None:
    if sample.image is None:
        return None
    layer = trusted_text(sample)  # the one notion of trustworthy text, see pipelines.core.text
    if layer is None or layer.origin not in TRANSCRIPTION_RULES:
        return None
    rule, reason = TRANSCRIPTION_RULES[layer.origin]
    if layer.origin == "ocr":
        reason += f" ({(sample.meta.get('ocr') or {}).get('backend', 'ocr')})"
    return RuleHit("recognition.ocr_transcription.printed_text", rule, reason)


def _caption_pair(sample: Sample) -> RuleHit | None:
    if sample.image is not None and (sample.text or "").strip():
        return RuleHit("recognition.global_description.theme", "image_caption_pair",
                       "image paired with a caption", 0.8)
    return None


# Order matters: the most specific evidence first.
RULES: list[tuple[str, Callable[[Sample], RuleHit | None]]] = [
    ("sft_template", _sft_leaf),
    ("chart_meta", _chart),
    ("pdf_table", _pdf_table),
    ("web_screenshot_html", _web_html),
    ("transcription", _transcription),
    ("image_caption_pair", _caption_pair),
]


def prompt_of(sample: Sample) -> tuple[str, int] | None:
    """The first user turn of an SFT conversation (placeholders removed) and the image count."""
    conversation = (sample.meta.get("sft") or {}).get("conversation") or []
    for turn in conversation:
        if isinstance(turn, Mapping) and turn.get("role") == "user":
            content = str(turn.get("content") or "")
            images = content.count(IMAGE_PLACEHOLDER)
            text = re.sub(r"\s+", " ", content.replace(IMAGE_PLACEHOLDER, " ")).strip()
            if text:
                return text, max(images, len(sample.images))
    return None


def task_rule(sample: Sample) -> RuleHit | None:
    """The first task-derived rule that fires for `sample`, or None.

    A conversation without a template leaf is left to prompt classification, so the
    content rules (chart, OCR, ...) only apply to samples without a prompt.
    """
    hit = _sft_leaf(sample)
    if hit is not None or prompt_of(sample) is not None:
        return hit
    for _, rule in RULES[1:]:
        hit = rule(sample)
        if hit is not None:
            return hit
    return None


def rule_names() -> list[str]:
    return [name for name, _ in RULES]

