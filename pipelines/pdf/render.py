"""Everything PyMuPDF does for the PDF pipeline: open a document, render a page, extract
its text layer (words and lines with boxes), its markdown, vector drawings, figures and
tables.

This module runs inside the isolated renderer process (`pipelines.pdf.isolation`), so it
returns plain picklable dicts (a rendered page) or `Outcome`s (a page or document that
cannot make a sample, not yet tied to an item) and never builds `Sample`s itself.

Coordinates: every box and drawing point is normalised to 0..1 of the image it belongs to
(the rendered page for pages, the crop for figures/tables), with the page rotation applied,
so ``x * width`` gives an image pixel. ``meta["pdf"]["drawings"]`` is a list of vector
paths: ``{"type": "f"|"s"|"fs" (fill/stroke), "box", "fill": [r,g,b]|None,
"stroke": [r,g,b]|None, "width": stroke width in image px, "items": [["l", x0, y0, x1, y1],
["re", x0, y0, x1, y1], ["c", x0, y0, ..., x3, y3], ["qu", x0, y0, ..., x3, y3]],
"closed": the path is closed}``. ``meta["pdf"]["spans"]`` holds the text runs a chart reader
needs (on pages with a vector region large enough for a chart): ``{"text", "box",
"size" (font size, pt), "rotation" (degrees in the image, 0 = upright), "glyphs":
[[char, x0, x1], ...] for short horizontal runs}``, so the chart stage reads
charts from meta alone and never opens the source file again.

Cost rules (issue 17): one text page and one ``dict``/``rawdict`` extraction per page feed
words, lines, text, markdown, captions and chart spans; drawings are read once and
clustered with a grid (`pipelines.core.clusters`), at most `max_cluster_paths` of them;
tables are searched only where ruling lines make one possible; pymupdf's layout model runs
only when `layout_model` is on.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import itertools
import logging
import math
import re
import struct
import time
from collections.abc import Iterator
from typing import Any

import pymupdf

from pipelines.charts.pdf_spans import text_runs
from pipelines.core.clusters import cluster_boxes
from pipelines.core.outcome import Outcome
from pipelines.core.signatures import perceptual_hash
from pipelines.pdf import interleave
from pipelines.pdf.markdown import HeadingLevels, page_markdown, table_rect
from pipelines.pdf.settings import PdfRenderSettings
from pipelines.pdf.table_chars import fast_table_chars

log = logging.getLogger(__name__)

# Text boxes without MuPDF's quad corrections: every output so far, the golden files
# included, was made this way because `import pymupdf` loads pymupdf4llm when installed,
# which switches them off at import. Set here, so the boxes do not hang on that side
# effect (the renderer child skips pymupdf4llm).
pymupdf.TOOLS.unset_quad_corrections(True)

CAPTION_START = re.compile(r"^\s*(fig(ure)?|table|tab|chart|plate|exhibit|graph|diagram)\b\.?",
                           re.IGNORECASE)
# Characters that mark a text layer as untrustworthy (broken font encodings).
GARBAGE_CHARS = re.compile("[\ufffd\ue000-\uf8ff\x00-\x08]")


class DocumentRejected(Exception):
    """A document that cannot yield pages: `kind` is "dropped" or "error", `reason` a tag.

    Internal to this module: `iter_document` turns it into its `Outcome`."""

    def __init__(self, kind: str, reason: str, message: str):
        super().__init__(message)
        self.outcome = Outcome.of(kind, reason, message)


def quiet_mupdf() -> None:
    """Keep MuPDF's warnings out of stderr; they are collected per document instead."""
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    pymupdf.no_recommend_layout()  # find_tables' advice to install the layout package


def open_document(path: str) -> tuple[pymupdf.Document, str, list[int]]:
    """Open any format PyMuPDF reads as a PDF, with its original format name and, for a
    reflowable book (EPUB, FB2, MOBI), the page count of each chapter ([] otherwise); or
    raise `DocumentRejected` with a clear reason.

    E-books (EPUB, FB2, MOBI) and XPS/CBZ are converted to PDF once here: their pages are
    laid out on the fly, and re-laying a reflowable document out invalidates its pages,
    so every later step works on one fixed PDF instead (the chapters are read before:
    the converted PDF no longer knows them).
    """
    try:
        doc = pymupdf.open(path)
    except pymupdf.FileDataError as exc:
        raise DocumentRejected("error", "corrupt_file", f"cannot open {path}: {exc}") from exc
    except pymupdf.FileNotFoundError as exc:
        raise DocumentRejected("error", "file_not_found", str(exc)) from exc
    except Exception as exc:  # unsupported formats raise various types
        raise DocumentRejected("error", "unreadable_file",
                               f"cannot open {path}: {type(exc).__name__}: {exc}") from exc
    if doc.needs_pass:
        doc.close()
        raise DocumentRejected("dropped", "encrypted",
                               f"{path} is password-protected; no password was given")
    try:
        count = doc.page_count
    except Exception as exc:
        raise DocumentRejected("error", "corrupt_file", f"page tree unreadable: {exc}") from exc
    if count == 0:
        doc.close()
        raise DocumentRejected("dropped", "no_pages", f"{path} has zero pages")
    source_format = doc.metadata.get("format", "") or ""
    chapter_pages: list[int] = []
    if not doc.is_pdf:
        try:
            if doc.is_reflowable:
                chapter_pages = [doc.chapter_page_count(c) for c in range(doc.chapter_count)]
        except Exception as exc:  # chapters are a bonus: the pages are still rendered
            log.debug("chapters of %s unreadable: %s", path, exc)
        try:
            converted = pymupdf.open("pdf", doc.convert_to_pdf())
        except Exception as exc:
            raise DocumentRejected("error", "conversion_failed",
                                   f"cannot lay out {path} ({source_format}): {exc}") from exc
        finally:
            doc.close()
        doc = converted
    if sum(chapter_pages) != doc.page_count:  # the layout did not keep the chapters' pages
        chapter_pages = []
    return doc, source_format, chapter_pages


def page_scale(width: float, height: float, settings: PdfRenderSettings) -> float:
    """Scale (px per point) giving the target long side, lowered to respect the pixel cap."""
    scale = settings.target / max(width, height)
    if width * height * scale * scale > settings.max_pixels:
        scale = (settings.max_pixels / (width * height)) ** 0.5
    return scale


