"""`ExtractCharts`: find the charts in a sample and recover the data behind them.

Per sample, in order of trust:
- web samples: ``meta["web"]["svgs"]`` (inline SVG markup + box) → `svg.scenes_from_svgs`;
- PDF pages/figures: what the isolated renderer extracted, ``meta["pdf"]["drawings"]`` +
  ``["spans"]`` (normalised to the sample's image; a figure's are its crop's) →
  `pdf_vector.scenes_from_meta`. The source file is never opened again here: the result
  does not depend on whether it is still there, and no second drawings decoder runs in
  the worker;
- images with no vector charts: raster detection (`raster.py`), ``recovered: False``.
Writes ``meta["chart"] = {"charts": [...]}`` (its own sub-dict, as `Sample.meta` says); samples
without charts pass through unchanged. Boxes are normalised to the sample's image.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Iterable

from pipelines.charts.recognize import read_charts
from pipelines.core.sample import Sample
from pipelines.core.stage import Record, StageFn

log = logging.getLogger(__name__)


class ExtractChartsFn(StageFn):
    """Recover chart data from vector sources first; detect raster charts.

    raster: run raster detection on images that hold no vector chart.
    raster_ocr: run rapidocr for it when no ``meta["ocr"]`` lines exist. Off by default:
        in a pipeline the OCR stage runs first and its lines are reused, and a run with
        ``--ocr none`` should not OCR behind the user's back.
    """

    stage = "ExtractCharts"

    def __init__(self, raster: bool = True, raster_ocr: bool = False):
        self.raster = raster
        self.raster_ocr = raster_ocr
        self._detector = None

    def open(self) -> None:
        self._detector = None  # rapidocr is loaded on the first image that needs it

    def _raster_detector(self):
        if self._detector is None:
            from pipelines.charts.raster import RasterChartDetector

            self._detector = RasterChartDetector(ocr=self.raster_ocr)
            self._detector.open()
        return self._detector

    def process_sample(self, sample: Sample) -> Iterable[Record]:
        if sample.meta.get("chart", {}).get("charts"):
            yield sample  # synthetic charts carry their ground truth already
            return
        charts = extract_charts(sample)
        if not charts and self.raster and sample.image is not None and _worth_raster(sample):
            ocr = sample.meta.get("ocr", {}).get("lines")
            if ocr is not None or self.raster_ocr:
                found = self._raster_detector().detect(sample.image, ocr_lines=ocr)
                if found:
                    charts = [found]
        if charts:
            yield sample.with_meta("chart", {"charts": charts})
        else:
            yield sample


def _worth_raster(sample: Sample) -> bool:
    # A PDF page with a good text layer is a document page, not a picture of a chart;
    # its figures arrive as their own samples.
    pdf = sample.meta.get("pdf")
    if pdf and pdf.get("kind") == "page" and not pdf.get("needs_ocr"):
        return False
    if pdf and pdf.get("kind") in ("interleaved", "caption"):
        return False  # made of the page's figure crops, each read as its figure sample
    return "web" not in sample.meta or sample.meta["web"].get("kind") == "image"


def extract_charts(sample: Sample) -> list[dict[str, Any]]:
    """The vector charts of a sample (web SVGs, PDF drawings), boxes normalised."""
    charts: list[dict[str, Any]] = []
    web = sample.meta.get("web")
    if web and web.get("svgs"):
        charts += charts_from_web_svgs(web["svgs"], _image_size(sample))
    pdf = sample.meta.get("pdf")
    if pdf:
        charts += charts_from_pdf_meta(pdf)
    return charts


def charts_from_web_svgs(svgs: list[dict], image_size: tuple[int, int] | None) -> list[dict]:
    from pipelines.charts.svg import scenes_from_svgs

    w, h = image_size or (1, 1)
    placed = []
    for svg in svgs:
        box = svg.get("page_box") or [v * s for v, s in zip(svg["box"], (w, h, w, h))]
        placed.append({"markup": svg["markup"], "box": box, "norm": svg.get("box")})
    out = []
    for box, scene in scenes_from_svgs(placed):
        norm = next((p["norm"] for p in placed if p["box"] == box and p["norm"]), None)
        for chart in read_charts(scene):
            out.append({**chart, "source": "svg", "box": norm or [0.0, 0.0, 1.0, 1.0]})
    return out


def charts_from_pdf_meta(pdf: dict) -> list[dict]:
    """Charts of a PDF page or figure from the renderer's meta; boxes normalised to the
    sample's image."""
    from pipelines.charts.pdf_vector import scenes_from_meta

    out = []
    for box, scene in scenes_from_meta(pdf):
        for chart in read_charts(scene):
            out.append({**chart, "source": "pdf-vector",
                        "box": [round(min(max(v, 0.0), 1.0), 5) for v in box]})
    return out


def charts_from_pdf_file(path: str, page_index: int, crop: list[float] | None = None) -> list[dict]:
    """Open one page of a file and read its vector charts (``vlforge chart FILE.pdf``; the
    pipeline stage reads the renderer's meta instead); `crop` (normalised page box) limits
    them to a figure and makes the returned boxes relative to it."""
    import pymupdf

    from pipelines.charts.pdf_vector import scenes_from_page

    with pymupdf.open(path) as doc:
        page = doc[page_index]
        pw, ph = float(page.rect.width), float(page.rect.height)
        out = []
        for box, scene in scenes_from_page(page):
            norm = [box[0] / pw, box[1] / ph, box[2] / pw, box[3] / ph]
            if crop is not None:
                cx, cy = (norm[0] + norm[2]) / 2, (norm[1] + norm[3]) / 2
                if not (crop[0] <= cx <= crop[2] and crop[1] <= cy <= crop[3]):
                    continue
                cw, ch = max(crop[2] - crop[0], 1e-9), max(crop[3] - crop[1], 1e-9)
                norm = [(norm[0] - crop[0]) / cw, (norm[1] - crop[1]) / ch,
                        (norm[2] - crop[0]) / cw, (norm[3] - crop[1]) / ch]
            for chart in read_charts(scene):
                out.append({**chart, "source": "pdf-vector",
                            "box": [round(min(max(v, 0.0), 1.0), 5) for v in norm]})
        return out


def _image_size(sample: Sample) -> tuple[int, int] | None:
    if sample.image is None:
        return None
    from PIL import Image

    with Image.open(io.BytesIO(sample.image)) as image:
        return image.size
