"""``python -m training [train|eval] ...`` — the entry torchrun launches.

    torchrun --nproc_per_node 2 -m training train --stage 2 --model M --data R --out RUN

Same flags as ``vlforge train`` / ``vlforge eval``; a first argument that is neither
means ``train``.
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0] not in ("train", "eval"):
        argv = ["train", *argv]
    sys.exit(main(argv))