def render_page(doc: pymupdf.Document, index: int, settings: PdfRenderSettings,
                source_format: str = "", headers: HeadingLevels | None = None,
                images_checked: ImageChecks | None = None) -> dict[str, Any] | Outcome:
    """Render page `index` and extract everything: a picklable result dict (image, text,
    markdown, meta, phash, blank, derived), or a "dropped" `Outcome` for a page that cannot
    make a sample. `headers` carries the heading sizes of the document's pages so far,
    `images_checked` the image-size checks of its shared resources (`_oversized_image`).
    """
    if headers is None and settings.markdown:
        headers = HeadingLevels()
    page = doc[index]
    rect = page.rect
    if rect.is_empty or rect.width < 1 or rect.height < 1:
        return _dropped("empty_page_box", f"page box {tuple(rect)} has no area")
    bomb = _oversized_image(page, settings.max_image_pixels, images_checked)
    if bomb:
        return _dropped("image_too_large", bomb)
    scale = page_scale(rect.width, rect.height, settings)
    width, height = round(rect.width * scale), round(rect.height * scale)
    if min(width, height) < settings.min_side:
        return _dropped("degenerate_page", f"page {rect.width:.0f}x{rect.height:.0f} pt renders "
                        f"to {width}x{height} px (aspect ratio too extreme)")
    pix = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False)
    png = pix.tobytes("png")
    rotation = page.rotation if doc.is_pdf else 0  # only PDF pages carry a rotation
    to_image = page.rotation_matrix if rotation else pymupdf.Identity  # unrotated -> image
    norm = _Normaliser(to_image, rect.width, rect.height)

    # One drawings read (tables, figures, chart vectors) and one text page with one
    # dict/rawdict extraction (words, lines, text, markdown, captions, chart spans).
    raw_drawings = page.get_cdrawings()  # plain tuples: get_drawings makes ~10 objects a path
    textpage = page.get_textpage(flags=pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES)
    meta_counts: dict[str, Any] = {}
    regions = _vector_regions(page, raw_drawings, settings, meta_counts)
    # Glyph-level text (rawdict) is for chart labels: only where a vector region is large
    # enough to hold a chart (the chart reader's own minimum, 40 pt a side).
    charts_need_glyphs = any(r[2] - r[0] >= 40 and r[3] - r[1] >= 40 for r in regions)
    blocks = (textpage.extractRAWDICT() if charts_need_glyphs else textpage.extractDICT())["blocks"]
    if charts_need_glyphs:  # rawdict spans carry chars, not text: give them their text
        for block in blocks:
            for line in block.get("lines", ()):
                for span in line["spans"]:
                    span["text"] = "".join([c["c"] for c in span["chars"]])
    raw_words = textpage.extractWORDS()
    words = [{"box": box, "text": w[4]}
             for w, box in zip(raw_words, norm.boxes([w[:4] for w in raw_words]))]
    text_lines = [line for block in blocks if block.get("type") == 0 for line in block["lines"]]
    lines = [{"box": box, "text": "".join(s["text"] for s in line["spans"])}
             for line, box in zip(text_lines, norm.boxes([line["bbox"] for line in text_lines]))]
    lines = [line for line in lines if line["text"].strip()]
    text = textpage.extractText()
    text_layer = assess_text_layer(text)
    drawings = norm.drawings(raw_drawings[:settings.max_drawings], scale)
    spans = chart_spans(blocks, norm) if charts_need_glyphs else []

    image = _pil_image(pix)
    thumb = image.convert("L")
    # the manifest's 64-bit hash of the PNG's pixels, from the full-size grey image before
    # it is shrunk in place: the writer would otherwise decode the PNG to compute it
    image_phash = _manifest_phash(thumb)
    thumb.thumbnail((256, 256))
    meta = {
        "page": index, "page_count": doc.page_count, "kind": "page",
        "width": width, "height": height, "dpi": round(72 * scale, 2),
        "page_size_pt": [round(rect.width, 2), round(rect.height, 2)],
        "rotation": rotation, "lines": lines, "words": words,
        "needs_ocr": text_layer != "ok", "text_layer": text_layer,
        "drawings": drawings, "drawings_total": len(raw_drawings),
        "drawings_truncated": len(raw_drawings) > settings.max_drawings,
        "drawings_units": "normalised", "spans": spans,
        "clustered_paths": 0, "cluster_cap": settings.max_cluster_paths,
        "clusters_truncated": False, **meta_counts,
        "format": source_format or doc.metadata.get("format", ""),
        "pymupdf_version": pymupdf.VersionBind,
    }
    derived = []
    tables = (_find_tables(page, raw_drawings, norm, settings.layout_model)
              if settings.tables else [])
    if settings.markdown:
        if headers is not None:
            headers.add(blocks)
        markdown = _page_markdown(page, blocks, tables, headers)
    else:
        markdown = None
    figures, dropped = [], []
    if settings.figures:
        figures, dropped = _figures(page, raw_drawings, regions, norm, tables, blocks, image,
                                    meta, settings, raw_words)
    derived += figures
    if settings.captions:
        derived += _caption_pairs(figures)
    for table in tables:
        derived.append(_crop_sample(image, "table", table["box"], meta, blocks, norm,
                                    text=table["csv"], markdown=table["markdown"],
                                    extra={"rows": table["rows"], "cols": table["cols"]}))
    result = {
        "status": "ok", "image": png, "text": text or None, "markdown": markdown, "meta": meta,
        "phash": _phash(thumb), "image_phash": image_phash,
        # the pixels are looked at only where there is no text (most pages have some)
        "blank": not text.strip() and _is_blank(thumb),
        "derived": derived,
    }
    # `iter_document` makes the page's or chapter's document of it; without figures there
    # is no image to place and nothing would come of it (`InterleavedDocument.part`)
    if settings.interleaved and settings.figures:
        text_blocks = [(norm.box(b["bbox"]), interleave.block_text(b)) for b in blocks
                       if b.get("type") == 0]
        result["document"] = interleave.page_document(
            text_blocks, [interleave.Figure(f["image"], index, f["meta"]["box"],
                                            f["meta"]["figure_source"]) for f in figures],
            index, dropped)
    return result


