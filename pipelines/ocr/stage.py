"""The `OcrImages` stage: read the text in a sample's image where no trustworthy text exists.

Policy (which samples get OCR):
- ``missing`` (default): only where there is no exact text layer
  (`pipelines.core.text.trusted_text` at ``EXACT`` trust) — PDF pages flagged
  ``meta["pdf"]["needs_ocr"]`` (scans, image-only pages), PDF figures
  (``meta["pdf"]["kind"] == "figure"``), images from the ``images`` pipeline (photos, scans),
  and any other sample that has an image but no text.
- ``always``: every sample with an image, including those whose text layer or DOM text is
  ground truth; then ``meta["ocr"]`` also holds CER/WER against that ground truth, which is
  how `vlforge ocr-eval` and the bench measure OCR on real data.
Samples without an image pass through untouched.

Output, ``meta["ocr"]``::

    {"backend": "rapidocr", "engine": {...versions...}, "reason": "needs_ocr",
     "lines": [{"box": [x0, y0, x1, y1], "text": ..., "confidence": 0.98,
                "low_confidence": false}, ...],          # reading order, boxes 0..1
     "text": "confident lines joined by newlines",
     "low_confidence_threshold": 0.5, "low_confidence_lines": 1, "seconds": 0.41,
     # only where ground truth existed:
     "ground_truth": "pdf" | "web", "cer": 0.012, "wer": 0.03,
     "char_edits": .., "ref_chars": .., "word_edits": .., "ref_words": ..}

Low-confidence lines stay in ``lines`` marked ``low_confidence: true`` but are left out of
``text`` (and so of the sample text), so nothing doubtful enters training text unmarked.
CER/WER are computed on everything the engine read, low-confidence lines included,
because they measure the engine. When OCR reads a ``needs_ocr`` page whose ``text`` is
empty, the OCR text becomes the sample's text. An image of one colour (every pixel the
same, e.g. a screenshot tile below a page's end) holds no text: it gets the empty result
without running the engine, marked ``"blank": true``. If OCR itself fails on a sample (an image
that does not decode), the sample is kept with ``meta["ocr"]["error"]`` rather than lost.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any, Iterable, Mapping

from apache_beam.metrics import Metrics

from pipelines.core.sample import Sample
from pipelines.core.stage import Record, StageFn
from pipelines.core.text import EXACT, trusted_text
from pipelines.core.worker_cache import worker_resource
from pipelines.ocr.backends import (
    DEFAULT_BACKEND,
    DEFAULT_LOW_CONFIDENCE,
    OcrBackend,
    lines_result,
    load_backend,
)
from pipelines.ocr.metrics import error_counts, ground_truth_lines, lines_text, rates

log = logging.getLogger(__name__)

POLICIES = ("missing", "always")


def is_blank_image(data: bytes) -> bool:
    """Whether every pixel of the image is the same (every band, alpha included, has one
    value): there is nothing an OCR engine could read. False for an image that does not
    decode (the engine reports that)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            extrema = image.getextrema()
    except Exception:  # noqa: BLE001 - what does not decode is the engine's to report
        return False
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    return all(low == high for low, high in bands)


def ocr_reason(sample: Sample, policy: str = "missing") -> str | None:
    """Why `sample` should be OCRed under `policy`, or None when it should not.

    Reasons: "needs_ocr" (PDF page without a trustworthy text layer), "figure" (a figure
    cut out of a page), "image_file" (from the images pipeline), "no_text" (an image and
    no text at all), "measure" (ground truth exists; only under "always"), "always".
    """
    if policy not in POLICIES:
        raise ValueError(f"OCR policy must be one of {POLICIES}, got {policy!r}")
    if sample.image is None:
        return None
    meta = sample.meta
    pdf = meta.get("pdf") or {}
    if pdf.get("needs_ocr"):
        return "needs_ocr"
    if pdf.get("kind") == "figure":
        return "figure"
    # Ground truth before the image-file check: a screenshot that also carries
    # meta["image"] (size, format) still has its DOM text and needs no OCR.
    if trusted_text(sample, EXACT) is not None:
        return "measure" if policy == "always" else None
    if "image" in meta or sample.source == "images":
        return "image_file"
    if not (sample.text or "").strip() and not (sample.markdown or "").strip():
        return "no_text"
    return "always" if policy == "always" else None


class OcrImagesFn(StageFn):
    """OCR the main image of the samples the policy selects; see the module docstring."""

    stage = "OcrImages"

    def __init__(self, backend: str = DEFAULT_BACKEND, policy: str = "missing",
                 low_confidence: float = DEFAULT_LOW_CONFIDENCE,
                 options: Mapping[str, Any] | None = None):
        if policy not in POLICIES:
            raise ValueError(f"OCR policy must be one of {POLICIES}, got {policy!r}")
        self.backend = backend
        self.policy = policy
        self.low_confidence = float(low_confidence)
        self.options = dict(options or {})
        self.engine: OcrBackend | None = None

    def open(self) -> None:
        # Once per worker process (not per Dask partition: `worker_resource`): loading the
        # models is what costs; a backend that cannot run here (paddleocr without local
        # models) fails now, with its explanation.
        self.engine = worker_resource(
            "ocr", {"backend": self.backend, "options": self.options},
            lambda: load_backend(self.backend, **self.options))
        self.engine_info = self.engine.describe()

    def close(self) -> None:
        self.engine = None

    def process_sample(self, sample: Sample) -> Iterable[Record]:
        reason = ocr_reason(sample, self.policy)
        if reason is None:
            Metrics.counter(self.stage, "skipped").inc()
            yield sample
            return
        if self.engine is None:  # used without setup(): load lazily rather than fail
            self.open()
        started = time.perf_counter()
        # Why the check: a one-colour image (a tile below a short page's end) costs the
        # engine ~0.2 CPU-s to find nothing; the check decodes it once (~4 ms per 1024 px
        # tile), and only for samples the policy picked.
        blank = is_blank_image(sample.image)
        try:
            lines = [] if blank else self.engine.read(sample.image)
        except Exception as exc:  # a bad image must not lose an otherwise good sample
            log.warning("%s: OCR failed on %s: %s", self.stage, sample.key, exc)
            Metrics.counter(self.stage, "ocr_failed").inc()
            yield sample.with_meta("ocr", {"backend": self.backend, "reason": reason,
                                           "error": f"{type(exc).__name__}: {exc}"[:2000]})
            return
        result = lines_result(lines, self.low_confidence)
        result.update(backend=self.backend, engine=self.engine_info, reason=reason,
                      seconds=round(time.perf_counter() - started, 4))
        if blank:
            result["blank"] = True
        truth = ground_truth_lines(sample.meta)
        if truth is not None:
            origin, truth_lines = truth
            hypothesis = "\n".join(line.text for line in lines)  # everything the engine read
            counts = error_counts(lines_text(truth_lines), hypothesis)
            result.update(ground_truth=origin, **counts, **rates(counts))
        Metrics.counter(self.stage, f"ocr_{reason}").inc()
        out = sample.with_meta("ocr", result)
        if reason == "needs_ocr" and not (sample.text or "").strip() and result["text"]:
            out = out.replace(text=result["text"])
        yield out
