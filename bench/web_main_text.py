"""How much of each saved real page's main text does the crawl's extracted text contain?

Serves ``corpus/pages/*/index.html`` from a local server (no network: their external
resources fail fast), crawls them with the real pipeline (`pipelines.web.pipeline.crawl`, Beam
DirectRunner) and compares each page's ``sample.text`` with its ``expected.html`` (the main
content as a reader-mode tool extracts it): the share of the expected words (as a
multiset, case-folded; CJK by character) found in the extracted text.

    .venv/bin/python bench/web_main_text.py [--corpus ../shared/corpus/pages] [--json]
"""

from __future__ import annotations

import argparse
import glob
import html.parser
import json
import os
import re
import sys
import tempfile
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.core.audit import audit_run  # noqa: E402
from pipelines.core.run_dir import RunDir  # noqa: E402
from pipelines.web.pipeline import crawl  # noqa: E402
from pipelines.web.testsite import serve_site  # noqa: E402

WORD = re.compile(r"\w+", re.UNICODE)


class _TextOf(html.parser.HTMLParser):
    """The text of an HTML fragment, skipping scripts and styles."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style") and self.skip > 0

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _TextOf()
    parser.feed(markup)
    return " ".join(parser.parts)


def words(text: str) -> Counter:
    """Case-folded word tokens; CJK runs (written without spaces, which the page's line
    breaks split differently) count character by character."""
    tokens: list[str] = []
    for word in WORD.findall(text):
        if any(ord(c) >= 0x2E80 for c in word):
            tokens.extend(word)
        else:
            tokens.append(word.casefold())
    return Counter(tokens)


def coverage(expected: str, extracted: str) -> float:
    want, have = words(expected), words(extracted)
    total = sum(want.values())
    return sum(min(n, have[w]) for w, n in want.items()) / total if total else 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus", "pages")
    parser.add_argument("--corpus", default=os.path.normpath(default))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = sorted(os.path.basename(os.path.dirname(p))
                   for p in glob.glob(os.path.join(args.corpus, "*", "index.html")))
    files = {}
    for name in names:
        with open(os.path.join(args.corpus, name, "index.html"), "rb") as handle:
            files[f"/{name}/"] = (handle.read(), "text/html; charset=utf-8")
    server, base = serve_site(files)
    try:
        out = os.path.join(tempfile.mkdtemp(prefix="web-corpus-"), "run")
        render = {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "host_concurrency": 4,
                  "nav_timeout_s": 20, "total_timeout_s": 60}
        stats = crawl([f"{base}/{n}/" for n in names], out,
                      {"render": render, "ocr": None, "charts": False, "label": False})
    finally:
        server.shutdown()
    texts: dict[str, str] = {}
    boxed_text: dict[str, list[str]] = {}
    for sample in RunDir(out).iter_samples():
        name = sample.meta["web"]["url"].rstrip("/").rsplit("/", 1)[-1]
        lines = [line["text"] for line in sample.meta["web"]["lines"]]
        boxed_text.setdefault(name, []).extend(lines)
        if not sample.lineage.get("derived_from"):
            texts[name] = sample.text or ""
    rows = []
    for name in names:
        with open(os.path.join(args.corpus, name, "expected.html"), encoding="utf-8") as handle:
            expected = html_text(handle.read())
        got = texts.get(name)
        rows.append({"page": name, "expected_words": sum(words(expected).values()),
                     "extracted_words": sum(words(got or "").values()),
                     "coverage": None if got is None else round(coverage(expected, got), 4),
                     "boxed_coverage": round(coverage(expected, " ".join(
                         boxed_text.get(name, []))), 4)})
    scored = [r["coverage"] for r in rows if r["coverage"] is not None]
    summary = {"pages": len(names), "crawled": len(scored),
               "mean_coverage": round(sum(scored) / len(scored), 4) if scored else None,
               "min_coverage": min(scored) if scored else None,
               "mean_boxed_coverage": round(sum(r["boxed_coverage"] for r in rows)
                                            / max(1, len(rows)), 4),
               "audit_ok": audit_run(out).ok, "errors": stats["errors_by_reason"],
               "dropped": stats["dropped_by_reason"], "run": out}
    if args.json:
        print(json.dumps({"pages": rows, **summary}, indent=2))
        return 0
    print("coverage: share of expected.html words in the extracted text; boxed: in the "
          "text lines that carry boxes (viewport + tiles, first 8192 px)")
    print(f"{'page':28s} {'expected':>9s} {'extracted':>9s} {'coverage':>9s} {'boxed':>7s}")
    for r in rows:
        cov = "not crawled" if r["coverage"] is None else f"{r['coverage']:.1%}"
        print(f"{r['page']:28s} {r['expected_words']:9d} {r['extracted_words']:9d} {cov:>9s}"
              f" {r['boxed_coverage']:7.1%}")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