def _caption_pairs(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A caption pair (kind "caption") per figure with a usable caption; every figure's
    meta says why it has none (``caption_problem``)."""
    pairs = []
    for number, figure in enumerate(figures):
        meta = figure["meta"]
        text, problem = interleave.caption_pair(meta["caption"])
        meta["caption_problem"] = problem
        if text is None:
            continue
        keep = ("page", "page_count", "dpi", "format", "pymupdf_version", "box", "width",
                "height", "caption", "figure_source")
        pairs.append({"kind": "caption", "image": figure["image"], "text": text,
                      "markdown": None,
                      "meta": {**{k: meta[k] for k in keep}, "kind": "caption",
                               "figure": number}})
    return pairs


def assess_text_layer(text: str) -> str:
    """"ok", "none" (too little text to trust) or "garbled" (broken encodings)."""
    chars = len(re.sub(r"\s", "", text))
    if chars < 20:
        return "none"
    if len(GARBAGE_CHARS.findall(text)) / chars > 0.25:
        return "garbled"
    return "ok"


def iter_document(path: str, pages: list[int] | None,
                  settings: PdfRenderSettings) -> Iterator[tuple]:
    """The renderer's message stream for one request (see `pipelines.pdf.isolation`).

    ("doc", info) first, then ("page", index, result dict | Outcome) per page, then
    ("end",); or a single ("rejected", Outcome) when the document yields no pages.

    Interleaved documents (`pipelines.pdf.interleave`) join a page's derived parts: the
    page's own for PDFs and fixed-layout formats, the chapter's (at its last page) for
    reflowable books, which only a whole-document request makes (a retry of single pages
    cannot see a whole chapter).
    """
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    try:
        doc, source_format, chapter_pages = open_document(path)
    except DocumentRejected as rejected:
        yield ("rejected", rejected.outcome)
        return
    with doc:
        count = doc.page_count
        yield ("doc", {"page_count": count, "format": source_format})
        headers = HeadingLevels() if settings.markdown else None
        images_checked = ImageChecks()
        _drop_structure_tree(doc)
        chapters = (interleave.ChapterDocuments(chapter_pages, settings.max_chapter_pages,
                                                settings.max_document_images)
                    if chapter_pages and pages is None else None)
        for index in (range(count) if pages is None else pages):
            if not 0 <= index < count:
                yield ("page", index, _error("PageOutOfRange", f"page {index} of {count}"))
                continue
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                with _collector_paused():
                    result = render_page(doc, index, settings, source_format, headers,
                                         images_checked)
            except MemoryError as exc:  # the renderer's address-space cap
                result = _error("out_of_memory", f"page {index}: {exc}")
            except Exception as exc:  # a broken page must not lose the others
                # MuPDF's own errors (FzErrorFormat, FzErrorSyntax...) mean a damaged page
                kind = "corrupt_page" if type(exc).__name__.startswith("FzError") \
                    else type(exc).__name__
                result = _error(kind, f"{type(exc).__name__}: {exc}")
            if not isinstance(result, Outcome):  # the page's cost, for tail-latency figures
                result["meta"]["render_s"] = round(time.perf_counter() - started, 4)
                result["meta"]["render_cpu_s"] = round(time.process_time() - cpu_started, 4)
            warnings = pymupdf.TOOLS.mupdf_warnings(reset=True)
            if warnings and not isinstance(result, Outcome):
                result["meta"]["mupdf_warnings"] = warnings[:1000]
            if not isinstance(result, Outcome):
                try:
                    _add_document(result, index, settings, chapters, bool(chapter_pages))
                except Exception as exc:  # the page and its figures stand without it
                    result.pop("document", None)
                    result["meta"]["interleaved_error"] = f"{type(exc).__name__}: {exc}"
            yield ("page", index, result)
    yield ("end",)


def _add_document(result: dict[str, Any], index: int, settings: PdfRenderSettings,
                  chapters: interleave.ChapterDocuments | None, reflowable: bool) -> None:
    """Append the interleaved document this page completes (if any) to its derived parts."""
    document = result.pop("document", None)  # never sent to the parent as such
    if document is None:
        return
    meta = {k: result["meta"][k] for k in ("page", "page_count", "dpi", "format",
                                            "pymupdf_version")}
    if chapters is not None:
        done = chapters.add(index, document)
        if done is None:
            return
        document, chapter, part = done
        meta.update(chapter=chapter, chapter_part=part)
    elif reflowable:
        return  # a retried page of a book: its chapter is not here to join
    elif result["meta"]["text_layer"] != "ok":
        # a scan or a broken text layer: no trustworthy text to put the figures in
        if document.figures:
            result["meta"]["interleaved_skipped"] = f"text_layer_{result['meta']['text_layer']}"
        return
    if not document.has_text():
        return
    part = document.part(settings.max_document_images, meta)
    if part is not None:
        result["derived"].append(part)


# -- helpers -------------------------------------------------------------------------------
@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic collector off while one page is made, back on after it.

    A page builds thousands of containers (words, lines, drawings) that live until the
    page is sent: the collections their allocation set off walked them again and again
    (0.15 CPU-s per pass over the corpus, defaults; 0.04 paused). Nothing a page makes
    is left to the collector to free meanwhile, and what cycles it leaves are collected
    at the first collection after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _drop_structure_tree(doc: pymupdf.Document) -> None:
    """Forget the tagged-PDF structure tree of the in-memory document (the file is not
    touched), as pymupdf4llm's heading scan did before every page of the old renderer:
    MuPDF's character extraction for tables follows it otherwise, splitting punctuation
    into lines of its own, and it costs time on large tagged documents."""
    if not doc.is_pdf:
        return
    try:
        root = pymupdf.mupdf.pdf_dict_get(
            pymupdf.mupdf.pdf_trailer(pymupdf._as_pdf_document(doc)), pymupdf.PDF_NAME("Root"))
        root.pdf_dict_del(pymupdf.PDF_NAME("StructTreeRoot"))
    except Exception as exc:  # a damaged trailer: extraction works without this
        log.debug("structure tree not removed: %s", exc)


def _dropped(reason: str, message: str) -> Outcome:
    return Outcome.of("dropped", reason, message)


def _error(error_type: str, message: str) -> Outcome:
    return Outcome.of("error", error_type, message)


class ImageChecks:
    """What `_oversized_image` learnt of one document (one per document and limit), for
    its later pages: the answer per shared resource dict (the message, "" for none, and
    the MuPDF warnings its scan gave) and what each XObject is (`_xobject_kind`)."""

    def __init__(self) -> None:
        self.resources: dict[int, tuple[str, list[str]]] = {}
        self.xobjects: dict[int, tuple[int, int] | None] = {}


def _oversized_image(page: pymupdf.Page, limit: int, checked: ImageChecks | None = None) -> str:
    """A message naming an embedded image over `limit` pixels (a decompression bomb), or "".

    The images `Page.get_images` lists, walked as it walks them (`_resource_images`) but
    reading only each image's size: its per-image Python (colour spaces, filters, names)
    cost ~1.7 ms a page on the corpus. `checked` (one dict per document and `limit`)
    keeps the answer per shared resource dict: pages often share one, and loading its
    objects is the rest of the cost. What each XObject is (an image and its size, or not)
    is kept per object too: form XObjects that name each other make the walk visit an
    object once per form (a corpus page of 270 forms: 36,000 visits, 0.1 s; 0.04 s
    kept). The scan's MuPDF warnings are given again on a page that reuses an answer, so
    every page's ``mupdf_warnings`` stay what `get_images` made them.

    The walk uses pymupdf's low-level bindings; where they differ (another pymupdf
    version), the check falls back to `get_images` rather than failing every page."""
    if not page.parent.is_pdf:
        return ""
    try:
        return _oversized_image_scan(page, limit, checked)
    except (AttributeError, TypeError) as exc:  # not the bindings this was written for
        log.debug("image-size scan fell back to get_images: %s", exc)
    for image in page.get_images(full=True):
        width, height = image[2], image[3]
        if width * height > limit:
            return _bomb_message(image[0], width, height, limit)
    return ""


def _bomb_message(xref: int, width: int, height: int, limit: int) -> str:
    return (f"embedded image xref {xref} is {width}x{height} px "
            f"(> {limit:,} px cap; likely a decompression bomb)")


def _oversized_image_scan(page: pymupdf.Page, limit: int, checked: ImageChecks | None) -> str:
    mupdf = pymupdf.mupdf
    pdf = pymupdf._as_pdf_document(page.parent)
    resources = mupdf.pdf_dict_get_inheritable(mupdf.pdf_lookup_page_obj(pdf, page.number),
                                               pymupdf.PDF_NAME("Resources"))
    if not resources.m_internal:
        return ""
    shared = mupdf.pdf_to_num(resources) if mupdf.pdf_is_indirect(resources) else 0
    if checked is not None and shared in checked.resources:
        found, warnings = checked.resources[shared]
        for warning in warnings:
            mupdf.fz_warn(warning)
        return found
    found, warnings = "", []
    kinds = checked.xobjects if checked is not None else {}
    for xref, width, height in _resource_images(resources, [], warnings, kinds):
        if width * height > limit:
            found = _bomb_message(xref, width, height, limit)
            break
    if checked is not None and shared:
        checked.resources[shared] = (found, warnings)
    return found


CIRCULAR = "Circular dependencies! Consider page cleaning."  # pymupdf's words


def _resource_images(resources, tracer: list[int], warnings: list[str],
                     kinds: dict[int, tuple[int, int] | None] | None = None
                     ) -> Iterator[tuple[int, int, int]]:
    """(xref, width, height) of the images of a resource dict and of the form XObjects in
    it, in pymupdf's `JM_scan_resources` order, with its guards (marked objects for
    cycles; a form seen before ends the scan of its dict) and its warnings (each given
    to MuPDF and added to `warnings`). `kinds` keeps what each XObject is, by object
    number (`_xobject_kind`), for the visits after the first."""
    mupdf = pymupdf.mupdf

    def warn(text: str) -> None:
        mupdf.fz_warn(text)
        warnings.append(text)

    if kinds is None:
        kinds = {}
    if mupdf.pdf_mark_obj(resources):
        warn(CIRCULAR)
        return
    try:
        xobjects = mupdf.pdf_dict_get(resources, mupdf.PDF_ENUM_NAME_XObject)
        count = mupdf.pdf_dict_len(xobjects)
        for i in range(count):
            obj = mupdf.pdf_dict_get_val(xobjects, i)
            num = mupdf.pdf_to_num(obj)
            kind = kinds.get(num, _UNKNOWN) if num else _UNKNOWN
            if kind is _UNKNOWN:
                kind, lasting = _xobject_kind(obj)
                if num and lasting:
                    kinds[num] = kind
            if kind is _NOT_A_DICT:
                name = mupdf.pdf_to_name(mupdf.pdf_dict_get_key(xobjects, i))
                warn(f"'{name}' is no image dict ({num} 0 R)")
                continue
            if kind is not None:
                yield num, kind[0], kind[1]
        for i in range(count):
            obj = mupdf.pdf_dict_get_val(xobjects, i)
            inner = mupdf.pdf_dict_get(obj, mupdf.PDF_ENUM_NAME_Resources)
            if inner.m_internal:
                xref = mupdf.pdf_to_num(obj) if mupdf.pdf_is_stream(obj) else 0
                if xref in tracer:
                    warn(CIRCULAR)
                    return
                tracer.append(xref)
                yield from _resource_images(inner, tracer, warnings, kinds)
    finally:
        mupdf.pdf_unmark_obj(resources)


_UNKNOWN, _NOT_A_DICT = object(), object()  # answers besides a size and None
_NAME_IMAGE = pymupdf.PDF_NAME("Image")


def _xobject_kind(obj) -> tuple[Any, bool]:
    """What an XObject dict entry is, read as `get_images` reads it: (width, height) for
    an image, None for another dict, `_NOT_A_DICT`; and whether that answer may be kept
    for the object's next visit. It may not where reading it again could differ or warn
    again: an entry that is no dict (a broken or missing object, which MuPDF tries to
    load again) or a value read through an indirect reference (resolved on each read)."""
    mupdf = pymupdf.mupdf
    if not mupdf.pdf_is_dict(obj):
        return _NOT_A_DICT, False
    subtype = mupdf.pdf_dict_get(obj, mupdf.PDF_ENUM_NAME_Subtype)
    if not mupdf.pdf_name_eq(subtype, _NAME_IMAGE):
        return None, not mupdf.pdf_is_indirect(subtype)
    width = mupdf.pdf_dict_geta(obj, mupdf.PDF_ENUM_NAME_Width, mupdf.PDF_ENUM_NAME_W)
    height = mupdf.pdf_dict_geta(obj, mupdf.PDF_ENUM_NAME_Height, mupdf.PDF_ENUM_NAME_H)
    return ((mupdf.pdf_to_int(width), mupdf.pdf_to_int(height)),
            not (mupdf.pdf_is_indirect(width) or mupdf.pdf_is_indirect(height)))


class _Normaliser:
    """Maps unrotated page coordinates to 0..1 of the rendered (rotated) page image."""

    def __init__(self, matrix: pymupdf.Matrix, width: float, height: float):
        self.matrix = tuple(pymupdf.Matrix(matrix))
        self.width, self.height = width, height

    # Plain float arithmetic: pymupdf's Point/Matrix objects cost ~50 us each, and a chart
    # page holds thousands of path points.
    def point(self, x: float, y: float) -> tuple[float, float]:
        a, b, c, d, e, f = self.matrix
        px, py = a * x + c * y + e, b * x + d * y + f
        return (min(max(px / self.width, 0.0), 1.0), min(max(py / self.height, 0.0), 1.0))

    def box(self, bbox) -> list[float]:
        x0, y0 = self.point(bbox[0], bbox[1])
        x1, y1 = self.point(bbox[2], bbox[3])
        return [round(min(x0, x1), 5), round(min(y0, y1), 5), round(max(x0, x1), 5),
                round(max(y0, y1), 5)]

    def boxes(self, bboxes: list) -> list[list[float]]:
        """`box` for many boxes in one numpy pass (a page holds thousands of words)."""
        if not len(bboxes):
            return []
        import numpy as np

        a, b, c, d, e, f = self.matrix
        xy = np.asarray([v[:4] for v in bboxes], dtype=np.float64).reshape(-1, 2)
        px = np.clip((a * xy[:, 0] + c * xy[:, 1] + e) / self.width, 0.0, 1.0).reshape(-1, 2)
        py = np.clip((b * xy[:, 0] + d * xy[:, 1] + f) / self.height, 0.0, 1.0).reshape(-1, 2)
        out = np.stack([px.min(axis=1), py.min(axis=1), px.max(axis=1), py.max(axis=1)], axis=1)
        return np.round(out, 5).tolist()

    def x_edges(self, bboxes: list) -> tuple[list[float], list[float]]:
        """The x0 and x1 that `boxes` gives these boxes (the same arithmetic, x only)."""
        if not len(bboxes):
            return [], []
        import numpy as np

        a, _, c, _, e, _ = self.matrix
        xy = np.asarray(bboxes, dtype=np.float64).reshape(-1, 2)
        px = np.clip((a * xy[:, 0] + c * xy[:, 1] + e) / self.width, 0.0, 1.0).reshape(-1, 2)
        return np.round(px.min(axis=1), 5).tolist(), np.round(px.max(axis=1), 5).tolist()

    def drawings(self, paths: list[dict], scale: float,
                 crop: list[float] | None = None) -> list[dict[str, Any]]:
        """`get_cdrawings` paths → meta drawings, normalised to the page image or, with
        `crop` (a normalised page box), to that crop (items may then run outside 0..1).

        All points of all paths are mapped in one numpy pass: a chart page holds tens
        of thousands of them, and per-point Python arithmetic and rounding cost seconds."""
        import numpy as np

        coords: list = []
        extend = coords.extend
        plans = []
        for path in paths:
            ops = []
            for item in path.get("items", ()):
                op = item[0]
                if op == "re":
                    extend(item[1][:4])
                    ops.append(_RE)
                elif op == "l" and len(item) == 3:  # a line: 2 points
                    extend(item[1])
                    extend(item[2])
                    ops.append(_LINE)
                elif op == "qu":
                    q = item[1]  # (ul, ur, ll, lr): written ul, ur, lr, ll
                    for p in (q[0], q[1], q[3], q[2]):
                        extend(p)
                    ops.append(_QUAD)
                elif op == "c" and len(item) == 5:  # a curve: 4 points (most of a chart)
                    extend(item[1] + item[2] + item[3] + item[4])
                    ops.append(_CURVE)
                else:
                    for p in item[1:]:
                        extend(p)
                    ops.append((op, 2 * (len(item) - 1)))
            extend(path["rect"][:4])
            plans.append(ops)
        if not plans:
            return []
        a, b, c, d, e, f = self.matrix
        xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        px = (a * xy[:, 0] + c * xy[:, 1] + e) / self.width
        py = (b * xy[:, 0] + d * xy[:, 1] + f) / self.height
        px, py = np.clip(px, 0.0, 1.0), np.clip(py, 0.0, 1.0)
        if crop is not None:
            cw, ch = max(crop[2] - crop[0], 1e-9), max(crop[3] - crop[1], 1e-9)
            px, py = (px - crop[0]) / cw, (py - crop[1]) / ch
        flat = np.round(np.stack([px, py], axis=1), 5).ravel().tolist()
        out, at = [], 0
        for path, ops in zip(paths, plans):
            items = []
            for op, count in ops:
                if op == "re":
                    x0, y0, x1, y1 = flat[at:at + 4]
                    items.append(["re", min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)])
                else:
                    values = flat[at:at + count]
                    values.insert(0, op)
                    items.append(values)
                at += count
            box = _minmax(flat[at:at + 4])
            at += 4
            if crop is not None:
                box = [min(max(v, 0.0), 1.0) for v in box]
            fill = path.get("fill") if path.get("fill_opacity", 1.0) != 0 else None
            out.append({"type": path.get("type"), "box": box, "fill": _rgb(fill),
                        "stroke": _rgb(path.get("color")),
                        "width": round((path.get("width") or 0) * scale, 3), "items": items,
                        "closed": bool(path.get("closePath"))})
        return out


def _minmax(v: list[float]) -> list[float]:
    """[x0, y0, x1, y1] ordered (a rotation can swap the corners of a box)."""
    return [min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3])]


# A path item's op and its number of coordinates, for `_Normaliser.drawings`' plans.
_RE, _LINE, _QUAD, _CURVE = ("re", 4), ("l", 4), ("qu", 8), ("c", 8)


def _rgb(color) -> list[float] | None:
    return [round(c, 4) for c in color] if color else None


GLYPHS_UP_TO = 64  # glyph edges are kept for label-sized runs only (not body text)


def chart_spans(blocks: list, norm: _Normaliser) -> list[dict[str, Any]]:
    """Text runs for chart reading (``meta["pdf"]["spans"]``) from ``rawdict`` blocks:
    normalised box, font size in points, rotation in the image (degrees, 0 = upright,
    90 = reading upwards) and, for short horizontal runs, each glyph's x edges."""
    a, b, c, d, _, _ = norm.matrix
    runs = list(text_runs(blocks))
    directions = [(a * dx + c * dy, b * dx + d * dy)  # the writing direction in the image
                  for dx, dy in (run.direction for run in runs)]
    with_glyphs = [abs(iy) < 1e-3 and len(run.chars) <= GLYPHS_UP_TO
                   for run, (_, iy) in zip(runs, directions)]
    # every glyph's x edges of the page in one numpy pass (a call per run cost ~40 us
    # each), joined to their characters by C loops: a chart page holds ~2,000 glyphs
    kept = [run.chars for run, keep in zip(runs, with_glyphs) if keep]
    x0s, x1s = norm.x_edges([cb for chars in kept for _, cb in chars])
    glyph_lists = iter([])
    if kept:
        sizes = [len(chars) for chars in kept]
        glyphs_flat = list(map(list, zip([ch for chars in kept for ch, _ in chars], x0s, x1s)))
        ends = list(itertools.accumulate(sizes))
        glyph_lists = iter([glyphs_flat[end - n:end] for n, end in zip(sizes, ends)])
    out = []
    for run, box, (ix, iy), keep in zip(runs, norm.boxes([run.bbox for run in runs]),
                                        directions, with_glyphs):
        out.append({"text": run.text, "box": box, "size": round(run.size, 3),
                    "rotation": round(-math.degrees(math.atan2(iy, ix)), 2) + 0.0,
                    "glyphs": next(glyph_lists) if keep else []})
    return out


