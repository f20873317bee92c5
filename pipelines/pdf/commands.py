"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse

from pipelines.core.cli_options import (
    add_post_stage_arguments,
    add_run_arguments,
    post_stage_config,
    print_run_summary,
    run_settings,
)
from pipelines.core.config import validate_all
from pipelines.core.inputs import iter_inputs
from pipelines.core.runner import run_pipeline
from pipelines.pdf.config import MAX_DEFAULT_RENDERERS, PdfConfig, default_renderers
from pipelines.pdf.settings import PdfRenderSettings


def add_pdf_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Render PDFs and e-books (EPUB, XPS, FB2, CBZ, MOBI) into page samples (image, words "
        "and lines with boxes, markdown, vector drawings) plus figure and table samples, "
        "interleaved documents (a page's or e-book chapter's text with its figures at their "
        "places) and figure caption pairs. "
        "Blank pages, near-duplicate pages and identical files are dropped with a reason; "
        "broken, encrypted or hostile files become error/drop records, never a stopped run.")
    parser.add_argument("inputs", nargs="+", help="documents, directories, globs or list files")
    render, pdf = PdfRenderSettings(), PdfConfig()
    parser.add_argument("--target", type=int, default=render.target,
                        help=f"long side of page images in px (default {render.target})")
    parser.add_argument("--max-pixels", type=int, default=render.max_pixels,
                        help="pixel cap per page image; the DPI is lowered to fit "
                             f"(default {render.max_pixels // 1024 ** 2}M)")
    parser.add_argument("--no-markdown", dest="markdown", action="store_false",
                        help="skip page markdown")
    parser.add_argument("--no-figures", dest="figures", action="store_false",
                        help="skip figure samples")
    parser.add_argument("--no-tables", dest="tables", action="store_false",
                        help="skip table samples")
    parser.add_argument("--no-interleaved", dest="interleaved", action="store_false",
                        help="skip interleaved documents (a page's or e-book chapter's text "
                             "with a placeholder at each figure)")
    parser.add_argument("--no-captions", dest="captions", action="store_false",
                        help="skip figure caption pairs")
    parser.add_argument("--max-document-images", type=int, default=render.max_document_images,
                        help="images per interleaved document; later figures keep their "
                             f"text, not their place (default {render.max_document_images})")
    parser.add_argument("--min-figure-side", type=int, default=render.min_figure_side,
                        help="figures whose short side is under this many px of the page "
                             f"image are dropped as too small (default {render.min_figure_side})")
    parser.add_argument("--max-chapter-pages", type=int, default=render.max_chapter_pages,
                        help="pages per e-book chapter document; longer chapters give several "
                             f"(default {render.max_chapter_pages})")
    parser.add_argument("--keep-blank", dest="drop_blank", action="store_false",
                        help="keep blank pages instead of dropping them")
    parser.add_argument("--near-duplicate-bits", type=int, default=pdf.near_duplicate_bits,
                        help="perceptual-hash bits (of 256) within which pages are near "
                             f"duplicates; -1 disables the filter (default "
                             f"{pdf.near_duplicate_bits})")
    parser.add_argument("--page-timeout", type=float, default=pdf.page_timeout,
                        help="seconds to open a document or render one page "
                             f"(default {pdf.page_timeout:g})")
    parser.add_argument("--doc-timeout", type=float, default=pdf.doc_timeout,
                        help=f"seconds for a whole document (default {pdf.doc_timeout:g})")
    parser.add_argument("--max-memory-mb", type=int, default=pdf.max_memory_mb,
                        help="address-space cap of the renderer process "
                             f"(default {pdf.max_memory_mb})")
    parser.add_argument("--renderers", type=int, default=None,
                        help="renderer processes per pipeline worker (documents rendered at "
                             "once). On one machine, the in-process DirectRunner with "
                             "--renderers N uses N cores with one Beam process, cheaper than N "
                             "Beam workers (default: the available cores, at most "
                             f"{MAX_DEFAULT_RENDERERS}, when the pipeline runs in this one "
                             "process; 1 with several Beam workers or another runner)")
    add_post_stage_arguments(parser)
    add_run_arguments(parser)

def config_from_args(args: argparse.Namespace) -> PdfConfig:
    """The typed settings of the flags (not yet validated)."""
    pdf_defaults = PdfConfig()
    render = PdfRenderSettings(target=args.target, max_pixels=args.max_pixels,
                               markdown=args.markdown, figures=args.figures, tables=args.tables,
                               interleaved=args.interleaved, captions=args.captions,
                               max_document_images=args.max_document_images,
                               min_figure_side=args.min_figure_side,
                               max_chapter_pages=args.max_chapter_pages)
    return PdfConfig(render=render, page_timeout=args.page_timeout,
                     doc_timeout=args.doc_timeout, max_memory_mb=args.max_memory_mb,
                     near_duplicate_bits=args.near_duplicate_bits, drop_blank=args.drop_blank,
                     renderers=pdf_defaults.renderers if args.renderers is None
                     else args.renderers, **post_stage_config(args))

def pdf_command(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.renderers is None:
        args.renderers = default_renderers(beam_args)
    config, settings = config_from_args(args), run_settings(args)
    # the first document's renderer starts now, on another core beside Beam's import (the
    # checks below are its first importer), not after it; run_pipeline's own call then
    # finds it parked
    config.start_ahead(beam_args)
    validate_all(config, settings)  # every flag problem at once, before hashing inputs
    from pipelines.pdf.pipeline import DOCUMENT_SUFFIXES, iter_pdf_refs

    # Listing only (with sizes), streamed into the planner: the workers read and hash.
    refs = iter_pdf_refs(iter_inputs(args.inputs, DOCUMENT_SUFFIXES))
    stats = run_pipeline("pdf", refs, config, args.out, beam_args,
                         task_size=settings.task_size, overwrite=args.overwrite,
                         drop_duplicates=True,  # a file named by two arguments runs once
                         **settings.shard_bounds,
                         validation_fraction=settings.validation_fraction)
    print_run_summary(stats, args.out, args.json)
    return 0
