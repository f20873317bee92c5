"""``vlforge ocr-eval RUN_DIR``: how well each OCR backend reads the images of a finished run.

Takes the samples of RUN_DIR that carry both an image and trustworthy text for it — the
PDF text layer (``meta["pdf"]["lines"]``, pages not flagged ``needs_ocr``) or the DOM text
of a web screenshot (``meta["web"]["lines"]``) — OCRs each image with every requested
backend, and compares the OCR text with that ground truth (both put in the same reading
order by their boxes; whitespace collapsed). Reports per backend: samples, CER and WER
(total edits / total reference characters or words, so long pages weigh more), the mean
per-sample CER, and pages/s. Samples whose run already stored OCR with CER (``--ocr-policy
always``) are also summarised as ``stored:<backend>``, without re-running anything.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pipelines.core.run_dir import RunDir
from pipelines.core.sample import Sample
from pipelines.ocr.backends import backend_options, load_backend
from pipelines.ocr.metrics import error_counts, ground_truth_lines, lines_text, rates

log = logging.getLogger(__name__)

DEFAULT_BACKENDS = ("rapidocr", "tesseract")  # the ones that run here without extra models
COUNT_KEYS = ("char_edits", "ref_chars", "word_edits", "ref_words")


class SelectedSamples:
    """The ``(sample, origin, reference text)`` of the chosen samples, read again from
    the run (by shard and key) each time they are iterated: what is kept between the
    backends' passes is two ids per sample, not its image, meta and text (``--limit 0``
    evaluates a whole run)."""

    def __init__(self, run: RunDir, chosen: list[tuple[str, str]]):
        self.run, self.chosen = run, chosen

    def __len__(self) -> int:
        return len(self.chosen)

    def __iter__(self) -> Iterator[tuple[Sample, str, str]]:
        for shard, key in self.chosen:
            sample = self.run.read_sample(shard, key)
            origin, lines = ground_truth_lines(sample.meta)
            yield sample, origin, lines_text(lines)


def select_samples(run_url: str, limit: int | None) -> SelectedSamples:
    """``(sample, origin, reference text)`` for samples with an image and ground truth."""
    run = RunDir(run_url).require_complete()
    chosen = []
    for shard, sample in run.iter_located():
        truth = ground_truth_lines(sample.meta) if sample.image is not None else None
        if truth is None or not lines_text(truth[1]).strip():
            continue
        chosen.append((shard, sample.key))
        if limit and len(chosen) >= limit:
            break
    return SelectedSamples(run, chosen)


def summarise(rows: list[dict[str, Any]], seconds: float | None) -> dict[str, Any]:
    """Totals, CER/WER and speed over per-sample rows holding `COUNT_KEYS`."""
    totals = {key: sum(row[key] for row in rows) for key in COUNT_KEYS}
    per_sample = [row["cer"] for row in rows if row.get("cer") is not None]
    mean_cer = statistics.fmean(per_sample) if per_sample else None
    summary: dict[str, Any] = {"samples": len(rows), **totals, **rates(totals),
                               "mean_sample_cer": mean_cer,
                               "by_origin": dict(Counter(row["origin"] for row in rows))}
    if seconds is not None:
        summary["seconds"] = round(seconds, 3)
        summary["pages_per_s"] = round(len(rows) / seconds, 3) if seconds > 0 else None
    return summary


def evaluate_backend(name: str, options: dict[str, Any],
                     samples: SelectedSamples) -> tuple[dict[str, Any], list[dict]]:
    """OCR every selected sample with backend `name`; summary + per-sample rows."""
    engine = load_backend(name, **backend_options(name, options))
    from tqdm import tqdm

    rows, spent = [], 0.0
    for sample, origin, reference in tqdm(samples, desc=name, unit="page", disable=None,
                                          file=sys.stderr):
        started = time.perf_counter()
        try:
            lines = engine.read(sample.image)
        except Exception as exc:  # an unreadable image is reported, not fatal
            rows.append({"key": sample.key, "locator": sample.locator, "origin": origin,
                         "error": f"{type(exc).__name__}: {exc}"})
            continue
        spent += time.perf_counter() - started
        counts = error_counts(reference, "\n".join(line.text for line in lines))
        rows.append({"key": sample.key, "locator": sample.locator, "origin": origin,
                     **counts, **rates(counts)})
    good = [row for row in rows if "error" not in row]
    summary = summarise(good, spent)
    summary["errors"] = len(rows) - len(good)
    summary["engine"] = engine.describe()
    return summary, rows


def stored_summaries(samples: SelectedSamples) -> dict[str, dict[str, Any]]:
    """Summaries of OCR results the run itself stored with CER (``--ocr-policy always``)."""
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for sample, origin, _ in samples:
        ocr = sample.meta.get("ocr") or {}
        if all(key in ocr for key in COUNT_KEYS):
            row = {key: ocr[key] for key in COUNT_KEYS}
            by_backend.setdefault(f"stored:{ocr.get('backend', '?')}", []).append(
                {**row, **rates(row), "origin": origin})
    return {name: summarise(rows, None) for name, rows in by_backend.items()}
