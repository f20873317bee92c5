"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from pipelines.core.cli_options import (
    add_post_stage_arguments,
    add_run_arguments,
    post_stage_config,
    print_run_summary,
    shard_bounds,
)
from pipelines.web.pipeline import PDF_LINKS_FILE, crawl
from pipelines.web.urls import read_url_args


# -- CLI -------------------------------------------------------------------------------
def add_crawl_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Screenshot web pages with Chromium into WebDataset shards: a 1024-wide viewport "
        "shot per page plus 1024x1024 tiles of the full page, the visible text with boxes, "
        "a simplified HTML and inline SVG charts. robots.txt and X-Robots-Tag noai are "
        "honoured; private addresses are refused unless --allow-private.")
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
    parser.add_argument("--host-delay", type=float, default=1.0,
                        help="seconds between page starts on one host, per worker (default "
                             "1; robots.txt Crawl-delay wins when longer)")
    parser.add_argument("--host-concurrency", type=int, default=2,
                        help="pages of one host in flight at once, per worker (default 2)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="pages in flight per worker (default 4)")
    parser.add_argument("--pages-per-context", type=int, default=1,
                        help="1 (default): a fresh browser context per page; N: recycle a "
                             "context for N pages (cookies cleared between them), faster")
    parser.add_argument("--jitless", action="store_true",
                        help="run page scripts without V8's JIT (less CPU per page, slower "
                             "script-heavy pages)")
    parser.add_argument("--nav-timeout", type=float, default=15.0,
                        help="seconds for a document to arrive and parse (default 15)")
    parser.add_argument("--page-timeout", type=float, default=45.0,
                        help="hard limit per page attempt in seconds (default 45)")
    parser.add_argument("--retries", type=int, default=2,
                        help="extra attempts for transient failures, with backoff (default 2)")
    parser.add_argument("--max-tiles", type=int, default=8,
                        help="1024x1024 tiles of the full page to keep (default 8)")
    parser.add_argument("--viewport-height", type=int, default=768,
                        help="viewport height of the main screenshot (width is 1024)")
    add_post_stage_arguments(parser)
    add_run_arguments(parser)

def render_config(args: argparse.Namespace) -> dict[str, Any]:
    allow: Any = True if args.allow_private else list(args.allow_address) or False
    for address in args.allow_address:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ValueError(f"--allow-address {address!r} is not an IP address or network")
    return {"allow_private": allow, "host_delay_s": args.host_delay,
            "host_concurrency": args.host_concurrency, "concurrency": args.concurrency,
            "pages_per_context": args.pages_per_context, "jitless": args.jitless,
            "nav_timeout_s": args.nav_timeout, "total_timeout_s": args.page_timeout,
            "retries": args.retries, "max_tiles": args.max_tiles,
            "viewport_height": args.viewport_height}

def crawl_command(args: argparse.Namespace, beam_args: list[str]) -> int:
    urls = read_url_args(args.urls)
    if not urls:
        raise ValueError("no URLs given")
    config = {"render": render_config(args), **post_stage_config(args)}
    stats = crawl(urls, args.out, config, depth=args.depth, max_pages=args.max_pages,
                  beam_args=beam_args, task_size=args.task_size, overwrite=args.overwrite,
                  progress=not args.json, **shard_bounds(args))
    print_run_summary(stats, args.out, args.json)
    if not args.json:
        print(f"  rounds {stats['rounds']}  PDF links {stats['pdf_links']} "
              f"(in {PDF_LINKS_FILE})  duplicate URLs in list {stats['duplicate_urls_in_list']}")
    return 0
