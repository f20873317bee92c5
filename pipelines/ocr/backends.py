"""OCR engines behind one interface: ``load_backend(name, **options).read(image) -> [OcrLine]``.

Backends:
- ``rapidocr`` (default): PaddleOCR's PP-OCR detection + recognition models exported to
  ONNX and shipped inside the ``rapidocr`` wheel, run by onnxruntime. Fully offline.
- ``paddleocr``: the PaddleOCR library itself, only with model directories the user has
  locally (options ``det_model_dir`` / ``rec_model_dir`` or the environment variables
  ``VLFORGE_PADDLEOCR_DET_DIR`` / ``VLFORGE_PADDLEOCR_REC_DIR``). It is never required and
  never allowed to download; when it or its models are missing, loading raises
  `OcrBackendUnavailable` with what to do.
- ``tesseract``: the Debian ``tesseract-ocr`` binary through ``pytesseract``.

Every backend returns lines with boxes normalised to 0..1 of the image (``[x0, y0, x1, y1]``,
like the PDF text layer) and a confidence in 0..1, in reading order. Loading happens once,
in the constructor, so a stage builds its backend in ``open()`` (once per worker).
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "rapidocr"
DEFAULT_LOW_CONFIDENCE = 0.5


class OcrBackendUnavailable(RuntimeError):
    """A backend cannot run here (library, binary or model files missing)."""


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: normalised box, text, confidence in 0..1."""

    box: tuple[float, float, float, float]
    text: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["box"] = [round(v, 5) for v in self.box]
        out["confidence"] = round(self.confidence, 4)
        return out


def lines_result(lines: list[OcrLine], low_confidence: float = DEFAULT_LOW_CONFIDENCE
                 ) -> dict[str, Any]:
    """The ``lines`` / ``text`` part of ``meta["ocr"]``: every line, low-confidence ones
    marked and left out of ``text`` (so doubtful text never enters training text unmarked)."""
    rows, kept = [], []
    for line in lines:
        row = line.to_dict()
        row["low_confidence"] = line.confidence < low_confidence
        rows.append(row)
        if not row["low_confidence"]:
            kept.append(line.text)
    return {"lines": rows, "text": "\n".join(kept), "low_confidence_threshold": low_confidence,
            "low_confidence_lines": sum(row["low_confidence"] for row in rows)}


def decode_image(image: bytes | Image.Image) -> Image.Image:
    """RGB PIL image from encoded bytes or an image (alpha flattened onto white)."""
    if isinstance(image, (bytes, bytearray)):
        image = Image.open(io.BytesIO(image))
        image.load()
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


class OcrBackend:
    """Base: subclasses load their engine in ``__init__`` and implement `_read`."""

    name = "base"

    def read(self, image: bytes | Image.Image) -> list[OcrLine]:
        """OCR one image; lines in reading order (top to bottom, then left to right)."""
        rgb = decode_image(image)
        lines = [line for line in self._read(rgb) if line.text.strip()]
        return reading_order(lines)

    def _read(self, image: Image.Image) -> list[OcrLine]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name and versions, recorded next to the results."""
        return {"backend": self.name}


def reading_order(lines: list[Any], box: Callable[[Any], Any] = lambda line: line.box
                  ) -> list[Any]:
    """Sort lines into rows (vertical centres within half a line height), each left to right.

    Used for OCR output and for ground-truth lines alike, so that comparing the two does
    not depend on the order each engine happens to list its lines in.
    """
    items = sorted(lines, key=lambda line: (box(line)[1] + box(line)[3]) / 2)
    rows: list[list[Any]] = []
    for line in items:
        x0, y0, x1, y1 = box(line)
        centre, height = (y0 + y1) / 2, max(y1 - y0, 1e-6)
        if rows:
            first = box(rows[-1][0])
            if abs(centre - (first[1] + first[3]) / 2) < 0.5 * max(height, first[3] - first[1]):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda line: box(line)[0])]


def _normalised_box(points: Any, width: int, height: int) -> tuple[float, float, float, float]:
    """Axis-aligned normalised box around a polygon of pixel points."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    clip = lambda v: float(min(max(v, 0.0), 1.0))  # noqa: E731
    return (clip(x0 / width), clip(y0 / height), clip(x1 / width), clip(y1 / height))


