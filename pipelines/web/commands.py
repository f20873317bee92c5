"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse
from typing import Any

from pipelines.core.cli_options import (
    add_post_stage_arguments,
    add_run_arguments,
    post_stage_config,
    print_run_summary,
    run_settings,
)
from pipelines.core.config import validate_all
from pipelines.web.browser import RenderSettings
from pipelines.web.config import WebConfig
from pipelines.web.interleave import DerivedSettings
from pipelines.web.pipeline import PDF_LINKS_FILE, crawl
from pipelines.web.urls import read_url_args


# -- CLI -------------------------------------------------------------------------------
def add_crawl_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Screenshot web pages with Chromium into WebDataset shards: a 1024-wide viewport "
        "shot per page plus 1024x1024 tiles of the full page, the visible text with boxes, "
        "a simplified HTML and inline SVG charts; per page also an interleaved image-text "
        "document, caption pairs and a screenshot -> HTML pair (web code). robots.txt "
        "and X-Robots-Tag noai are honoured; private addresses are refused unless "
        "--allow-private.")
    parser.add_argument("urls", nargs="+",
                        help="URL list files (.txt one per line, .csv or .parquet with a "
                             "'url' column) or URLs")
    parser.add_argument("--depth", type=int, default=0,
                        help="follow same-site links this many clicks deep (default 0: "
                             "only the listed URLs)")
    parser.add_argument("--max-pages", type=int, default=1000,
                        help="page budget including discovered links (default 1000)")
    parser.add_argument("--allow-private", action="store_true",
                        help="allow private, loopback and link-local addresses (refused by "
                             "default, also after redirects)")
    parser.add_argument("--allow-address", action="append", default=[], metavar="ADDR",
                        help="allow just this private address or network (e.g. 127.0.0.1 "
                             "or 10.1.0.0/16); repeatable")
    render = RenderSettings()  # the flags' defaults are the browser settings' defaults
    parser.add_argument("--host-delay", type=float, default=render.host_delay_s,
                        help="seconds between page starts on one host, per worker (default "
                             f"{render.host_delay_s:g}; robots.txt Crawl-delay wins when "
                             "longer)")
    parser.add_argument("--host-concurrency", type=int, default=render.host_concurrency,
                        help="pages of one host loading at once, per worker (a page "
                             "frees its slot when its loading is over, before the read-out "
                             f"and screenshots; default {render.host_concurrency})")
    parser.add_argument("--concurrency", type=int, default=render.concurrency,
                        help=f"pages in flight per worker (default {render.concurrency})")
    parser.add_argument("--pages-per-context", type=int, default=render.pages_per_context,
                        help="a browser context (and its renderer process) serves up to N "
                             "pages of one origin, all cookies, storage and permissions "
                             "cleared after each page (default "
                             f"{render.pages_per_context}; 1: a fresh context per page)")
    parser.add_argument("--jitless", action="store_true",
                        help="run page scripts without V8's JIT (less CPU per page, slower "
                             "script-heavy pages)")
    parser.add_argument("--nav-timeout", type=float, default=render.nav_timeout_s,
                        help="seconds for a document to arrive and parse "
                             f"(default {render.nav_timeout_s:g})")
    parser.add_argument("--page-timeout", type=float, default=render.total_timeout_s,
                        help="hard limit per page attempt in seconds "
                             f"(default {render.total_timeout_s:g})")
    parser.add_argument("--retries", type=int, default=render.retries,
                        help="extra attempts for transient failures, with backoff "
                             f"(default {render.retries})")
    parser.add_argument("--max-tiles", type=int, default=render.max_tiles,
                        help="1024x1024 tiles of the full page to keep "
                             f"(default {render.max_tiles})")
    parser.add_argument("--viewport-height", type=int, default=render.viewport_height,
                        help="viewport height of the main screenshot (width is 1024)")
    derived = DerivedSettings()
    parser.add_argument("--no-interleaved", action="store_true",
                        help="no interleaved image-text document per page (main-content "
                             "pictures at their places in the main text)")
    parser.add_argument("--no-captions", action="store_true",
                        help="no caption pairs from <figcaption> and alt text")
    parser.add_argument("--no-code-pairs", dest="code_pairs", action="store_false",
                        help="no screenshot -> simplified HTML pair per page (web code)")
    parser.add_argument("--max-doc-images", type=int, default=derived.max_images,
                        help="pictures per interleaved document (default "
                             f"{derived.max_images}: what a 4096-token sequence holds)")
    parser.add_argument("--min-image-side", type=int, default=derived.min_image_side,
                        help="smaller images are trackers/icons, dropped as 'tiny' "
                             f"(px, default {derived.min_image_side})")
    parser.add_argument("--code-max-chars", type=int, default=derived.code_max_chars,
                        help="the code pair's HTML is cut (at a tag) to this many characters "
                             f"(default {derived.code_max_chars}: a 4096-token sequence less "
                             "the screenshot's 576 tokens)")
    add_post_stage_arguments(parser)
    add_run_arguments(parser)

def render_config(args: argparse.Namespace) -> RenderSettings:
    """The browser settings of the flags (addresses are checked by `WebConfig.validate`)."""
    allow: Any = True if args.allow_private else list(args.allow_address) or False
    return RenderSettings(allow_private=allow, host_delay_s=args.host_delay,
                          host_concurrency=args.host_concurrency, concurrency=args.concurrency,
                          pages_per_context=args.pages_per_context, jitless=args.jitless,
                          nav_timeout_s=args.nav_timeout, total_timeout_s=args.page_timeout,
                          retries=args.retries, max_tiles=args.max_tiles,
                          viewport_height=args.viewport_height)

def derived_config(args: argparse.Namespace) -> DerivedSettings:
    """Which derived samples each page yields, and their limits, from the flags."""
    return DerivedSettings(interleaved=not args.no_interleaved, captions=not args.no_captions,
                           code_pairs=args.code_pairs, max_images=args.max_doc_images,
                           min_image_side=args.min_image_side,
                           code_max_chars=args.code_max_chars)

def crawl_config(args: argparse.Namespace) -> WebConfig:
    """The typed settings of the flags (not yet validated)."""
    return WebConfig(render=render_config(args), derived=derived_config(args),
                     **post_stage_config(args))

def crawl_command(args: argparse.Namespace, beam_args: list[str]) -> int:
    config, settings = crawl_config(args), run_settings(args)
    validate_all(config, settings)  # every flag problem at once, before reading URL lists
    urls = read_url_args(args.urls)
    if not urls:
        raise ValueError("no URLs given")
    stats = crawl(urls, args.out, config, depth=args.depth, max_pages=args.max_pages,
                  beam_args=beam_args, task_size=settings.task_size, overwrite=args.overwrite,
                  progress=not args.json, **settings.shard_bounds,
                  validation_fraction=settings.validation_fraction)
    print_run_summary(stats, args.out, args.json)
    if not args.json:
        print(f"  rounds {stats['rounds']}  PDF links {stats['pdf_links']} "
              f"(in {PDF_LINKS_FILE})  duplicate URLs in list {stats['duplicate_urls_in_list']}")
    return 0
