"""Build a text-only corpus (documents, not pages) from finished runs.

``vlforge text build RUN... --out TEXT`` turns the main text of crawled pages (a web
sample's ``.txt``: the page's main content) and the text layers of PDFs and e-books into a
clean, de-duplicated corpus for the language share of stages 2-3 (paper: 70% of stage 2's
data). Runs are read only through `RunDir` (manifest + samples).

- **Documents, not pages**: the pages of one PDF (one source document, see
  `pipelines.core.split.document_id`) are joined in page order; a web page is one
  document. Derived samples (figures, tables, screenshot tiles, interleaved documents,
  caption pairs) add nothing: their text is already in their page, so none of them counts
  as a document a second time (``derived_skipped`` in the stats).
- **Text only**: image placeholders (`IMAGE_PLACEHOLDER`, which the tokenizer would turn
  into image tokens) never reach the corpus, whatever sample carried them.
- **Trusted text only**: a PDF page whose text layer is doubtful (``needs_ocr``) gives its
  OCR text when that is trustworthy (`trusted_text`), else nothing.
- **Clean**: Unicode NFC, control characters removed, spaces collapsed, at most one blank
  line in a row; documents shorter than ``min_chars`` or mostly non-letters are dropped
  with a reason.
- **De-duplicated**: exact (sha256 of the cleaned text) and normalised (case, punctuation
  and whitespace folded) hashes; the first document seen wins, in run then document order.
- **Held-out documents stay out**: by default only the runs' ``train`` split is read, so
  the language share never trains on the text of a page `vlforge eval` scores.

The output is what `training.data.TextDocumentStream` (``vlforge train --text``) reads:
jsonl with ``"text"`` (plus provenance fields), or, for a ``.txt`` path, plain text with
one blank line between documents (blank lines inside a document are folded so they
cannot split it). A ``<out>.stats.json`` beside it counts documents, characters and drops.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.core.run_dir import RunDir
from pipelines.core.sample import Sample
from pipelines.core.split import TRAIN, document_id
from pipelines.core.text import IMAGE_PLACEHOLDER, RECOGNISED, trusted_text

log = logging.getLogger(__name__)

TEXT_SOURCES = ("pdf", "web")
# Samples made of other samples' text (the record contract of `pipelines.core.text`).
DERIVED_KINDS = ("interleaved", "caption")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\ufeff]")
SPACES = re.compile(r"[ \t\u00a0]+")
BLANK_RUNS = re.compile(r"\n{3,}")
NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


@dataclass
class TextDocument:
    """One document of the corpus and where it came from."""

    text: str
    source: str
    run: str
    document: str
    parts: int = 1  # pages joined

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "run": self.run,
                "document": self.document, "parts": self.parts,
                "id": normalised_hash(self.text)[:16]}


@dataclass
class CorpusStats:
    """What a build read, wrote and dropped (written to ``<out>.stats.json``)."""

    runs: int = 0
    samples_read: int = 0
    derived_skipped: int = 0
    documents_seen: int = 0
    documents_written: int = 0
    chars_written: int = 0
    dropped: Counter = field(default_factory=Counter)
    documents_by_source: Counter = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "samples_read": self.samples_read,
                "derived_skipped": self.derived_skipped,
                "documents_seen": self.documents_seen,
                "documents_written": self.documents_written,
                "chars_written": self.chars_written,
                "dropped": dict(sorted(self.dropped.items())),
                "documents_by_source": dict(sorted(self.documents_by_source.items()))}


def clean_text(text: str) -> str:
    """NFC, no control characters or image placeholders, single spaces, at most one blank
    line in a row."""
    text = text.replace(IMAGE_PLACEHOLDER, " ")
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = CONTROL.sub("", text)
    lines = [SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def normalised_hash(text: str) -> str:
    """The hash two copies of a text share despite case, punctuation or spacing changes."""
    folded = NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def exact_hash(text: str) -> str:
    """sha256 of the text as written."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def page_text(sample: Sample) -> str:
    """The trustworthy text of one page or web sample ('' when it has none)."""
    if sample.source == "pdf" and (sample.meta.get("pdf") or {}).get("needs_ocr"):
        layer = trusted_text(sample, RECOGNISED)
        return layer.text if layer is not None and layer.origin == "ocr" else ""
    return sample.text or ""


def page_order(sample: Sample) -> int:
    """A page's index within its document (0 for web pages)."""
    pdf = sample.meta.get("pdf") or {}
    if "page" in pdf:
        return int(pdf["page"])
    _, _, page = sample.locator.rpartition("#page=")
    return int(page) if page.isdigit() else 0


