"""Main text of saved real pages: our crawl's ``.txt`` vs trafilatura on the source HTML.

Serves ``corpus/pages/*/index.html`` from a local server (no network: their external
resources fail fast), crawls them with the real pipeline (`pipelines.web.pipeline.crawl`,
Beam DirectRunner) and compares each page's ``sample.text`` (the main content as markdown)
with its ``expected.html`` (the main content as a reader-mode tool extracts it), side by
side with trafilatura (favor_recall) run on the same page's source HTML. Words are a
multiset, case-folded, CJK by character; recall = share of the expected words found,
precision = share of the extracted words that are expected, F1 of the two; per page, as a
mean over pages and pooled over all words.

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
    """Share of the expected words found in the extracted text (recall)."""
    return scores(expected, extracted)["recall"]


def overlap(expected: str, extracted: str) -> tuple[int, int, int]:
    """(common words, expected words, extracted words) as multisets."""
    want, have = words(expected), words(extracted)
    common = sum(min(n, have[w]) for w, n in want.items())
    return common, sum(want.values()), sum(have.values())


def prf(common: int, expected: int, extracted: int) -> dict[str, float]:
    recall = common / expected if expected else 1.0
    precision = common / extracted if extracted else (1.0 if not expected else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def scores(expected: str, extracted: str) -> dict[str, float]:
    return prf(*overlap(expected, extracted))


def trafilatura_text(source_html: str) -> str:
    """The extractor alone on the saved source HTML (what a non-rendering pipeline gets)."""
    import trafilatura

    return trafilatura.extract(source_html, favor_recall=True, include_tables=True) or ""


def summarise(rows: list[dict], who: str) -> dict[str, float]:
    """Mean over pages and pooled over words, for one extractor's columns."""
    scored = [r for r in rows if r[who] is not None]
    if not scored:
        return {}
    mean = {k: round(sum(r[who][k] for r in scored) / len(scored), 4)
            for k in ("precision", "recall", "f1")}
    pooled = prf(*[sum(r[who + "_counts"][i] for r in scored) for i in range(3)])
    return {"pages": len(scored), **mean, "min_recall": min(r[who]["recall"] for r in scored),
            "pooled_precision": pooled["precision"], "pooled_recall": pooled["recall"],
            "pooled_f1": pooled["f1"]}


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
        if sample.meta["web"].get("kind", "page") not in ("page", "tile"):
            continue  # interleaved documents, caption and code pairs: no boxed lines
        name = sample.meta["web"]["url"].rstrip("/").rsplit("/", 1)[-1]
        lines = [line["text"] for line in sample.meta["web"]["lines"]]
        boxed_text.setdefault(name, []).extend(lines)
        if not sample.lineage.get("derived_from"):
            texts[name] = sample.text or ""
    rows = []
    for name in names:
        with open(os.path.join(args.corpus, name, "expected.html"), encoding="utf-8") as handle:
            expected = html_text(handle.read())
        source = files[f"/{name}/"][0].decode("utf-8", "replace")
        ours, theirs = texts.get(name), trafilatura_text(source)
        row = {"page": name, "expected_words": sum(words(expected).values())}
        for who, got in (("ours", ours), ("trafilatura", theirs)):
            counts = overlap(expected, got) if got is not None else None
            row[who] = prf(*counts) if counts else None
            row[who + "_counts"] = counts
        row["boxed_recall"] = round(coverage(expected, " ".join(boxed_text.get(name, []))), 4)
        rows.append(row)
    summary = {"pages": len(names), "ours": summarise(rows, "ours"),
               "trafilatura_on_source": summarise(rows, "trafilatura"),
               "audit_ok": audit_run(out).ok, "errors": stats["errors_by_reason"],
               "dropped": stats["dropped_by_reason"], "run": out}
    if args.json:
        print(json.dumps({"pages": rows, **summary}, indent=2))
        return 0
    print("precision / recall / F1 of the words of expected.html (reader-mode reference);"
          " ours = the crawl's .txt, trafilatura = the extractor on the source HTML")
    print(f"{'page':26s} {'words':>6s} | {'ours P':>6s} {'R':>6s} {'F1':>6s} | "
          f"{'traf P':>6s} {'R':>6s} {'F1':>6s}")
    cell = lambda r: "   not crawled      " if r is None else \
        f"{r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f}"  # noqa: E731
    for r in rows:
        print(f"{r['page']:26s} {r['expected_words']:6d} | {cell(r['ours'])} | "
              f"{cell(r['trafilatura'])}")
    for label, key in (("mean over pages", ""), ("pooled over words", "pooled_")):
        line = f"{label:33s} |"
        for who in ("ours", "trafilatura_on_source"):
            sm = summary[who]
            line += (f" {sm[key + 'precision']:6.3f} {sm[key + 'recall']:6.3f} "
                     f"{sm[key + 'f1']:6.3f} |") if sm else "  n/a |"
        print(line)
    print(json.dumps({k: v for k, v in summary.items()}, indent=2))
    return 0

if __name__ == "__main__":
    sys.exit(main())
