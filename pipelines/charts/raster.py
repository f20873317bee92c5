"""Raster charts (embedded images, photos of plots): detect them, OCR their labels, and
say honestly that the data was not recovered.

Detection has two cheap pixel tests and one text test: (1) the image is mostly one flat
background colour with few distinct colours (charts, unlike photos), (2) it holds long
straight horizontal and vertical dark runs (axes, gridlines, bar edges), and (3) OCR of
its text (rapidocr, run here directly, or the lines an earlier OCR stage left in
``meta["ocr"]``) finds a numeric axis — tick labels in a column or a row that fit a
scale. A detected chart gets its title and axis titles from the OCR text, ``series: []``
and ``recovered: False``: pixel-level value reading is not reliable enough to be training
ground truth, and this project never invents values.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
from PIL import Image

from pipelines.charts.recognize import ChartReader
from pipelines.charts.scene import Scene, Text

log = logging.getLogger(__name__)

MAX_SIDE = 1600  # OCR works on a downscaled copy of huge images


def pixel_evidence(image: Image.Image) -> dict[str, Any]:
    """Flat-background share, colour count and long straight line counts of an image."""
    small = image.convert("RGB")
    small.thumbnail((400, 400))
    arr = np.asarray(small).astype(np.int16)  # [h, w, 3]
    h, w, _ = arr.shape
    quant = (arr // 32).reshape(-1, 3)
    codes = quant[:, 0] * 64 + quant[:, 1] * 8 + quant[:, 2]
    counts = np.bincount(codes, minlength=512)
    background = counts.max() / codes.size
    colours = int((counts > 0.002 * codes.size).sum())
    gray = arr.mean(axis=2)
    bg_level = np.median(gray)
    dark = np.abs(gray - bg_level) > 60  # [h, w] strokes that stand out from the background
    h_lines = int((_longest_runs(dark) >= 0.4 * w).sum())
    v_lines = int((_longest_runs(dark.T) >= 0.4 * h).sum())
    return {"background_share": round(float(background), 3), "colours": colours,
            "h_lines": h_lines, "v_lines": v_lines}


def _longest_runs(mask: np.ndarray) -> np.ndarray:
    """Longest run of True per row."""
    out = np.zeros(mask.shape[0], dtype=np.int32)
    for i, row in enumerate(mask):
        if not row.any():
            continue
        padded = np.concatenate([[0], row.astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(padded))
        out[i] = (edges[1::2] - edges[0::2]).max()
    return out


def looks_like_chart(evidence: dict[str, Any]) -> bool:
    """The cheap pixel pre-filter (spares OCR on photos): flat background, few colours."""
    # Straight-line counts are kept as evidence but not required: ggplot-like styles draw
    # no dark axes at all. The OCR numeric-axis test that follows is the real decision.
    return evidence["background_share"] >= 0.4 and evidence["colours"] <= 60


class RasterChartDetector:
    """Detect charts in images; OCR with rapidocr loaded once (``open`` → ``detect``)."""

    def __init__(self, ocr: bool = True):
        self.ocr = ocr
        self.engine = None

    def open(self) -> None:
        if not self.ocr:
            return
        from rapidocr import RapidOCR

        from pipelines.core.worker_cache import worker_resource

        params = {"Global.log_level": "error", "Global.text_score": 0.3, "Global.use_cls": False}
        # once per worker process, not per Dask partition (see worker_resource)
        self.engine = worker_resource("chart-ocr", params, lambda: RapidOCR(params=params))

    def read_text(self, image: Image.Image) -> list[Text]:
        if self.engine is None:
            return []
        rgb = image.convert("RGB")
        scale = 1.0
        if max(rgb.size) > MAX_SIDE:
            scale = MAX_SIDE / max(rgb.size)
            rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)))
        result = self.engine(np.asarray(rgb)[:, :, ::-1].copy())
        if result is None or result.boxes is None or result.txts is None:
            return []
        texts = []
        for quad, text in zip(result.boxes, result.txts):
            xs = [p[0] / scale for p in quad]
            ys = [p[1] / scale for p in quad]
            texts.append(_text_from_box(str(text), min(xs), min(ys), max(xs), max(ys)))
        return texts

    def detect(self, image_bytes: bytes, ocr_lines: list[dict] | None = None) -> dict | None:
        """A chart record (``recovered: False``) when the image holds a chart, else None.

        `ocr_lines`: ``meta["ocr"]["lines"]`` (boxes normalised) when an OCR stage already
        read the image; rapidocr runs here only when they are absent.
        """
        image = Image.open(io.BytesIO(image_bytes))
        image.load()
        evidence = pixel_evidence(image)
        if not looks_like_chart(evidence):
            return None
        width, height = image.size
        if ocr_lines is not None:
            texts = [_text_from_box(line["text"], line["box"][0] * width, line["box"][1] * height,
                                    line["box"][2] * width, line["box"][3] * height)
                     for line in ocr_lines if line.get("text")]
        else:
            texts = self.read_text(image)
        reader = ChartReader(Scene(float(width), float(height), texts, []))
        lay = reader.layout()
        numeric = [a for a in (lay.x, lay.y) if a is not None and not a.categorical]
        if not numeric:
            return None
        return {"type": "unknown", "title": lay.title, "x_label": lay.x_label,
                "y_label": lay.y_label,
                "x_scale": _scale(lay.x), "y_scale": _scale(lay.y),
                # tick labels as read, left to right and top to bottom
                "x_ticks": [t.text for t in sorted(lay.x.labels, key=lambda t: t.cx)] if lay.x else [],
                "y_ticks": [t.text for t in sorted(lay.y.labels, key=lambda t: t.cy)] if lay.y else [],
                "series": [], "source": "raster", "recovered": False,
                "box": [0.0, 0.0, 1.0, 1.0], "evidence": evidence,
                "reason": "raster chart: labels read by OCR, values not recovered"}


def _scale(axis) -> str | None:
    if axis is None:
        return None
    return "category" if axis.categorical else axis.scale.kind


def _text_from_box(text: str, x0: float, y0: float, x1: float, y1: float) -> Text:
    # OCR boxes carry no rotation: a tall narrow box of several characters is vertical.
    vertical = (y1 - y0) > 2.5 * (x1 - x0) and len(text) > 2
    size = (x1 - x0) if vertical else (y1 - y0)
    return Text(text, x0, y0, x1, y1, size=max(size, 1.0), rotation=90.0 if vertical else 0.0)
