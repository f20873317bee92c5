"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse
from typing import Any

import pymupdf

from pipelines.core.cli_options import (
    add_post_stage_arguments,
    add_run_arguments,
    post_stage_config,
    print_run_summary,
    shard_bounds,
)
from pipelines.core.inputs import expand_paths
from pipelines.core.runner import run_pipeline
from pipelines.pdf.pipeline import DOCUMENT_SUFFIXES, pdf_refs


def add_pdf_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Render PDFs and e-books (EPUB, XPS, FB2, CBZ, MOBI) into page samples (image, words "
        "and lines with boxes, markdown, vector drawings) plus figure and table samples. "
        "Blank pages, near-duplicate pages and identical files are dropped with a reason; "
        "broken, encrypted or hostile files become error/drop records, never a stopped run.")
    parser.add_argument("inputs", nargs="+", help="documents, directories, globs or list files")
    parser.add_argument("--target", type=int, default=1024,
                        help="long side of page images in px (default 1024)")
    parser.add_argument("--max-pixels", type=int, default=4096 * 4096,
                        help="pixel cap per page image; the DPI is lowered to fit (default 16M)")
    parser.add_argument("--no-markdown", dest="markdown", action="store_false",
                        help="skip page markdown (pymupdf4llm)")
    parser.add_argument("--no-figures", dest="figures", action="store_false",
                        help="skip figure samples")
    parser.add_argument("--no-tables", dest="tables", action="store_false",
                        help="skip table samples")
    parser.add_argument("--keep-blank", dest="drop_blank", action="store_false",
                        help="keep blank pages instead of dropping them")
    parser.add_argument("--near-duplicate-bits", type=int, default=10,
                        help="perceptual-hash bits (of 256) within which pages are near "
                             "duplicates; -1 disables the filter (default 10)")
    parser.add_argument("--page-timeout", type=float, default=60.0,
                        help="seconds to open a document or render one page (default 60)")
    parser.add_argument("--doc-timeout", type=float, default=900.0,
                        help="seconds for a whole document (default 900)")
    parser.add_argument("--max-memory-mb", type=int, default=4096,
                        help="address-space cap of the renderer process (default 4096)")
    add_post_stage_arguments(parser)
    add_run_arguments(parser)

def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    render = {"target": args.target, "max_pixels": args.max_pixels, "markdown": args.markdown,
              "figures": args.figures, "tables": args.tables}
    return {"render": render, "page_timeout": args.page_timeout,
            "doc_timeout": args.doc_timeout, "max_memory_mb": args.max_memory_mb,
            "near_duplicate_bits": args.near_duplicate_bits, "drop_blank": args.drop_blank,
            "pymupdf_version": pymupdf.VersionBind, **post_stage_config(args)}

def pdf_command(args: argparse.Namespace, beam_args: list[str]) -> int:
    paths = expand_paths(args.inputs, DOCUMENT_SUFFIXES)
    refs = pdf_refs(paths, progress=True)
    stats = run_pipeline("pdf", refs, config_from_args(args), args.out, beam_args,
                         task_size=args.task_size, overwrite=args.overwrite,
                         **shard_bounds(args))
    print_run_summary(stats, args.out, args.json)
    return 0
