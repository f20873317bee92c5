"""The data mix of a training run, by the paper's data categories, next to the paper's.

DeepSeek-VL's Table 1 (pretraining) and Table 2 (SFT) give each data category's share.
`training_mix(TRAIN_RUN)` measures the same shares for one of our training runs:

- the **language-only** share is measured: the fraction of the run's logged optimizer steps
  whose modality was ``language`` (``metrics.jsonl``; every step is all-language or
  all-multimodal, the paper's modality-group training);
- the **multimodal** steps are divided among the run's ``--data`` runs by the stage's
  mixture weights, and within a run by the categories of its *train-split* samples (the
  manifest), since each step draws samples in those proportions.

Which category a sample counts as (one table, `category_of`; first match wins):

================================  =========================  ===========================
sample (manifest row)             pretraining (Table 1)      SFT (Table 2)
================================  =========================  ===========================
a derived ``&interleaved=`` doc   interleaved image-text     general multimodal
a derived ``&caption=`` pair      image caption              general multimodal
a derived ``&code=`` pair (web    web code                   web code
screenshot -> simplified HTML)
source ``synth`` (chart + code)   web code                   web code
taxonomy leaf ``..ui_to_code``    web code                   web code
chart/table leaves (data chart    table & chart              table & chart
analysis, chart/flowchart to
code) or a PDF's derived
figure/table sample
no image (text-only sample)       text-only                  text-only SFT
source ``pdf`` page (and EPUB)    document OCR               in-house taxonomy
source ``web`` (screenshot +      document OCR               in-house taxonomy
its text)
source ``images`` (OCR text)      scene-text OCR             general multimodal
several images in one sample      interleaved image-text     general multimodal
source ``sft``: labelled leaf     (SFT only)                 in-house taxonomy
source ``sft``: unlabelled        (SFT only)                 general multimodal
anything else                     image caption              general multimodal
================================  =========================  ===========================

Stages 1-2 are compared with Table 1, stage 3 with Table 2. Our web screenshots and PDF
pages pair a rendered page with its text, which is what the paper's document-OCR data is
(arXiv papers and e-books rendered to image/markdown pairs). Interleaved documents and
caption pairs are derived samples named by their locator (``...&interleaved=0``,
``...&caption=1``), so they count as what they are, not as a PDF's figures.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pipelines.core.run_dir import RunDir, RunDirError
from pipelines.core.sample import derived_kind as sample_derived_kind

INTERLEAVED = "interleaved image-text"
CAPTION = "image caption"
TABLE_CHART = "table & chart"
WEB_CODE = "web code"
SCENE_OCR = "scene-text OCR"
DOC_OCR = "document OCR"
TEXT_ONLY = "text-only"
TAXONOMY_SFT = "in-house taxonomy"
GENERAL_SFT = "general multimodal"
TEXT_SFT = "text-only SFT"

# percent of the mix (DeepSeek-VL, arXiv 2403.05525, Tables 1 and 2)
PAPER_PRETRAIN = {INTERLEAVED: 13.1, CAPTION: 11.1, TABLE_CHART: 2.1, WEB_CODE: 0.4,
                  SCENE_OCR: 1.2, DOC_OCR: 2.1, TEXT_ONLY: 70.0}
PAPER_SFT = {TAXONOMY_SFT: 10.5, GENERAL_SFT: 35.5, TABLE_CHART: 4.1, WEB_CODE: 2.0,
             TEXT_SFT: 47.9}

CHART_LEAVES = ("analysis.data_chart_analysis.", "conversion.image_to_code.chart_to_code",
                "conversion.image_to_code.flowchart_to_code")
UI_CODE_LEAF = "conversion.image_to_code.ui_to_code"


# the manifest columns `category_of` and `run_categories` read
CATEGORY_COLUMNS = ("source", "taxonomy_leaf", "num_images", "locator", "derived_from", "split")


def category_of(row: Mapping[str, Any], sft: bool) -> str:
    """The paper category of one manifest row (the table in the module docstring)."""
    source = row.get("source") or ""
    leaf = row.get("taxonomy_leaf") or ""
    images = int(row.get("num_images") or 0)
    derived = derived_kind(row)
    if derived in ("interleaved", "caption"):  # the record contract of pipelines.core.text
        return GENERAL_SFT if sft else (INTERLEAVED if derived == "interleaved" else CAPTION)
    if derived == "code" or source == "synth" or leaf == UI_CODE_LEAF:
        return WEB_CODE
    if leaf.startswith(CHART_LEAVES) or (source == "pdf" and row.get("derived_from")):
        return TABLE_CHART
    if images == 0:
        return TEXT_SFT if sft else TEXT_ONLY
    if sft:
        if source == "images" or images > 1:
            return GENERAL_SFT
        if source == "sft":
            return TAXONOMY_SFT if leaf and leaf != "unlabeled" else GENERAL_SFT
        return TAXONOMY_SFT if source in ("pdf", "web") else GENERAL_SFT
    if images > 1:
        return INTERLEAVED
    if source in ("pdf", "web"):
        return DOC_OCR
    if source == "images":
        return SCENE_OCR
    return CAPTION


def derived_kind(row: Mapping[str, Any]) -> str:
    """What a derived manifest row is ("figure", "tile", "interleaved", "caption", "code"),
    "" for a sample that is not derived (`pipelines.core.sample.derived_kind`)."""
    return sample_derived_kind(str(row.get("locator") or ""), row.get("derived_from"))


def run_categories(url: str, sft: bool) -> Counter:
    """Samples per paper category in a run's train split."""
    counts: Counter = Counter()
    # streamed, only the columns `category_of` reads (a whole row is ~2 KB as a dict)
    for row in RunDir(url).require_complete().iter_manifest_rows(CATEGORY_COLUMNS):
        if (row.get("split") or "train") == "train":
            counts[category_of(row, sft)] += 1
    return counts