def _page_markdown(page: pymupdf.Page, blocks: list, tables: list[dict],
                   headers: HeadingLevels) -> str | None:
    """The page as markdown, from the blocks already extracted (`pipelines.pdf.markdown`)."""
    try:
        links = page.get_links() if page.first_link else []  # read once, only if any
        return page_markdown(blocks, headers, [(t["md_rect"], t["markdown"]) for t in tables],
                             links) or None
    except Exception as exc:  # markdown is a bonus; the page stays usable without it
        log.debug("markdown failed on page %d: %s", page.number, exc)
        return None


def _find_tables(page: pymupdf.Page, drawings: list, norm: _Normaliser,
                 layout_model: bool = False) -> list[dict[str, Any]]:
    """Ruled tables (the "lines_strict" strategy: only pages with vector lines can have one).

    The page's drawings are handed to `find_tables` (it would read them again), and the
    layout model stays off unless asked for."""
    if not may_hold_ruled_table(drawings):
        return []
    if layout_model:
        use_layout_model()
    clip = None if layout_model else _table_search_area(page, drawings)
    try:
        # pymupdf's per-call cache, pre-filled so it does not read the drawings again
        page._table_drawings_cache = [_as_drawings(drawings)]
        if not layout_model and not _table_possible(page, clip):
            return []
        with fast_table_chars():  # its characters without a Rect and a Point each
            found = page.find_tables(strategy="lines_strict", use_layout=layout_model,
                                     **({"clip": clip} if clip is not None else {})).tables
    except Exception as exc:
        log.debug("find_tables failed: %s", exc)
        return []
    finally:
        try:
            del page._table_drawings_cache
        except AttributeError:
            pass
    textpage = _RawdictOnce(found[0].textpage) if found else None
    tables = []
    for table in found:
        table.textpage = textpage
        rows = table.extract()
        if table.row_count < 2 or table.col_count < 2:
            continue
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["" if c is None else c for c in row] for row in rows])
        tables.append({"box": norm.box(table.bbox), "rect": tuple(table.bbox),
                       "markdown": table.to_markdown(clean=False), "csv": buffer.getvalue(),
                       "md_rect": table_rect(table),
                       "rows": table.row_count, "cols": table.col_count})
    return tables