def run_documents(run: RunDir, split: str | None, stats: CorpusStats) -> Iterator[TextDocument]:
    """The documents of one finished run, in first-seen document order.

    Pages are gathered per document before joining (a PDF's pages may sit in several
    shards); images are never read twice. The manifest says how many samples each document
    has (`RunDir.document_counts`), so a document is handed on as soon as its last sample
    has passed and the documents seen before it are out: only the documents still open are
    held, not the run's whole text (a run without that column is held whole, as before).
    """
    pages: dict[str, list[tuple[int, str]]] = {}
    sources: dict[str, str] = {}
    remaining = run.document_counts(split=split)
    for sample in run.iter_samples(split=split):
        stats.samples_read += 1
        doc = document_id(sample)
        if remaining is not None:
            remaining[doc] = remaining.get(doc, 0) - 1
        if sample.lineage.get("derived_from") or _kind(sample) in DERIVED_KINDS:
            stats.derived_skipped += 1  # its text is part of its page already
        elif sample.source not in TEXT_SOURCES:
            stats.dropped[f"source_{sample.source}"] += 1
        else:
            sources.setdefault(doc, sample.source)
            pages.setdefault(doc, []).append((page_order(sample), page_text(sample)))
        if remaining is not None and remaining[doc] < 0:
            remaining = None  # shards and manifest disagree: hold everything to the end
        # the oldest open documents first, each once all its samples have passed
        while remaining is not None and pages and remaining[next(iter(pages))] == 0:
            first = next(iter(pages))
            yield _joined(run, first, pages.pop(first), sources.pop(first))
    for doc, parts in pages.items():
        yield _joined(run, doc, parts, sources[doc])


def _joined(run: RunDir, doc: str, parts: list[tuple[int, str]], source: str) -> TextDocument:
    """One document of `run` from its pages' (order, text), joined in page order."""
    parts.sort(key=lambda part: part[0])
    text = "\n\n".join(t.strip() for _, t in parts if t.strip())
    return TextDocument(text=text, source=source, run=run.url, document=doc, parts=len(parts))


def _kind(sample: Sample) -> str:
    """The sample's kind in its own pipeline's meta ("page", "interleaved", ...)."""
    section = sample.meta.get(sample.source)
    return str(section.get("kind") or "") if isinstance(section, dict) else ""


def drop_reason(text: str, min_chars: int, min_letter_share: float) -> str | None:
    """Why a cleaned document is dropped (None: it is kept)."""
    if not text:
        return "empty"
    if len(text) < min_chars:
        return "too_short"
    letters = sum(ch.isalpha() for ch in text)
    if letters < min_letter_share * sum(not ch.isspace() for ch in text):
        return "few_letters"
    return None


def build_documents(run_urls: Sequence[str], *, split: str | None = TRAIN,
                    min_chars: int = 200, min_letter_share: float = 0.5,
                    stats: CorpusStats | None = None) -> Iterator[TextDocument]:
    """Clean, filtered, de-duplicated documents of finished runs (see the module doc)."""
    stats = stats if stats is not None else CorpusStats()
    exact: set[str] = set()
    normal: set[str] = set()
    for url in run_urls:
        run = RunDir(url).require_complete()
        stats.runs += 1
        for doc in run_documents(run, split, stats):
            stats.documents_seen += 1
            doc.text = clean_text(doc.text)
            reason = drop_reason(doc.text, min_chars, min_letter_share)
            if reason is None:
                if exact_hash(doc.text) in exact:
                    reason = "duplicate_exact"
                elif normalised_hash(doc.text) in normal:
                    reason = "duplicate_normalised"
            if reason is not None:
                stats.dropped[reason] += 1
                continue
            exact.add(exact_hash(doc.text))
            normal.add(normalised_hash(doc.text))
            stats.documents_written += 1
            stats.chars_written += len(doc.text)
            stats.documents_by_source[doc.source] += 1
            yield doc


def write_corpus(documents: Iterable[TextDocument], out: str) -> int:
    """Write documents to `out` (jsonl, or plain text for ``.txt``) atomically; returns the
    number written."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    plain = out.endswith(".txt")
    tmp = f"{out}.tmp-{os.getpid()}"
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for doc in documents:
            if plain:
                # a blank line ends a document in the plain format: fold the inner ones
                handle.write(re.sub(r"\n\s*\n", "\n", doc.text) + "\n\n")
            else:
                handle.write(json.dumps(doc.to_json(), ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, out)
    return count


def stats_path(out: str) -> str:
    """Where the stats of the corpus at `out` are written."""
    return f"{out}.stats.json"


def build_corpus(run_urls: Sequence[str], out: str, **options: Any) -> dict[str, Any]:
    """`build_documents` into `out`, plus ``<out>.stats.json``; returns the stats."""
    stats = CorpusStats()
    write_corpus(build_documents(run_urls, stats=stats, **options), out)
    result = {"out": out, "format": "txt" if out.endswith(".txt") else "jsonl",
              "sources": list(run_urls), "split": options.get("split", TRAIN) or "all",
              **stats.to_json()}
    with open(stats_path(out), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, sort_keys=True)
    log.info("text corpus %s: %d documents, %d chars", out, stats.documents_written,
             stats.chars_written)
    return result
