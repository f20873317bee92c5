"""`ExtractCharts`: find the charts in a sample and recover the data behind them.

Per sample, in order of trust:
- web samples: ``meta["web"]["svgs"]`` (inline SVG markup + box) → `svg.scenes_from_svgs`;
- PDF pages/figures: the page re-opened from ``meta["pdf"]["path"]`` (exact drawings and
  text spans) or, when the file is gone, ``meta["pdf"]["drawings"]`` + ``lines``
  (normalised) → `pdf_vector`;
- images with no vector charts: raster detection (`raster.py`), ``recovered: False``.
Writes ``meta["chart"] = {"charts": [...]}`` (its own sub-dict, as `Sample.meta` says); samples
without charts pass through unchanged. Boxes are normalised to the sample's image.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any, Iterable

from pipelines.charts.recognize import read_charts
from pipelines.charts.scene import Scene, Shape, Text
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
    """Charts of a PDF page or figure: from the file when it is still there, else from meta."""
    path, page_index = pdf.get("path"), pdf.get("page")
    if path and page_index is not None and os.path.exists(path):
        try:
            return charts_from_pdf_file(path, int(page_index), pdf.get("box") if pdf.get("kind") != "page" else None)
        except Exception as exc:  # a changed or unreadable file: fall back to the meta copy
            log.info("re-opening %s failed (%s); using meta drawings", path, exc)
    return charts_from_drawings_meta(pdf)


def charts_from_pdf_file(path: str, page_index: int, crop: list[float] | None = None) -> list[dict]:
    """Open one page and read its vector charts; `crop` (normalised page box) limits them
    to a figure and makes the returned boxes relative to it."""
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


def charts_from_drawings_meta(pdf: dict) -> list[dict]:
    """Charts from ``meta["pdf"]["drawings"]``/``lines`` (normalised to the image)."""
    drawings = pdf.get("drawings") or []
    if len(drawings) < 4:
        return []
    width = float(pdf.get("width") or 1000)
    height = float(pdf.get("height") or 1000)
    shapes = [s for d in drawings if (s := _shape_from_meta(d, width, height)) is not None]
    texts = []
    for line in pdf.get("lines") or []:
        x0, y0, x1, y1 = (line["box"][0] * width, line["box"][1] * height,
                          line["box"][2] * width, line["box"][3] * height)
        vertical = (y1 - y0) > 2.5 * (x1 - x0) and len(line["text"]) > 2
        size = (x1 - x0) if vertical else (y1 - y0) * 0.8
        texts.append(Text(line["text"], x0, y0, x1, y1, size=max(size, 1.0),
                          rotation=90.0 if vertical else 0.0))
    from pipelines.charts.pdf_vector import _cluster_regions, _within

    out = []
    for box in _cluster_regions([s.bbox for s in shapes]):
        members = [s for s in shapes if _within(s.bbox, box)]
        if len(members) < 4:
            continue
        pad = 0.12 * max(width, height)
        near = [t for t in texts if box[0] - pad <= t.cx <= box[2] + pad and
                box[1] - pad <= t.cy <= box[3] + pad]
        for chart in read_charts(Scene(width, height, near, members)):
            out.append({**chart, "source": "pdf-vector",
                        "box": [round(box[0] / width, 5), round(box[1] / height, 5),
                                round(box[2] / width, 5), round(box[3] / height, 5)]})
    return out


def _shape_from_meta(d: dict, width: float, height: float) -> Shape | None:
    from pipelines.charts.scene import cubic_points, rgb_tuple_color

    subpaths: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for item in d.get("items", []):
        op, v = item[0], [float(x) for x in item[1:]]
        pts = [(v[i] * width, v[i + 1] * height) for i in range(0, len(v) - 1, 2)]
        if op == "re":
            (x0, y0), (x1, y1) = pts[0], pts[1]
            subpaths.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        elif op == "qu":
            subpaths.append(pts)
        elif op in ("l", "c"):
            if not current or current[-1] != pts[0]:
                if current:
                    subpaths.append(current)
                current = [pts[0]]
            current.extend([pts[1]] if op == "l" else cubic_points(*pts[:4]))
    if current:
        subpaths.append(current)
    if not subpaths:
        return None
    kind = d.get("type") or ""
    fill = rgb_tuple_color(d.get("fill")) if "f" in kind and d.get("fill") else None
    stroke = rgb_tuple_color(d.get("stroke")) if "s" in kind and d.get("stroke") else None
    if fill is None and stroke is None:
        return None
    return Shape(subpaths, fill=fill, stroke=stroke, stroke_width=float(d.get("width") or 1.0),
                 closed=fill is not None)


def _image_size(sample: Sample) -> tuple[int, int] | None:
    if sample.image is None:
        return None
    from PIL import Image

    with Image.open(io.BytesIO(sample.image)) as image:
        return image.size