class _RawdictOnce:
    """A table's TextPage whose ``rawdict`` is extracted once: pymupdf's
    `Table.to_markdown` extracts it again for every cell (`pymupdf.table.extract_cells`),
    whole, which made a table's markdown cost cells x the page's characters. Only
    `to_markdown` reads a table's textpage; it reads the dict, never changes it."""

    def __init__(self, textpage):
        self._textpage, self._rawdict = textpage, None

    def extractRAWDICT(self, *args, **kwargs):  # pymupdf's name
        if args or kwargs:
            return self._textpage.extractRAWDICT(*args, **kwargs)
        if self._rawdict is None:
            self._rawdict = self._textpage.extractRAWDICT()
        return self._rawdict

    def __getattr__(self, name):
        return getattr(self._textpage, name)


def _figures(page, drawings, regions, norm, tables, blocks, image, page_meta, settings,
             raw_words) -> tuple[list[dict], list[dict]]:
    """Embedded images and clusters of vector graphics large enough to be figures: the
    figure parts, and the embedded images left out, each with its reason (at most
    `max_figures` listed). ``page_meta["figures_dropped"]`` counts every candidate left
    out by reason: ``too_small`` (under `min_figure_fraction` of the page, or a short side
    under `min_figure_side` px), ``whole_page`` (a scan, a background), ``thin`` (a rule,
    a bar), ``in_table``, ``inside_figure``, ``over_max_figures``, ``decorative`` (one
    colour: a panel, a spacer)."""
    area = page.rect.width * page.rect.height
    candidates: list[tuple[str, pymupdf.Rect]] = []
    for info in page.get_image_info():
        candidates.append(("image", pymupdf.Rect(info["bbox"])))
    candidates += [("vector", pymupdf.Rect(r)) for r in regions]
    table_rects = [pymupdf.Rect(t["rect"]) for t in tables]
    kept: list[tuple[str, pymupdf.Rect]] = []
    rejected: list[tuple[str, pymupdf.Rect, str]] = []
    for source, rect in candidates:
        rect = rect & _unrotated_rect(page)
        share = rect.get_area() / area if area else 0
        if share < settings.min_figure_fraction:
            reason = "too_small"  # too small to matter
        elif share > 0.9:
            reason = "whole_page"  # a scan, a background
        elif min(rect.width, rect.height) < 0.03 * min(page.rect.width, page.rect.height):
            reason = "thin"  # a rule or a thin bar
        elif any((rect & t).get_area() > 0.5 * rect.get_area() for t in table_rects):
            reason = "in_table"  # a table's ruling, already a table sample
        elif any(rect in other for _, other in kept) or any(
                (rect & other).get_area() > 0.8 * rect.get_area() for _, other in kept):
            reason = "inside_figure"
        elif len(kept) >= settings.max_figures:
            reason = "over_max_figures"
        else:
            kept.append((source, rect))
            continue
        rejected.append((source, rect, reason))
    words = _label_words(raw_words) if kept else []
    figures = []
    for source, rect in kept:
        if source == "vector":  # take in the axis labels and legends drawn as text around it
            rect = _take_in(rect, words, 15)
        box = norm.box(rect)
        reason = _small_or_decorative(image, box, settings.min_figure_side)
        if reason:
            rejected.append((source, rect, reason))
            continue
        # overlap that also counts zero-width boxes (a vertical axis line has no area),
        # on the plain tuples: a Rect per path per figure cost ~2 us each
        fx0, fy0, fx1, fy1 = rect
        inside = [d for d in drawings if d["rect"][0] <= fx1 and d["rect"][2] >= fx0
                  and d["rect"][1] <= fy1 and d["rect"][3] >= fy0]
        truncated = len(inside) > settings.max_drawings
        figures.append(_crop_sample(
            image, "figure", box, page_meta, blocks, norm,
            extra={"figure_source": source, "drawings_total": len(inside),
                   "drawings_truncated": truncated},
            drawings=norm.drawings(inside[:settings.max_drawings], page_meta["dpi"] / 72,
                                   crop=box)))
    counts: dict[str, int] = {}
    for _, _, reason in rejected:
        counts[reason] = counts.get(reason, 0) + 1
    page_meta["figures_dropped"] = dict(sorted(counts.items()))
    dropped = [{"page": page_meta["page"], "box": norm.box(rect), "source": source,
                "reason": reason}
               for source, rect, reason in rejected if source == "image"]
    return figures, dropped[:settings.max_figures]


