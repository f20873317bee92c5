"""``vlforge ocr FILE... [--backend B] [--json]``: OCR image files or the pages of PDFs.

Images are read as they are; PDF (and other PyMuPDF documents: EPUB, XPS, CBZ) pages are
rendered with PyMuPDF at ``--dpi`` first. Plain output prints each page's text with
low-confidence lines marked ``[?]``; ``--json`` prints one object with every line's box,
text and confidence, as the `OcrImages` stage stores them. A file that cannot be read is
reported (and makes the exit status 1) without stopping the others.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from PIL import Image

from pipelines.ocr.backends import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_LOW_CONFIDENCE,
    OcrBackendUnavailable,
    backend_options,
    lines_result,
    load_backend,
    parse_options,
)
from pipelines.ocr.evaluate import (
    DEFAULT_BACKENDS,
    evaluate_backend,
    select_samples,
    stored_summaries,
)

log = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = (".pdf", ".epub", ".xps", ".oxps", ".cbz", ".fb2", ".mobi")


def parse_pages(spec: str | None) -> set[int] | None:
    """``"1,3-5"`` (1-based, as people count pages) -> ``{0, 2, 3, 4}``; None = all pages."""
    if not spec:
        return None
    pages: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"--pages: {part!r} is not a page number or range like 3-5")
        if lo < 1 or hi < lo:
            raise ValueError(f"--pages: bad range {part!r} (pages count from 1)")
        pages.update(range(lo - 1, hi))
    return pages


def is_document(path: Path) -> bool:
    if path.suffix.lower() in DOCUMENT_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        return handle.read(5) == b"%PDF-"


def iter_images(path: Path, dpi: int,
                pages: set[int] | None) -> Iterator[tuple[int | None, Image.Image | Exception]]:
    """``(page index or None, RGB image)`` for an image file or each selected document page.

    A page that fails to render comes as ``(index, exception)`` so the next pages still run;
    a file that cannot be opened at all raises.
    """
    if not is_document(path):
        with Image.open(path) as image:
            image.load()
            yield None, image.copy()
        return
    import pymupdf

    with pymupdf.open(path) as document:
        for index in range(document.page_count):
            if pages is not None and index not in pages:
                continue
            try:
                pixmap = document[index].get_pixmap(dpi=dpi, alpha=False)
            except Exception as exc:  # a broken page must not hide the rest of the file
                yield index, exc
                continue
            yield index, Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)


def add_ocr_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("OCR image files or PDF pages and print the text (or, with --json, "
                          "every line with its normalised box and confidence).")
    parser.add_argument("files", nargs="+", help="image files (PNG, JPEG, ...) or PDFs")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default=DEFAULT_BACKEND,
                        help="rapidocr (default: PP-OCR as ONNX, bundled, offline), tesseract, "
                             "or paddleocr (needs local models: --ocr-option det_model_dir=DIR "
                             "--ocr-option rec_model_dir=DIR)")
    parser.add_argument("--ocr-option", action="append", metavar="KEY=VALUE", default=[],
                        help="backend option, repeatable (e.g. lang=deu psm=6 for tesseract, "
                             "threads=2 for rapidocr)")
    parser.add_argument("--dpi", type=int, default=150,
                        help="resolution PDF pages are rendered at (default 150)")
    parser.add_argument("--pages", help="PDF pages to read, 1-based, e.g. 1,3-5 (default all)")
    parser.add_argument("--low-confidence", type=float, default=DEFAULT_LOW_CONFIDENCE,
                        help="lines below this confidence (0..1) are marked low_confidence "
                             f"and left out of the text (default {DEFAULT_LOW_CONFIDENCE})")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: {backend, engine, results: [{file, page (0-based), "
                             "width, height, seconds, lines, text}]}")


def ocr_command(args: argparse.Namespace, extra: list[str]) -> int:
    pages = parse_pages(args.pages)
    engine = load_backend(args.backend,
                          **backend_options(args.backend, parse_options(args.ocr_option)))
    results: list[dict[str, Any]] = []
    failed = 0
    from tqdm import tqdm

    progress = tqdm(desc="ocr", unit="page", disable=None, file=sys.stderr)
    for name in args.files:
        path = Path(name)
        try:
            for page, image in iter_images(path, args.dpi, pages):
                if isinstance(image, Exception):
                    failed += 1
                    message = f"{type(image).__name__}: {image}"
                    results.append({"file": str(path), "page": page, "error": message})
                    print(f"vlforge ocr: {path} page {page + 1}: {message}", file=sys.stderr)
                    continue
                started = time.perf_counter()
                lines = engine.read(image)
                result = {"file": str(path), "page": page, "width": image.width,
                          "height": image.height, **lines_result(lines, args.low_confidence),
                          "seconds": round(time.perf_counter() - started, 4)}
                results.append(result)
                progress.update(1)
                if not args.json:
                    print_result(result)
        except Exception as exc:  # one unreadable file must not stop the others
            failed += 1
            message = f"{type(exc).__name__}: {exc}"
            log.debug("ocr failed on %s", path, exc_info=True)
            results.append({"file": str(path), "error": message})
            print(f"vlforge ocr: {path}: {message}", file=sys.stderr)
    progress.close()
    if args.json:
        print(json.dumps({"backend": args.backend, "engine": engine.describe(),
                          "results": results}, indent=2, ensure_ascii=False))
    return 1 if failed else 0


def print_result(result: dict[str, Any]) -> None:
    where = result["file"] + (f" (page {result['page'] + 1})" if result["page"] is not None else "")
    print(f"== {where}  {len(result['lines'])} lines, {result['seconds']:.2f}s")
    for line in result["lines"]:
        mark = "[?] " if line["low_confidence"] else ""
        print(f"{mark}{line['text']}")


def add_ocr_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Compare OCR with the PDF text layer / DOM text of a finished run "
                          "and report CER and WER per backend.")
    parser.add_argument("run_dir", help="a finished run directory (with _SUCCESS)")
    parser.add_argument("--backend", action="append", choices=sorted(BACKENDS), default=None,
                        help="backend to evaluate, repeatable (default: "
                             + " and ".join(DEFAULT_BACKENDS) + ")")
    parser.add_argument("--ocr-option", action="append", metavar="KEY=VALUE", default=[],
                        help="backend option, repeatable; prefix it with a backend name to "
                             "send it to that backend only (tesseract.psm=6)")
    parser.add_argument("--limit", type=int, default=50,
                        help="evaluate at most this many samples (default 50; 0 = all)")
    parser.add_argument("--details", action="store_true",
                        help="with --json, include one row per sample and backend")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")

def ocr_eval_command(args: argparse.Namespace, extra: list[str]) -> int:
    backends = args.backend or list(DEFAULT_BACKENDS)
    options = parse_options(args.ocr_option)
    samples = select_samples(args.run_dir, args.limit or None)
    report: dict[str, Any] = {"run": args.run_dir, "samples": len(samples), "backends": {},
                              "stored": stored_summaries(samples)}
    details: dict[str, list[dict]] = {}
    unavailable = 0
    if not samples:
        print(f"vlforge ocr-eval: {args.run_dir} has no samples with both an image and a "
              "text layer / DOM text to compare with", file=sys.stderr)
    for name in backends if samples else []:
        try:
            report["backends"][name], details[name] = evaluate_backend(name, options, samples)
        except OcrBackendUnavailable as exc:
            unavailable += 1
            report["backends"][name] = {"error": str(exc)}
            print(f"vlforge ocr-eval: {name}: {exc}", file=sys.stderr)
    if args.json:
        if args.details:
            report["details"] = details
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print_table(report)
    return 1 if unavailable or not samples else 0

def print_table(report: dict[str, Any]) -> None:
    print(f"run: {report['run']}  samples with ground truth: {report['samples']}")
    print(f"  {'backend':<20} {'samples':>7} {'ref chars':>9} {'CER':>7} {'WER':>7} "
          f"{'mean CER':>8} {'pages/s':>7}")
    rows = {**report["backends"], **report["stored"]}
    for name, summary in rows.items():
        if "error" in summary:
            print(f"  {name:<20} unavailable: {summary['error'][:100]}")
            continue
        pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"  # noqa: E731
        speed = summary.get("pages_per_s")
        print(f"  {name:<20} {summary['samples']:>7} {summary['ref_chars']:>9} "
              f"{pct(summary['cer']):>7} {pct(summary['wer']):>7} "
              f"{pct(summary['mean_sample_cer']):>8} {'-' if speed is None else speed:>7}")
