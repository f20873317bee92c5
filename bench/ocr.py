"""OCR benchmark: pages/s and CER/WER of rapidocr vs tesseract on the same rendered pages.

    .venv/bin/python bench/ocr.py [--pages 8] [--dpi 150] [--backends rapidocr tesseract]
    .venv/bin/python bench/ocr.py --pdfs /work/shared/corpus/pdfs/*.pdf --pages 12

Draws pages of clean text with PyMuPDF (three fonts, several sizes, prose with numbers and
punctuation, deterministic from --seed), renders them at --dpi, and OCRs every page with
each backend. Ground truth is each page's own text layer, compared exactly as
`vlforge ocr-eval` does (reading order by boxes, whitespace collapsed). Prints one column
per backend with ratios against the first (the default backend), and checks the goal:
the default backend's CER <= 2% on clean rendered text. Model loading is timed
separately; pages/s counts OCR time only. CPU s/page counts every thread of this process
and finished children (tesseract), the figure to compare on a shared machine.
``NAME:KEY=VALUE,...`` passes backend options, e.g. rapidocr's settings before issue 17:

    .venv/bin/python bench/ocr.py --backends rapidocr \
        rapidocr:threads=0,det_max_side=0,EngineConfig.onnxruntime.enable_cpu_mem_arena=false

With ``--pdfs`` the pages are instead the first pages of real PDFs that carry a text layer
(up to --pages of them). Their text layer is what the file claims, not always what it
shows (private-use glyph codes, scripts the models do not cover), so those CERs measure
agreement with the text layer and are an upper bound on the OCR error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.ocr.backends import load_backend  # noqa: E402
from pipelines.ocr.metrics import error_counts, lines_text, rates  # noqa: E402

WORDS = ("the data model image page text table figure chart value result sample training "
         "vision language report market growth energy system network quality review total "
         "annual revenue increase decrease between during across within analysis method "
         "section results shows compared average percent customer service product design "
         "research paper source number latest period update").split()
FONTS = ("helv", "tiro", "cour")  # PDF base fonts: Helvetica, Times, Courier
GOAL_CER = 0.02


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(5, 11))]
    if rng.random() < 0.6:
        words.insert(rng.randrange(len(words)), rng.choice(
            [str(rng.randint(2, 2030)), f"{rng.uniform(0, 100):.1f}%", f"${rng.randint(1, 999)}",
             f"{rng.randint(1, 31)}/{rng.randint(1, 12)}/{rng.randint(1990, 2030)}"]))
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ",", ";", ":", "?"])


def render_pages(count: int, dpi: int, seed: int) -> list[tuple[bytes, str, str]]:
    """``(png, reference text, description)`` per page."""
    import pymupdf

    rng = random.Random(seed)
    pages = []
    for index in range(count):
        font, size = FONTS[index % len(FONTS)], rng.choice([9, 10, 11, 12])
        document = pymupdf.open()
        page = document.new_page(width=420, height=595)  # A5 portrait, points
        text = " ".join(sentence(rng) for _ in range(rng.randint(10, 14)))
        page.insert_textbox(pymupdf.Rect(36, 36, 384, 559), text, fontsize=size, fontname=font)
        png = page.get_pixmap(dpi=dpi, alpha=False).tobytes("png")
        pages.append((png, lines_text(text_layer_lines(page)), f"{font} {size}pt"))
        document.close()
    return pages


def text_layer_lines(page) -> list[dict]:
    """The page's text lines with boxes normalised to the page, as ``meta["pdf"]["lines"]``."""
    width, height = page.rect.width, page.rect.height
    return [{"box": [line["bbox"][0] / width, line["bbox"][1] / height,
                     line["bbox"][2] / width, line["bbox"][3] / height],
             "text": "".join(span["text"] for span in line["spans"])}
            for block in page.get_text("dict")["blocks"] for line in block.get("lines", [])]