def _label_words(raw_words: list) -> list[tuple[float, float, float, float]]:
    """Boxes of the words a vector figure may take in (axis labels, legends): every word
    except those of a line that is a figure caption ("Figure 2: ..."), which stays text
    beside the figure instead of being cut into its crop. Plain tuples, and only boxes
    that `Rect.intersects` can find (neither empty nor infinite): a Rect per word and an
    `intersects` call per word and figure cost ~5 us each."""
    lines: dict[tuple[int, int], list] = {}
    for w in raw_words:
        lines.setdefault((w[5], w[6]), []).append(w)
    out = []
    for line in lines.values():
        if interleave.CAPTION_LABEL.match(" ".join(w[4] for w in line)):
            continue
        out += [(float(w[0]), float(w[1]), float(w[2]), float(w[3])) for w in line
                if w[0] < w[2] and w[1] < w[3] and not (
                    w[0] == w[1] == pymupdf.FZ_MIN_INF_RECT
                    and w[2] == w[3] == pymupdf.FZ_MAX_INF_RECT)]
    return out


def _take_in(rect: pymupdf.Rect, words: list, margin: float) -> pymupdf.Rect:
    """`rect` joined with every word box that overlaps it grown by `margin`, as
    ``rect |= word`` for each did: MuPDF's union holds single-precision floats, so a
    joined rect's corners are rounded to float32 (the rect is non-empty and finite)."""
    mx0, my0, mx1, my1 = rect.x0 - margin, rect.y0 - margin, rect.x1 + margin, rect.y1 + margin
    near = [w for w in words if mx0 < w[2] and w[0] < mx1 and my0 < w[3] and w[1] < my1]
    if not near:
        return rect
    x0s, y0s, x1s, y1s = zip(rect, *near)
    return pymupdf.Rect([struct.unpack("f", struct.pack("f", v))[0]
                         for v in (min(x0s), min(y0s), max(x1s), max(y1s))])