def training_mix(path: str) -> dict[str, Any] | None:
    """The measured mix of training run `path` next to the paper's, or None when the run
    records no stage (``stage.json``) or no logged steps."""
    stage_file, metrics_file = (os.path.join(path, n) for n in ("stage.json", "metrics.jsonl"))
    if not (os.path.exists(stage_file) and os.path.exists(metrics_file)):
        return None
    with open(stage_file, encoding="utf-8") as handle:
        stage = json.load(handle)
    with open(metrics_file, encoding="utf-8") as handle:
        steps = [json.loads(line) for line in handle if line.strip()]
    steps = [row for row in steps if "modality" in row]
    if not steps:
        return None
    sft = int(stage["config"]["stage"]) == 3
    language = sum(row["modality"] == "language" for row in steps) / len(steps)
    mixture = stage["config"].get("mixture") or {}
    shares: Counter = Counter()
    per_run = []
    for url in stage.get("data") or []:
        try:
            counts = run_categories(url, sft)
        except RunDirError:
            continue  # a run moved or deleted since training: its part is unknown
        weight = float(mixture.get(os.path.basename(url.rstrip("/")), 1.0))
        if counts and weight > 0:
            per_run.append((weight, counts))
    total_weight = sum(weight for weight, _ in per_run)
    for weight, counts in per_run:
        size = sum(counts.values())
        for category, count in counts.items():
            shares[category] += (1 - language) * weight / total_weight * count / size * 100
    shares[TEXT_SFT if sft else TEXT_ONLY] += language * 100
    paper = PAPER_SFT if sft else PAPER_PRETRAIN
    return {"stage": int(stage["config"]["stage"]), "table": "Table 2" if sft else "Table 1",
            "steps": len(steps), "language_steps": round(language * len(steps)),
            "measured": {c: round(shares.get(c, 0.0), 1) for c in paper},
            "other": {c: round(v, 1) for c, v in shares.items() if c not in paper},
            "paper": dict(paper)}