# -- rapidocr ---------------------------------------------------------------------------
class RapidOcrBackend(OcrBackend):
    """PP-OCR (det + rec, ONNX) from the ``rapidocr`` wheel; no download ever needed."""

    name = "rapidocr"

    def __init__(self, threads: int | None = 1, use_cls: bool = False,
                 det_max_side: int | None = 960, **params: Any):
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # pragma: no cover - it is a core dependency
            raise OcrBackendUnavailable(
                f"rapidocr is not installed ({exc}); pip install 'rapidocr>=3' onnxruntime"
            ) from exc
        settings: dict[str, Any] = {
            "Global.log_level": "error",  # "warning" reports every blank image
            # Keep every recognised line: low-confidence ones are marked by the caller,
            # not silently dropped inside the engine (rapidocr's default drops < 0.5).
            "Global.text_score": 0.0,
            # The angle classifier only matters for upside-down text lines; rendered
            # pages and screenshots are upright, so it is off unless asked for.
            "Global.use_cls": use_cls,
        }
        # One thread per engine: a pipeline runs one engine per worker process, and
        # onnxruntime's default pool (a thread per core, spinning between calls) burns
        # ~1.7x the CPU for the same pages on a shared machine. threads=0: all cores.
        if threads:
            settings["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
            settings["EngineConfig.onnxruntime.inter_op_num_threads"] = int(threads)
        # The arena reuses buffers between lines of different widths (-20% CPU).
        settings["EngineConfig.onnxruntime.enable_cpu_mem_arena"] = True
        if det_max_side:
            # Detection needs text a few px high, not the full page: the long side is
            # brought down to det_max_side (rapidocr's default brings the short side *up*
            # to 736). Lines are still cut from the full image for recognition.
            settings["Det.limit_type"] = "max"
            settings["Det.limit_side_len"] = int(det_max_side)
        _reject_unknown(self.name, params, "threads, use_cls, det_max_side and rapidocr "
                        "config keys such as Det.box_thresh or Global.max_side_len")
        settings.update(params)  # rapidocr's own dotted config keys
        self.engine = RapidOCR(params=settings)
        # rapidocr loads its ONNX sessions lazily (recognition only once something is
        # detected); reading one tiny word loads both now, so that the cost lands in
        # open() and a broken model fails there rather than on the first sample.
        self._read(_warmup_image())

    def _read(self, image: Image.Image) -> list[OcrLine]:
        # rapidocr takes ndarrays as BGR (OpenCV order).
        result = self.engine(np.asarray(image)[:, :, ::-1].copy())
        if result is None or result.boxes is None or result.txts is None:
            return []
        width, height = image.size
        return [OcrLine(_normalised_box(box, width, height), str(text), float(score))
                for box, text, score in zip(result.boxes, result.txts, result.scores)]

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        rec = self.engine.cfg.Rec
        model = getattr(rec.ocr_version, "value", rec.ocr_version)  # an enum in rapidocr 3
        return {"backend": self.name, "rapidocr": version("rapidocr"),
                "model": f"{model} {getattr(rec.model_type, 'value', rec.model_type)}"}


def _warmup_image() -> Image.Image:
    from PIL import ImageDraw, ImageFont

    image = Image.new("RGB", (160, 48), "white")
    try:
        font = ImageFont.load_default(24)  # Pillow >= 10.1: a scalable bundled font
    except TypeError:
        font = ImageFont.load_default()
    ImageDraw.Draw(image).text((8, 8), "vlforge 1", fill="black", font=font)
    return image


# -- tesseract --------------------------------------------------------------------------
class TesseractBackend(OcrBackend):
    """Tesseract (Debian ``tesseract-ocr``) via pytesseract; lines from its word boxes."""

    name = "tesseract"

    def __init__(self, lang: str = "eng", psm: int = 3, config: str = "", **unknown: Any):
        _reject_unknown(self.name, unknown, "lang, psm and config (extra tesseract flags)")
        try:
            import pytesseract
        except ImportError as exc:
            raise OcrBackendUnavailable(
                "the tesseract backend needs pytesseract: pip install pytesseract") from exc
        try:
            self.version = str(pytesseract.get_tesseract_version())
        except (pytesseract.TesseractNotFoundError, OSError) as exc:
            raise OcrBackendUnavailable(
                "the tesseract backend needs the tesseract binary: "
                "apt-get install tesseract-ocr (tesseract-ocr-<lang> for other languages)"
            ) from exc
        self.pytesseract = pytesseract
        self.lang = lang
        self.config = f"--psm {int(psm)} {config}".strip()

    def _read(self, image: Image.Image) -> list[OcrLine]:
        data = self.pytesseract.image_to_data(image, lang=self.lang, config=self.config,
                                              output_type=self.pytesseract.Output.DICT)
        width, height = image.size
        grouped: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if word.strip() and float(data["conf"][i]) >= 0:
                key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
                grouped.setdefault(key, []).append(i)
        lines = []
        for indices in grouped.values():
            x0 = min(data["left"][i] for i in indices)
            y0 = min(data["top"][i] for i in indices)
            x1 = max(data["left"][i] + data["width"][i] for i in indices)
            y1 = max(data["top"][i] + data["height"][i] for i in indices)
            text = " ".join(data["text"][i].strip() for i in indices)
            # Tesseract scores words 0..100; a line is as trustworthy as its mean word.
            confidence = sum(float(data["conf"][i]) for i in indices) / len(indices) / 100.0
            lines.append(OcrLine(_normalised_box([[x0, y0], [x1, y1]], width, height),
                                 text, confidence))
        return lines

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "tesseract": self.version, "lang": self.lang}