def _small_or_decorative(image, box: list[float], min_side: int) -> str | None:
    """"too_small" when the crop's short side is under `min_side` px, "decorative" when
    it is one colour (a panel, a spacer), else None."""
    width, height = image.size
    px = (round(box[0] * width), round(box[1] * height), round(box[2] * width),
          round(box[3] * height))
    if min(px[2] - px[0], px[3] - px[1]) < min_side:
        return "too_small"
    thumb = image.crop(px).convert("L")
    thumb.thumbnail((64, 64))
    return "decorative" if _is_blank(thumb) else None


# A stand-in character that overlaps every box: `_table_possible` assumes text everywhere.
_TEXT_EVERYWHERE = {"x0": -1e9, "x1": 1e9, "top": -1e9, "bottom": 1e9, "y0": -1e9,
                    "y1": 1e9, "text": "x"}


def _table_possible(page: pymupdf.Page, clip: pymupdf.Rect | None) -> bool:
    """Whether "lines_strict" could find a table of 2+ rows and 2+ columns on `page`,
    judged on its vector paths alone (the search's own edges, cells and cell groups) as
    if text were everywhere.

    pymupdf's search uses text only to drop: a box of joined paths becomes edges, and a
    group of cells a table, only where it holds text; assuming text everywhere keeps
    every edge and group it could keep. It first makes a Python object for every
    character in its area (80% of its cost), which this skips: on the corpus, 31 of the
    40 pages with ruling lines hold no table. True when unsure (a rotated page, or
    pymupdf's table internals not as expected), so the full search runs."""
    from pymupdf import table as pdf_tables

    if page.rotation:
        return True
    chars_in_rect = pdf_tables.chars_in_rect
    try:
        pdf_tables._CHARS_VAR.set([_TEXT_EVERYWHERE])
        pdf_tables._EDGES_VAR.set([])
        settings = pdf_tables.TableSettings.resolve(settings={
            "vertical_strategy": "lines_strict", "horizontal_strategy": "lines_strict"})
        pdf_tables.chars_in_rect = lambda chars, rect: True
        try:
            pdf_tables.make_edges(page, clip=clip, tset=settings)
        finally:
            pdf_tables.chars_in_rect = chars_in_rect
        finder = pdf_tables.TableFinder(page, settings=settings)
        return any(t.row_count >= 2 and t.col_count >= 2 for t in finder.tables)
    except Exception as exc:  # pymupdf changed: search the page as before
        log.debug("table pre-check failed: %s", exc)
        return True
    finally:
        pdf_tables.chars_in_rect = chars_in_rect
        pdf_tables._CHARS_VAR.set([])
        pdf_tables._EDGES_VAR.set([])


# Added around the drawings' extent: above pymupdf's snap, join and intersection
# tolerances (3 pt), so every edge, and every character a cell can hold, stays inside.
TABLE_CLIP_MARGIN = 10.0


def _table_search_area(page: pymupdf.Page, drawings: list) -> pymupdf.Rect | None:
    """The part of the page "lines_strict" can find a table in: the extent of the
    vector paths, plus a margin; None where that is (nearly) the whole page or the page
    is rotated (find_tables un-rotates it first).

    Every edge and every candidate box of "lines_strict" comes from a path, so a table's
    cells, the characters it reads for their text and its bold-header test lie inside
    (the text above a table, for its header, is read apart, unclipped), and so do the
    characters at their mirror image (see below). `find_tables`
    first makes a Python object for every character in its area: a page of text with
    one small ruled figure paid for all of it (0.1-0.25 CPU-s a page on the corpus).
    Tables found are the same on every corpus page (bench notes, issue 17)."""
    if page.rotation or not drawings:
        return None
    x0 = min(d["rect"][0] for d in drawings)
    y0 = min(d["rect"][1] for d in drawings)
    x1 = max(d["rect"][2] for d in drawings)
    y1 = max(d["rect"][3] for d in drawings)
    area = pymupdf.Rect(x0 - TABLE_CLIP_MARGIN, y0 - TABLE_CLIP_MARGIN,
                        x1 + TABLE_CLIP_MARGIN, y1 + TABLE_CLIP_MARGIN)
    # pymupdf tests whether a joined box of paths holds text on the characters' PDF
    # (y-up) coordinates: the characters at the box's mirror image decide. They must be
    # read too, or boxes (and so tables) change (tests/pipelines/pdf_golden's dense.pdf).
    area = (area | (area * page.transformation_matrix)) & page.rect
    if area.is_empty or area.get_area() >= 0.9 * page.rect.get_area():
        return None
    return area


def may_hold_ruled_table(drawings: list) -> bool:
    """Whether the page has ruling lines both ways (3+ across, 2+ down; a stroked box
    counts both ways), which "lines_strict" needs to find a table. Counted on the drawings'
    tuples before `find_tables`, which first extracts every character of the page (up to
    a second a page). (A stricter test, rules that cross 9 times, missed tables that
    pymupdf frames with the outline of adjacent filled cells.)"""
    horizontal = vertical = 0
    for d in drawings:
        stroked = "s" in (d.get("type") or "")
        for item in d.get("items", ()):
            if item[0] == "re":
                x0, y0, x1, y1 = item[1][:4]
                width, height = abs(x1 - x0), abs(y1 - y0)
                if stroked:
                    horizontal, vertical = horizontal + 2, vertical + 2
                elif height < 2 and width > 10:  # a filled hairline is a rule too
                    horizontal += 1
                elif width < 2 and height > 10:
                    vertical += 1
            elif item[0] == "l":
                (x0, y0), (x1, y1) = item[1], item[2]
                horizontal += abs(y1 - y0) < 1 and abs(x1 - x0) > 10
                vertical += abs(x1 - x0) < 1 and abs(y1 - y0) > 10
            if horizontal >= 3 and vertical >= 2:
                return True
    return False


def _as_drawings(cdrawings: list) -> list[dict]:
    """`Page.get_drawings`'s objects (Rect, Point, Quad) from `get_cdrawings`' tuples, for
    `find_tables`; the same conversion PyMuPDF does, on a copy, except that curves ("c")
    keep their point tuples: the table search looks only at their tag (it builds edges
    from lines, rectangles and quads), and a chart page holds tens of thousands."""
    keys = ("closePath", "fill", "color", "width", "lineCap", "lineJoin", "dashes",
            "stroke_opacity", "fill_opacity", "even_odd")
    out = []
    for path in cdrawings:
        path = dict(path)
        path["rect"] = pymupdf.Rect(path["rect"])
        items = []
        for item in path["items"]:
            if item[0] == "re":
                items.append(("re", pymupdf.Rect(item[1]).normalize(), item[2]))
            elif item[0] == "qu":
                items.append(("qu", pymupdf.Quad(item[1])))
            elif item[0] == "c":
                items.append(item)
            else:
                items.append((item[0], *[pymupdf.Point(p) for p in item[1:]]))
        path["items"] = items
        if path["type"] in ("f", "s"):
            for key in keys:
                path[key] = path.get(key)
        out.append(path)
    return out


