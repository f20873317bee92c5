"""CLI commands of this package (argparse lives here, never in domain modules)."""

from __future__ import annotations

import argparse
import os

from pipelines.app import demo, report
from pipelines.app.demo import run_demo
from pipelines.app.report import build_report


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = report.__doc__.split("\n\n")[0].split(": ", 1)[1]
    parser.add_argument("paths", nargs="+", metavar="RUN_DIR",
                        help="data run directories, training run directories, eval JSON files")
    parser.add_argument("--out", default="report.html", help="HTML file to write")
    parser.add_argument("--title", default="vlforge data card")

def report_command(args: argparse.Namespace, extra: list[str]) -> int:
    page = build_report(args.paths, args.title)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(page)
    print(os.path.abspath(args.out))
    return 0


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = demo.__doc__.split("\n\n")[0].split(": ", 1)[1]
    parser.add_argument("--out", default="demo-run", help="output directory (default demo-run)")
    parser.epilog = "Any other --flag is passed to Apache Beam for the pipeline steps."

def demo_command(args: argparse.Namespace, extra: list[str]) -> int:
    run_demo(args.out, extra, echo=lambda line: print(line, flush=True))
    return 0