def real_pages(paths: list[str], count: int, dpi: int) -> list[tuple[bytes, str, str]]:
    """First pages of real PDFs whose text layer has 100..4000 characters."""
    import pymupdf

    pages = []
    for path in paths:
        try:
            with pymupdf.open(path) as document:
                if document.page_count == 0:
                    continue
                page = document[0]
                reference = lines_text(text_layer_lines(page))
                if not 100 <= len(reference.strip()) <= 4000:
                    continue
                png = page.get_pixmap(dpi=dpi, alpha=False).tobytes("png")
        except Exception as exc:  # the corpus has deliberately broken files
            print(f"skipping {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        pages.append((png, reference, os.path.basename(path)[:20]))
        if len(pages) >= count:
            break
    return pages


def cpu_seconds() -> float:
    """CPU seconds of this process (all its threads: onnxruntime's pool) and of its
    finished children (tesseract runs as one child per page)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_backend(name: str, pages: list[tuple[bytes, str, str]], options: dict) -> dict:
    started = time.perf_counter()
    engine = load_backend(name, **options)
    load_s = time.perf_counter() - started
    totals = {"char_edits": 0, "ref_chars": 0, "word_edits": 0, "ref_words": 0}
    per_page, spent, cpu = [], 0.0, 0.0
    for png, reference, label in pages:
        started, cpu_started = time.perf_counter(), cpu_seconds()
        lines = engine.read(png)
        spent += time.perf_counter() - started
        cpu += cpu_seconds() - cpu_started
        counts = error_counts(reference, "\n".join(line.text for line in lines))
        for key in totals:
            totals[key] += counts[key]
        per_page.append({"page": label, **rates(counts)})
    label = name + "".join(f" {k}={v}" for k, v in options.items())
    return {"backend": label, "load_s": round(load_s, 3), "ocr_s": round(spent, 3),
            "pages_per_s": len(pages) / spent, "cpu_s_per_page": cpu / len(pages),
            **totals, **rates(totals), "per_page": per_page}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=8, help="pages to render (default 8)")
    parser.add_argument("--dpi", type=int, default=150, help="render resolution (default 150)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", nargs="+", default=["rapidocr", "tesseract"],
                        help="backends to compare; the first is the baseline of the ratios; "
                             "NAME:KEY=VALUE,KEY=VALUE passes options (rapidocr:threads=1)")
    parser.add_argument("--pdfs", nargs="+", metavar="PDF",
                        help="use the first pages of these real PDFs instead of rendered text")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    args = parser.parse_args()

    if args.pdfs:
        pages = real_pages(args.pdfs, args.pages, args.dpi)
        kind = "first pages of real PDFs"
    else:
        pages = render_pages(args.pages, args.dpi, args.seed)
        kind = "rendered A5 pages of clean text"
    if not pages:
        print("no pages to OCR", file=sys.stderr)
        return 1
    chars = sum(len(reference) for _, reference, _ in pages)
    from pipelines.ocr.backends import parse_options

    results = []
    for spec in args.backends:
        name, _, opts = spec.partition(":")
        results.append(bench_backend(name, pages, parse_options(opts.split(",") if opts else [])))
    if args.json:
        print(json.dumps({"pages": args.pages, "dpi": args.dpi, "results": results}, indent=2))
        return 0

    base = results[0]
    print(f"OCR bench: {len(pages)} {kind} ({args.dpi} dpi, {chars} reference chars), "
          f"{os.cpu_count()} CPUs")
    width = max(22, *(len(r["backend"]) + 2 for r in results))  # options make long names
    header = f"{'':<23}" + "".join(f"{r['backend']:>{width}}" for r in results)
    print(header)
    rows = [("pages/s", "pages_per_s", "{:.2f}", True),
            ("CPU s/page", "cpu_s_per_page", "{:.3f}", False),
            ("model load s", "load_s", "{:.2f}", False),
            ("CER", "cer", "{:.2%}", False), ("WER", "wer", "{:.2%}", False),
            ("char edits", "char_edits", "{:d}", False)]
    for label, key, fmt, _ in rows:
        cells = []
        for result in results:
            value = result[key]
            cell = fmt.format(value)
            if result is not base and base[key]:
                cell += f" ({value / base[key]:.2f}x)"
            cells.append(f"{cell:>{width}}")
        print(f"{label:<23}" + "".join(cells))
    print("per page CER:")
    for index, (_, _, label) in enumerate(pages):
        print(f"  {index:<3}{label:<20}" + "".join(
            f"{result['per_page'][index]['cer']:>{width}.2%}" for result in results))
    if args.pdfs:
        return 0
    verdict = "met" if base["cer"] <= GOAL_CER else "NOT met"
    print(f"goal: {base['backend']} CER <= {GOAL_CER:.0%} on clean rendered text: {verdict} "
          f"({base['cer']:.2%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
