"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse
import json

from pipelines.text import corpus


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = corpus.__doc__
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help="a de-duplicated text-only corpus from runs' main text",
                           description=corpus.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("runs", nargs="+", metavar="RUN", help="finished run directories "
                       "(web crawls, PDF/e-book runs; other samples are skipped)")
    build.add_argument("--out", required=True, metavar="TEXT",
                       help="corpus file: jsonl ('text' per line), or plain text for .txt")
    build.add_argument("--split", choices=("train", "validation", "all"), default="train",
                       help="which side of the runs' held-out split to read (default train: "
                            "held-out documents never reach training)")
    build.add_argument("--min-chars", type=int, default=200,
                       help="drop documents shorter than this (default 200)")
    build.add_argument("--min-letter-share", type=float, default=0.5,
                       help="drop documents whose non-space characters are mostly not "
                            "letters (default 0.5)")
    build.add_argument("--json", action="store_true", help="print the stats as JSON")


def text_command(args: argparse.Namespace, extra: list[str]) -> int:
    if args.min_chars < 0 or not 0 <= args.min_letter_share <= 1:
        raise ValueError("--min-chars must be >= 0 and --min-letter-share within 0..1")
    stats = corpus.build_corpus(args.runs, args.out,
                                split=None if args.split == "all" else args.split,
                                min_chars=args.min_chars,
                                min_letter_share=args.min_letter_share)
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
    else:
        print(f"text corpus: {args.out}")
        print(f"  documents {stats['documents_written']} of {stats['documents_seen']} "
              f"({stats['chars_written']} chars) from {stats['runs']} run(s)")
        if stats["derived_skipped"]:
            print(f"    skipped {stats['derived_skipped']:6d}  derived samples (figures, tables, "
                  "interleaved documents, caption pairs: their text is their page's)")
        for reason, count in stats["dropped"].items():
            print(f"    dropped {count:6d}  {reason}")
    return 0