def use_layout_model() -> None:
    """Load and switch on pymupdf's layout model (``pymupdf.layout``), also where the
    isolated renderer kept the package from loading."""
    import importlib
    import sys

    if pymupdf._get_layout is not None:
        return
    if "pymupdf.layout" in sys.modules and sys.modules["pymupdf.layout"] is None:
        del sys.modules["pymupdf.layout"]
    importlib.import_module("pymupdf.layout").activate()


def _vector_regions(page: pymupdf.Page, drawings: list, settings: PdfRenderSettings,
                    page_meta: dict) -> list[tuple[float, float, float, float]]:
    """Regions of nearby vector paths (what `Page.cluster_drawings` finds, on a grid).

    Paths outside the page box are left out, as `cluster_drawings` does. Over
    `max_cluster_paths`, only the largest paths are clustered; meta says so."""
    if not drawings:
        return []
    area = page.rect
    rects = [r for r in (d["rect"] for d in drawings) if r[0] >= area.x0 and r[2] <= area.x1
             and r[1] >= area.y0 and r[3] <= area.y1]
    cap = settings.max_cluster_paths
    if len(rects) > cap:
        rects = sorted(rects, key=lambda r: (r[2] - r[0]) * (r[3] - r[1]), reverse=True)[:cap]
        page_meta["clusters_truncated"] = True
    page_meta["clustered_paths"], page_meta["cluster_cap"] = len(rects), cap
    return cluster_boxes(rects, 3.0, 3.0)


def _unrotated_rect(page: pymupdf.Page) -> pymupdf.Rect:
    """The page area in unrotated coordinates (where drawings and images live)."""
    if not page.parent.is_pdf or not page.rotation:
        return pymupdf.Rect(page.rect)
    return page.rect * page.derotation_matrix


def _crop_sample(image, kind: str, box: list[float], page_meta: dict, blocks: list,
                 norm: _Normaliser, text: str | None = None, markdown: str | None = None,
                 extra: dict | None = None, drawings: list | None = None) -> dict[str, Any]:
    """A figure/table cut out of the page image, with caption and the text inside it."""
    width, height = image.size
    px = (round(box[0] * width), round(box[1] * height), round(box[2] * width),
          round(box[3] * height))
    crop = image.crop(px)
    png = _png(crop)
    # the manifest's hash of the crop's PNG, as for pages: the writer would decode it
    crop_phash = _manifest_phash(crop.convert("L"))
    caption = find_caption(box, blocks, norm)
    cw, ch = max(box[2] - box[0], 1e-9), max(box[3] - box[1], 1e-9)

    def to_crop(b):
        return [round(min(max((b[0] - box[0]) / cw, 0), 1), 5),
                round(min(max((b[1] - box[1]) / ch, 0), 1), 5),
                round(min(max((b[2] - box[0]) / cw, 0), 1), 5),
                round(min(max((b[3] - box[1]) / ch, 0), 1), 5)]

    bx0, by0, bx1, by1 = box

    def within(items):  # those whose box centre lies in the crop (inline: ~1,000 words)
        return [i for i in items if bx0 <= (i["box"][0] + i["box"][2]) / 2 <= bx1
                and by0 <= (i["box"][1] + i["box"][3]) / 2 <= by1]

    words = [{"box": to_crop(w["box"]), "text": w["text"]} for w in within(page_meta["words"])]
    lines = [{"box": to_crop(line["box"]), "text": line["text"]}
             for line in within(page_meta["lines"])]
    spans = [{**span, "box": to_crop(span["box"]),
              "glyphs": [[g[0], round((g[1] - box[0]) / cw, 5), round((g[2] - box[0]) / cw, 5)]
                         for g in span["glyphs"]]}
             for span in within(page_meta["spans"])]
    meta = {k: page_meta[k] for k in ("page", "page_count", "dpi", "format", "pymupdf_version")}
    meta.update({"kind": kind, "box": box, "width": crop.width, "height": crop.height,
                 "caption": caption, "words": words, "lines": lines,
                 "needs_ocr": len(words) == 0, "drawings": drawings or [], "spans": spans,
                 "drawings_units": "normalised", **(extra or {})})
    return {"kind": kind, "image": png, "image_phash": crop_phash,
            "text": text if text is not None else (caption or None), "markdown": markdown,
            "meta": meta}


def find_caption(box: list[float], blocks: list, norm: _Normaliser) -> str:
    """The text block just above or below `box` (normalised), preferring "Figure 3:" style."""
    best, best_score = "", None
    for block in blocks:
        if block.get("type") != 0:
            continue
        text = " ".join("".join(s["text"] for s in line["spans"])
                        for line in block["lines"]).strip()
        if not text:
            continue
        b = norm.box(block["bbox"])
        overlap = min(b[2], box[2]) - max(b[0], box[0])
        if overlap <= 0:
            continue
        gap = b[1] - box[3] if b[1] >= box[3] - 0.005 else box[1] - b[3]
        if gap < -0.005 or gap > 0.08:
            continue  # inside the figure, or too far away to be its caption
        score = gap - (0.1 if CAPTION_START.match(text) else 0.0)
        if best_score is None or score < best_score:
            best, best_score = text, score
    return best[:2000]


def _png(image) -> bytes:
    """A PIL RGB image as PNG, by MuPDF's encoder (the page images' own): on the corpus's
    pages it took 1.6 CPU-s and 11.7 MB where Pillow's default took 2.35 CPU-s and 13.5 MB
    (both lossless: the same pixels)."""
    if image.mode != "RGB" or not image.width or not image.height:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    return pymupdf.Pixmap(pymupdf.csRGB, image.width, image.height, image.tobytes(),
                          False).tobytes("png")


def _pil_image(pix: pymupdf.Pixmap):
    from PIL import Image

    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pix.n]
    # samples_mv: the pixmap's own memory (samples copies the page's ~2.4 MB first)
    image = Image.frombytes(mode, (pix.width, pix.height), pix.samples_mv)
    return image if mode == "RGB" else image.convert("RGB")  # (convert would copy it)


def _phash(thumb) -> str:
    return perceptual_hash(thumb, hash_size=16)


def _manifest_phash(grey) -> str:
    """`pipelines.core.signatures.image_phash` of the page's PNG, from its grey pixels
    (the PNG is lossless: decoding it and converting to "L" gives these same pixels)."""
    return perceptual_hash(grey)


def _is_blank(thumb) -> bool:
    """One colour, or so close to it that nothing is legible (scanner noise on white).

    Judged on the 256 px grey thumbnail (PyMuPDF's `Pixmap.is_unicolor` walks every sample
    in Python: seconds per page)."""
    from PIL import ImageStat

    low, high = thumb.getextrema()
    return high - low < 12 or ImageStat.Stat(thumb).stddev[0] < 1.0
