"""What the derived web samples cost: the crawl stage with interleaved documents, caption
pairs and code pairs on vs off, side by side, on the same pages.

Pages: ``--pages`` generated articles, each with ``--images`` pictures (PNG and JPEG, drawn
here, some lazily loaded far down the page) plus a tracker pixel and an icon, served on
loopback; and, unless ``--corpus-copies 0``, the saved real pages of
``corpus/pages/*/index.html`` (their images point at hosts that cannot be reached here, so
they exercise the failed-load verdicts, not the bytes). Each configuration runs
`ScreenshotPagesFn` in-process (one worker, one Chromium, default render settings but no
per-host delay), ``--rounds`` times alternating, so drifting machine load hits both alike.

Prints pages/s, CPU-s per page (this process and its descendants: Chromium, the Playwright
driver), output MB per page and samples per page for each, and the on/off ratios.

    .venv/bin/python bench/web_derived.py [--pages 40] [--images 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from PIL import Image, ImageDraw  # noqa: E402
from web_throughput import CORPUS, TreeCpu, corpus_files, machine_load  # noqa: E402

from pipelines.core.runner import seed_sample  # noqa: E402
from pipelines.web.pipeline import ScreenshotPagesFn, web_refs  # noqa: E402
from pipelines.web.testsite import paragraph, serve_site  # noqa: E402

OFF = {"interleaved": False, "captions": False, "code_pairs": False}
ON = {"interleaved": True, "captions": True, "code_pairs": True}


def picture(seed: int, fmt: str) -> bytes:
    image = Image.new("RGB", (480, 320), (230, 230, 225))
    paint = ImageDraw.Draw(image)
    for i in range(12):
        x, y = (seed * 37 + i * 53) % 440, (seed * 19 + i * 29) % 280
        paint.ellipse((x, y, x + 40, y + 40), fill=((seed * 50 + i * 20) % 256, i * 20, 120))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def site_files(pages: int, images: int) -> dict[str, tuple[bytes, str]]:
    files = {"/px.gif": (_gif(), "image/gif"), "/icon.png": (_icon(), "image/png")}
    for n in range(pages):
        body = [f"<h1>Article {n}</h1><p>{paragraph(n, 90)}</p>"]
        for i in range(images):
            fmt, ctype, ext = (("JPEG", "image/jpeg", "jpg") if i % 2 else
                               ("PNG", "image/png", "png"))
            path = f"/img/{n}-{i}.{ext}"
            files[path] = (picture(n * 10 + i, fmt), ctype)
            lazy = ' loading="lazy"' if i == images - 1 else ""
            spacer = '<div style="height:2500px"></div>' if lazy else ""
            body.append(f'{spacer}<figure><img src="{path}" alt="Picture {i} of article '
                        f'{n} in the garden"{lazy}><figcaption>Figure {i}: the river at '
                        f'dawn, seen from article {n}</figcaption></figure>'
                        f"<p>{paragraph(n * 7 + i, 70)}</p>")
        body.append('<img src="/px.gif" width="1" height="1" alt=""><img src="/icon.png" '
                    'width="16" height="16" alt="icon">')
        page = (f"<!doctype html><html lang='en'><head><title>Article {n}</title></head>"
                f"<body><article>{''.join(body)}</article></body></html>")
        files[f"/a/{n}"] = (page.encode(), "text/html; charset=utf-8")
    return files


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(out, format="GIF")
    return out.getvalue()


def _icon() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(out, format="PNG")
    return out.getvalue()


def run(urls: list[str], derived: dict) -> dict:
    refs, _ = web_refs(urls)
    seeds = [seed_sample("web", ref, "t00000") for ref in refs]
    fn = ScreenshotPagesFn({"allow_private": ["127.0.0.1"], "host_delay_s": 0},
                           derived=derived)
    started = time.perf_counter()
    with TreeCpu() as usage:
        out = fn.run_local(seeds)  # includes the one Chromium launch
    seconds = time.perf_counter() - started
    samples = [r for r in out if hasattr(r, "image")]
    pages = sum(1 for s in samples if s.meta["web"].get("kind") == "page")
    kinds: dict[str, int] = {}
    for sample in samples:
        kind = sample.meta["web"].get("kind", "")
        kinds[kind] = kinds.get(kind, 0) + 1
    size = sum(sample.size_bytes() for sample in samples)
    return {"pages": pages, "seconds": round(seconds, 2),
            "pages_per_s": round(pages / seconds, 2),
            "cpu_s_per_page": round(usage.seconds / max(1, pages), 3),
            "mb_per_page": round(size / 1e6 / max(1, pages), 3), "samples": kinds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--images", type=int, default=4, help="pictures per article")
    parser.add_argument("--corpus", default=CORPUS)
    parser.add_argument("--corpus-copies", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = site_files(args.pages, args.images)
    if args.corpus_copies and os.path.isdir(args.corpus):
        files.update(corpus_files(args.corpus, args.corpus_copies))
    server, base = serve_site(files)
    results: dict[str, list[dict]] = {"site off": [], "site on": [], "corpus off": [],
                                      "corpus on": []}
    site = [f"{base}/a/{n}" for n in range(args.pages)]
    corpus = [base + path for path in files if not path.startswith(("/a/", "/img/"))
              and path.endswith("/")]
    load_before = machine_load()
    try:
        for _ in range(args.rounds):
            for name, derived in (("off", OFF), ("on", ON)):
                results[f"site {name}"].append(run(site, derived))
                if corpus:
                    results[f"corpus {name}"].append(run(corpus, derived))
    finally:
        server.shutdown()
    summary = {}
    for name, runs in results.items():
        if runs:
            summary[name] = {k: round(sum(r[k] for r in runs) / len(runs), 3)
                             for k in ("pages_per_s", "cpu_s_per_page", "mb_per_page")}
            summary[name]["samples"] = runs[-1]["samples"]
    for what in ("site", "corpus"):
        if f"{what} on" in summary:
            on, off = summary[f"{what} on"], summary[f"{what} off"]
            summary[f"{what} on/off"] = {
                k: round(on[k] / off[k], 3) for k in ("pages_per_s", "cpu_s_per_page",
                                                      "mb_per_page")}
    summary["load_avg"] = [load_before, machine_load()]
    if args.json:
        print(json.dumps({"summary": summary, "runs": results}, indent=2))
        return 0
    print(f"{'run':14s} {'pages/s':>8s} {'CPU-s/page':>11s} {'MB/page':>8s}  samples")
    for name, row in summary.items():
        if name == "load_avg":
            continue
        print(f"{name:14s} {row['pages_per_s']:8.3f} {row['cpu_s_per_page']:11.3f} "
              f"{row['mb_per_page']:8.3f}  {json.dumps(row.get('samples', ''))}")
    print(f"load average before/after: {summary['load_avg']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
