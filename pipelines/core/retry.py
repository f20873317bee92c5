"""`vlforge retry RUN_DIR`: re-run only the items that ended in an error, and merge them in.

Each error record keeps the input reference of its item (a URL, a single PDF page), so a
retry after, say, a network outage redoes exactly those items, not whole shards. What now
succeeds is written to new shards and replaces the error; what fails again stays an error.
"""

from __future__ import annotations

import argparse

from pipelines.runner import print_run_summary, retry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0].split(": ", 1)[1]
    parser.add_argument("run_dir", help="a run directory made by any vlforge pipeline")
    parser.add_argument("--reason", action="append", default=[], metavar="REASON",
                        help="retry only errors with this reason (repeatable), e.g. TimeoutError")
    parser.add_argument("--json", action="store_true", help="print the run stats as JSON")
    parser.epilog = "Any other --flag is passed to Apache Beam (e.g. --runner=...)."


def main(args: argparse.Namespace, extra: list[str]) -> int:
    stats = retry(args.run_dir, beam_args=extra, reasons=args.reason)
    print_run_summary(stats, args.run_dir, args.json)
    return 0
