"""Run a vlforge pipeline from a scheduler that passes only ``--flag=value`` options.

Airflow's ``BeamRunPythonPipelineOperator`` calls ``python <py_file> --opt=value ...``;
this file is that ``py_file``::

    python pipelines/orchestration/launch.py --pipeline=pdf --input=/data/2026-11-24.txt \
        --out=/runs/pdf/2026-11-24 --runner=DirectRunner

``--pipeline`` names the vlforge command (pdf, crawl, images), ``--input`` (repeatable)
its inputs; every other flag goes to that command, and from there to Beam.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

LAUNCHABLE = ("pdf", "crawl", "images")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", required=True, choices=LAUNCHABLE)
    parser.add_argument("--input", action="append", required=True,
                        help="an input (file, directory, glob or list file); repeatable")
    args, rest = parser.parse_known_args(argv)
    from pipelines.cli import main as vlforge

    return vlforge([args.pipeline, *args.input, *rest])


if __name__ == "__main__":
    sys.exit(main())
