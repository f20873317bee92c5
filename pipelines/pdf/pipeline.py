"""PDFs and e-books → page, figure and table samples.

``vlforge pdf FILE|DIR|GLOB|LIST... --out RUN_DIR`` (any format PyMuPDF opens: PDF, EPUB,
XPS, FB2, CBZ, MOBI). Each document expands into one item per page; each page becomes a
sample with its image (long side ``--target``, default 1024 px), text layer (words and lines
with normalised boxes, reading order kept), markdown (headings, lists, tables; written from
the same text extraction) and vector drawings + chart text runs in ``meta["pdf"]``. Figures and tables become *derived* samples (cropped image, caption found
nearby, tables also as markdown + CSV) whose ``lineage["derived_from"]`` is the page key;
so are interleaved documents (a page's or an e-book chapter's text with its figures at
their places) and figure caption pairs (`pipelines.pdf.interleave`).

Filters (each a drop with a reason): ``duplicate_file`` (same sha256 as an earlier input,
across the whole run: hashed in the workers; files of equal size share a task), ``blank_page``,
``near_duplicate_page`` (perceptual hash within a task, i.e. among the pages of the
``--task-size`` documents processed together; pages with text must also share 80% of
their words), ``encrypted``, ``no_pages``, ``degenerate_page``, ``image_too_large``
(decompression bombs). Errors: ``corrupt_file``, ``timeout``, ``renderer_crashed``...
Rendering runs in an isolated child process (`pipelines.pdf.isolation`) with a per-page and
per-document time limit and an address-space cap, so no document can stop or hang a run.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from pipelines.core.fetch import local_copy
from pipelines.core.inputs import InputFile
from pipelines.core.outcome import Outcome
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample, stable_key
from pipelines.core.shards import remember_image_phash
from pipelines.core.stage import InFlightStageFn, Record, StageFn
from pipelines.core.worker_cache import freeze_loaded_objects
from pipelines.pdf.config import PdfConfig
from pipelines.pdf.isolation import IsolatedRenderer, RendererFailure, RendererPool, RenderJob
from pipelines.pdf.settings import PdfRenderSettings
from pipelines.post_stages import post_stages

log = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = (".pdf", ".epub", ".xps", ".oxps", ".fb2", ".cbz", ".mobi")
STAGE = "RenderPdfPages"


def page_locator(file_sha: str, page: int) -> str:
    return f"sha256:{file_sha}#page={page}"


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class NearDuplicateIndex:
    """Perceptual hashes seen so far; finds a page within `max_bits` of an earlier one.

    The 256-bit hash is split into 16 bands of 16 bits: two hashes that differ in at most
    15 bits share at least one band exactly, so only pages sharing a band are compared.
    """

    BANDS = 16

    def __init__(self, max_bits: int = 10, min_word_overlap: float = 0.8):
        if max_bits >= self.BANDS:
            raise ValueError(f"max_bits must be below {self.BANDS}")
        self.max_bits, self.min_word_overlap = max_bits, min_word_overlap
        self.entries: list[tuple[int, frozenset, str]] = []
        self.bands: dict[tuple[int, str], list[int]] = {}

    def find_or_add(self, phash: str, words: frozenset, locator: str) -> tuple[str, int] | None:
        """The (locator, distance) of an earlier near-duplicate, else remember this page."""
        value = int(phash, 16)
        width = len(phash) // self.BANDS
        bands = [(i, phash[i * width:(i + 1) * width]) for i in range(self.BANDS)]
        seen: set[int] = set()
        for band in bands:
            for index in self.bands.get(band, ()):
                if index in seen:
                    continue
                seen.add(index)
                other, other_words, other_locator = self.entries[index]
                distance = bin(value ^ other).count("1")
                if distance <= self.max_bits and self._same_words(words, other_words):
                    return other_locator, distance
        for band in bands:
            self.bands.setdefault(band, []).append(len(self.entries))
        self.entries.append((value, words, locator))
        return None

    def _same_words(self, a: frozenset, b: frozenset) -> bool:
        if len(a) < 20 or len(b) < 20:  # too little text to tell pages apart by it
            return True
        return len(a & b) / len(a | b) >= self.min_word_overlap


@dataclass(frozen=True)
class _Document:
    """A document (or the pages of it, on a retry) ready for the renderer."""

    path: str  # the input's URL, as recorded
    sha: str
    pages: list[int] | None  # None: every page (and the seed expands into them)
    local: str  # a local path the renderer child can open


@dataclass
class _InFlight:
    """A seed whose records are not yet passed on: known already (`records`), or being
    rendered (`job`, waiting for or on one of the worker's renderers)."""

    seed: Record
    records: list[Record] | None = None
    document: _Document | None = None
    job: RenderJob | None = None
    files: contextlib.ExitStack | None = None  # the temporary local copy, if any
    passing: bool = False  # an Outcome passed on untouched (a task's end marker...)


class RenderPdfPagesFn(InFlightStageFn):
    """Seed (a document, or one page of it on retry) → page samples + figure/table samples.

    With ``renderers`` > 1 a worker keeps up to `DOCUMENTS_PER_RENDERER` documents per
    renderer child in flight (`pipelines.pdf.isolation.RendererPool`: each child takes the
    next waiting document as soon as it is through one, so a long document at the head
    does not leave the others idle) and still passes records on in seed order (so
    near-duplicate and duplicate-file decisions, shards and manifests are those of one
    renderer); a task's documents are finished before its end marker passes. On one
    machine, one Beam worker with N renderers does the work of N Beam workers with one
    each, without N-1 Beam worker processes (their start-up, memory and the transport
    between them).
    """

    stage = STAGE
    # Documents in flight per renderer (waiting, rendering, or rendered and not yet passed
    # on), and pages buffered per document: enough that a renderer finds work while the
    # stage waits for the document at the head; bounded, so memory stays flat.
    DOCUMENTS_PER_RENDERER = 4
    BUFFERED_PAGES = 16

    def __init__(self, settings: dict[str, Any] | None = None, page_timeout: float = 60.0,
                 doc_timeout: float = 900.0, max_memory_mb: int = 4096,
                 near_duplicate_bits: int = 10, drop_blank: bool = True, renderers: int = 1,
                 overlap_tasks: bool = False):
        self.settings = PdfRenderSettings(**(settings or {})).to_dict()
        self.page_timeout, self.doc_timeout = page_timeout, doc_timeout
        self.max_memory_mb = max_memory_mb
        self.near_duplicate_bits = near_duplicate_bits
        self.drop_blank = drop_blank
        self.renderers = max(1, renderers)
        self.overlap_tasks = overlap_tasks

    def open(self) -> None:
        freeze_loaded_objects()
        # children start on first use: a worker that never gets 2 documents starts 1
        self.pool = [IsolatedRenderer(self.settings, self.page_timeout, self.doc_timeout,
                                      self.max_memory_mb) for _ in range(self.renderers)]
        self.renderer = self.pool[0]
        self.jobs = RendererPool(self.pool, buffer=self.BUFFERED_PAGES)
        self.in_flight: collections.deque[_InFlight] = collections.deque()
        self.start_bundle()

    def close(self) -> None:
        for entry in getattr(self, "in_flight", ()):
            if entry.job is not None:
                entry.job.close()
            if entry.files is not None:
                entry.files.close()
        if getattr(self, "jobs", None) is not None:
            self.jobs.close()
        for renderer in getattr(self, "pool", ()):
            renderer.stop()

    def start_bundle(self) -> None:
        # Dedup state lives per task: a task's records all arrive in one bundle.
        self.files_seen: dict[str, dict[str, str]] = {}
        self.pages_seen: dict[str, NearDuplicateIndex] = {}

    def process_sample(self, seed: Sample) -> Iterable[Record]:
        with contextlib.ExitStack() as files:
            work = self._plan(seed, files)
            if isinstance(work, list):
                yield from work
                return
            messages = self.renderer.render(work.local, work.pages)
            try:
                yield from self._render(seed, work, messages)
            finally:
                # on an exception the stream is abandoned mid-document: closing it now
                # restarts the child (see IsolatedRenderer.render) before the next request,
                # whatever still holds the traceback
                messages.close()

    def _plan(self, seed: Sample, files: contextlib.ExitStack) -> list[Record] | _Document:
        """The seed's outcome when it needs no rendering, else the document to render."""
        ref = seed.lineage["input_ref"]
        path = ref["path"]
        if ref.get("duplicate_of"):
            return [Outcome.dropped(seed, self.stage, "duplicate_file",
                                    f"{path} is byte-identical to {ref['duplicate_of']}")]
        # Read (and hash) the input here, in the worker, from any fsspec URL; the renderer
        # child process gets a local path (a temporary copy of a remote file).
        local, sha = files.enter_context(
            local_copy(path, suffix=os.path.splitext(path.rsplit("/", 1)[-1])[1]))
        if "page" in ref:  # a retry of one page
            return _Document(path, sha, [int(ref["page"])], local)
        files_seen = self.files_seen.setdefault(seed.lineage.get("task", ""), {})
        if sha in files_seen:
            return [Outcome.dropped(seed, self.stage, "duplicate_file",
                                    f"{path} is byte-identical to {files_seen[sha]}")]
        files_seen[sha] = path
        return _Document(path, sha, None, local)

    # -- documents in flight (renderers > 1) -------------------------------------------
    def process(self, record: Record) -> Iterator[Record]:
        if self.renderers == 1:
            yield from super().process(record)
            return
        if not self.overlap_tasks:
            yield from self._finish_task_before(record)
        if isinstance(record, Outcome):  # passed on as it is, in its place
            if not self.overlap_tasks:
                yield record
                return
            self.in_flight.append(_InFlight(record, records=[record], passing=True))
        else:
            yield from self._submit(record)
        # pass on what is ready without waiting: the head's records are made while the
        # renderers work on the documents behind it
        while self.in_flight and (self.in_flight[0].job is None or self.in_flight[0].job.done):
            yield from self._finish_one()

    def _submit(self, record: Sample) -> Iterator[Record]:
        """Put the seed's document in flight (after making room), or its known records."""
        files = contextlib.ExitStack()
        try:
            work = self._plan(record, files)
        except Exception as exc:  # as the base class does for one element
            work = [self._error(record, exc)]
        if isinstance(work, list):
            files.close()
            self.in_flight.append(_InFlight(record, records=work))
        else:
            while (sum(e.job is not None for e in self.in_flight)
                   >= self.DOCUMENTS_PER_RENDERER * len(self.pool)):
                yield from self._finish_one()
            self.in_flight.append(_InFlight(record, document=work, files=files,
                                            job=self.jobs.submit(work.local, work.pages)))

    def seed_of(self, entry: _InFlight) -> Sample:
        return entry.seed

    def _finish_one(self) -> Iterator[Record]:
        entry = self.in_flight.popleft()
        if entry.job is None:
            for out in entry.records or ():
                if not entry.passing:  # an earlier stage's outcome is not this stage's
                    self._count(out)
                yield out
            return
        try:
            for out in self._render(entry.seed, entry.document, entry.job.messages()):
                self._count(out)
                yield out
        except Exception as exc:  # as the base class does for one element
            yield self._error(entry.seed, exc)
        finally:
            entry.job.close()
            entry.files.close()

    def _error(self, seed: Sample, exc: Exception) -> Outcome:
        log.warning("%s failed on %s: %s", self.stage, seed.key, exc)
        out = Outcome.error(seed, self.stage, exc)
        self._count(out)
        return out

    # -- one document ------------------------------------------------------------------
    def _render(self, seed: Sample, doc: _Document, messages: Iterator[tuple]
                ) -> Iterator[Record]:
        """The records of one document from the renderer's `messages`."""
        path, sha, pages, expand = doc.path, doc.sha, doc.pages, doc.pages is None
        pending: dict[int, Sample] = {}  # pages announced but not yet answered
        expanded = False
        try:
            for message in messages:
                kind = message[0]
                if kind == "rejected":
                    rejected: Outcome = message[1]
                    if expanded or not expand and pending:  # pages are owed: all fail
                        raise RendererFailure(rejected.reason, rejected.message)
                    yield rejected.about(seed, self.stage)
                    return
                if kind == "doc":
                    count = message[1]["page_count"]
                    if expand:
                        yield Outcome.expanded(seed, self.stage, parts=count,
                                               message=f"{count} pages")
                        expanded = True
                        pending = {i: self._page_seed(seed, path, sha, i) for i in range(count)}
                    else:
                        pending = {i: seed for i in pages}
                elif kind == "page":
                    _, index, result = message
                    page_seed = pending.pop(index, None)
                    if page_seed is None:
                        continue
                    yield from self._page_records(page_seed, sha, result, seed)
        except RendererFailure as failure:  # the one place it becomes Outcomes
            if not pending and not expanded:
                yield failure.outcome.about(seed, self.stage)
                return
            for page_seed in pending.values():
                yield failure.outcome.about(page_seed, self.stage)

    def _page_seed(self, seed: Sample, path: str, sha: str, index: int) -> Sample:
        """The payload-less sample of page `index`: its own item, retryable alone."""
        locator = page_locator(sha, index)
        item_id = stable_key("pdf", locator)
        parent = seed.lineage["input_ref"]
        ref = {"path": path, "page": index, "input_id": parent["input_id"], "item_id": item_id,
               "parent_item": seed.item_id, "locator": locator}
        lineage = {"input_id": parent["input_id"], "task": seed.lineage.get("task", ""),
                   "item_id": item_id, "parent_item": seed.item_id, "input_ref": ref}
        return Sample.create("pdf", locator, lineage=lineage)

    def _page_records(self, page_seed: Sample, sha: str, result: dict | Outcome,
                      seed: Sample) -> Iterator[Record]:
        if isinstance(result, Outcome):  # the renderer's verdict on this page
            yield result.about(page_seed, self.stage)
            return
        meta = {"file_sha256": sha, "path": page_seed.lineage["input_ref"]["path"],
                **result["meta"], "phash": result["phash"]}
        page = page_seed.replace(image=result["image"], text=result["text"],
                                 markdown=result["markdown"]).with_meta("pdf", meta)
        if self.drop_blank and result["blank"]:
            yield Outcome.dropped(page, self.stage, "blank_page", "page renders to one colour")
            return
        if self.near_duplicate_bits >= 0:
            index = self.pages_seen.setdefault(page_seed.lineage.get("task", ""),
                                               NearDuplicateIndex(self.near_duplicate_bits))
            words = frozenset(w["text"].lower() for w in meta["words"])
            match = index.find_or_add(result["phash"], words, page.locator)
            if match:
                yield Outcome.dropped(page, self.stage, "near_duplicate_page",
                                      f"perceptual hash {match[1]} bits from {match[0]}")
                return
        if result.get("image_phash"):  # the sink then need not decode the PNG for it
            remember_image_phash(page.image, result["image_phash"])
        yield page
        counters: dict[str, int] = {}
        for part in result["derived"]:
            # crops come with theirs too (caption pairs and interleaved documents reuse a
            # crop's bytes, whose entry serves them as well)
            if part.get("image_phash"):
                remember_image_phash(part["image"], part["image_phash"])
            kind = part["kind"]
            number = counters[kind] = counters.get(kind, -1) + 1
            part_meta = {"file_sha256": sha, "path": meta["path"], "page_key": page.key,
                         **part["meta"]}
            yield page.derive(f"{page.locator}&{kind}={number}", image=part["image"],
                              extra_images=tuple(part.get("extra_images", ())),
                              text=part["text"], markdown=part["markdown"],
                              meta={"pdf": part_meta})


# -- pipeline wiring -----------------------------------------------------------------------
def build_stages(config: PdfConfig | Mapping[str, Any]) -> list[StageFn]:
    """RenderPdfPages, then the shared post stages (OCR, charts, labels) as configured."""
    config = PdfConfig.coerce(config)
    render = RenderPdfPagesFn(
        settings=config.render.to_dict(), page_timeout=config.page_timeout,
        doc_timeout=config.doc_timeout, max_memory_mb=config.max_memory_mb,
        near_duplicate_bits=config.near_duplicate_bits, drop_blank=config.drop_blank,
        renderers=config.renderers, overlap_tasks=config.overlap_tasks is True)
    return [render, *post_stages(config)]


def pdf_refs(paths: Iterable[str | InputFile]) -> list[dict[str, Any]]:
    """`iter_pdf_refs` held as a list (for small callers and tests)."""
    return list(iter_pdf_refs(paths))


def iter_pdf_refs(paths: Iterable[str | InputFile]) -> Iterator[dict[str, Any]]:
    """One input ref per file (a local path or any fsspec URL), streamed; nothing is read.

    Files are hashed by the render stage, in the workers. Byte-identical files have equal
    sizes, so every file whose size the listing gives gets ``task_group=size:N``: the
    planner keeps a group in one task (`pipelines.core.planning.SpilledRefs` spills refs
    by group and sorts each bucket, so nothing here needs to see all sizes first), where
    the render stage drops repeats as ``duplicate_file``; that keeps the drop run-wide
    without reading on the driver. A size no other file has is a group of one, which the
    planner places exactly as an ungrouped ref.
    """
    for path in paths:
        item = path if isinstance(path, InputFile) else InputFile(path, _local_size(path))
        fields: dict[str, Any] = {"path": item.url}
        if item.size is not None:
            fields["size"] = item.size
            fields["task_group"] = f"size:{item.size}"
        locator = item.url if "://" in item.url else f"file://{item.url}"
        yield input_ref("pdf", locator, **fields)


def _local_size(path: str) -> int | None:
    if "://" in path:
        return None
    try:
        return os.path.getsize(path)  # metadata only; the content is read in the workers
    except OSError:
        return None