# -- paddleocr --------------------------------------------------------------------------
PADDLE_DET_ENV = "VLFORGE_PADDLEOCR_DET_DIR"
PADDLE_REC_ENV = "VLFORGE_PADDLEOCR_REC_DIR"


class PaddleOcrBackend(OcrBackend):
    """The PaddleOCR library on local model directories only (it cannot download here)."""

    name = "paddleocr"

    def __init__(self, det_model_dir: str | None = None, rec_model_dir: str | None = None,
                 det_model_name: str | None = None, rec_model_name: str | None = None,
                 lang: str | None = None, **unknown: Any):
        _reject_unknown(self.name, unknown, "det_model_dir, rec_model_dir, det_model_name, "
                        "rec_model_name and lang")
        det_dir = det_model_dir or os.environ.get(PADDLE_DET_ENV)
        rec_dir = rec_model_dir or os.environ.get(PADDLE_REC_ENV)
        problems = []
        for label, path, env in (("detection", det_dir, PADDLE_DET_ENV),
                                 ("recognition", rec_dir, PADDLE_REC_ENV)):
            if not path:
                problems.append(f"no {label} model directory given (option "
                                f"{label[:3]}_model_dir=DIR or ${env})")
            elif not os.path.isdir(path):
                problems.append(f"{label} model directory {path!r} does not exist")
        try:
            import paddleocr
        except ImportError:
            paddleocr = None
            problems.append("the paddleocr library is not installed "
                            "(pip install 'vlforge[paddle]', i.e. paddleocr + paddlepaddle)")
        if problems:
            raise OcrBackendUnavailable(
                "the paddleocr backend cannot run: " + "; ".join(problems) + ". It only "
                "uses local PP-OCR model directories and never downloads. The default "
                "backend 'rapidocr' runs the same PP-OCR models (as ONNX, bundled) offline.")
        self.major = int(str(getattr(paddleocr, "__version__", "3")).split(".")[0] or 3)
        if self.major >= 3:
            kwargs: dict[str, Any] = {
                "text_detection_model_dir": det_dir, "text_recognition_model_dir": rec_dir,
                "use_doc_orientation_classify": False, "use_doc_unwarping": False,
                "use_textline_orientation": False}
            if det_model_name:
                kwargs["text_detection_model_name"] = det_model_name
            if rec_model_name:
                kwargs["text_recognition_model_name"] = rec_model_name
        else:
            kwargs = {"det_model_dir": det_dir, "rec_model_dir": rec_dir,
                      "use_angle_cls": False, "show_log": False}
        if lang:
            kwargs["lang"] = lang
        self.engine = paddleocr.PaddleOCR(**kwargs)

    def _read(self, image: Image.Image) -> list[OcrLine]:
        width, height = image.size
        bgr = np.asarray(image)[:, :, ::-1].copy()
        lines = []
        if self.major >= 3:
            for page in self.engine.predict(bgr):
                for poly, text, score in zip(page["rec_polys"], page["rec_texts"],
                                             page["rec_scores"]):
                    lines.append(OcrLine(_normalised_box(poly, width, height), str(text),
                                         float(score)))
        else:
            for page in self.engine.ocr(bgr, cls=False) or []:
                for poly, (text, score) in page or []:
                    lines.append(OcrLine(_normalised_box(poly, width, height), str(text),
                                         float(score)))
        return lines


BACKENDS: dict[str, type[OcrBackend]] = {
    "rapidocr": RapidOcrBackend,
    "paddleocr": PaddleOcrBackend,
    "tesseract": TesseractBackend,
}


def load_backend(name: str = DEFAULT_BACKEND, **options: Any) -> OcrBackend:
    """Build (and load the models of) the named backend; options go to its constructor."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown OCR backend {name!r}; choose one of {', '.join(BACKENDS)}")
    log.info("loading OCR backend %s %s", name, options or "")
    return cls(**options)


def _reject_unknown(backend: str, options: dict[str, Any], known: str) -> None:
    """A typo in an option must not be silently ignored. Dotted keys (``Det.box_thresh``)
    are rapidocr's own config keys, which other backends leave alone."""
    unknown = sorted(key for key in options if "." not in key)
    if unknown:
        raise ValueError(f"{backend}: unknown option(s) {', '.join(unknown)}; it takes {known}")


def backend_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options meant for backend `name`: ``tesseract.lang=deu`` only reaches tesseract,
    unprefixed ones reach every backend."""
    chosen = {}
    for key, value in options.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix in BACKENDS:
            if prefix == name:
                chosen[rest] = value
        else:
            chosen[key] = value
    return chosen


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["lang=deu", "psm=6"]`` -> ``{"lang": "deu", "psm": 6}`` (CLI ``--ocr-option``)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"OCR option {pair!r} is not KEY=VALUE")
        options[key.strip()] = _coerce(value.strip())
    return options


def _coerce(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)
