"""What interleaved documents and caption pairs cost the PDF renderer: every page of every
input rendered in-process with them off (the baseline) and on, side by side, alternating
per file so drifting machine load hits both alike.

Prints CPU-s and wall seconds per page for each, the on/off ratios, the bytes of derived
output per page, what the "on" run adds (interleaved documents, caption pairs, images per
document) and why figure candidates and captions were left out.

    .venv/bin/python bench/pdf_interleave.py [DIR_OR_GLOB] [--rounds 2]

The default input is the shared corpus (``../shared/corpus/pdfs``, a PDF renderer's test
suite) when it is there.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.pdf import render
from pipelines.pdf.settings import PdfRenderSettings

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                       "corpus", "pdfs")


def files_of(spec: str) -> list[str]:
    if os.path.isdir(spec):
        spec = os.path.join(spec, "*")
    return sorted(p for p in glob.glob(spec) if p.lower().endswith(
        (".pdf", ".epub", ".fb2", ".mobi", ".xps", ".cbz")))


def render_all(path: str, settings: PdfRenderSettings, tally: dict) -> None:
    for message in render.iter_document(path, None, settings):
        if message[0] != "page" or isinstance(message[2], render.Outcome):
            continue
        result = message[2]
        tally["pages"] += 1
        tally["bytes"] += sum(len(p["image"]) + sum(map(len, p.get("extra_images", ())))
                              for p in result["derived"])
        tally["kinds"].update(p["kind"] for p in result["derived"])
        tally["dropped"].update(result["meta"].get("figures_dropped", {}))
        for part in result["derived"]:
            if part["kind"] == "figure" and "caption_problem" in part["meta"]:
                tally["captions"][part["meta"]["caption_problem"] or "paired"] += 1
            if part["kind"] == "interleaved":
                tally["images"][part["meta"]["images"]] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="?", default=DEFAULT, help="a directory or a glob")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    files = files_of(args.inputs)
    if not files:
        sys.exit(f"no documents at {args.inputs}")
    render.quiet_mupdf()
    runs = {"off": PdfRenderSettings(interleaved=False, captions=False),
            "on": PdfRenderSettings()}
    tallies = {name: {"pages": 0, "bytes": 0, "cpu": 0.0, "wall": 0.0, "kinds": Counter(),
                      "dropped": Counter(), "captions": Counter(), "images": Counter()}
               for name in runs}
    for round_index in range(args.rounds):
        for index, path in enumerate(files):
            order = list(runs) if (index + round_index) % 2 == 0 else list(runs)[::-1]
            for name in order:
                tally = tallies[name]
                wall, cpu = time.perf_counter(), time.process_time()
                render_all(path, runs[name], tally)
                tally["cpu"] += time.process_time() - cpu
                tally["wall"] += time.perf_counter() - wall
    pages = tallies["off"]["pages"]
    print(f"{len(files)} files, {pages // args.rounds} pages, {args.rounds} rounds")
    print(f"{'run':4} {'CPU-s/page':>11} {'s/page':>8} {'derived KB/page':>16}")
    for name, tally in tallies.items():
        print(f"{name:4} {tally['cpu'] / tally['pages']:11.4f} {tally['wall'] / tally['pages']:8.4f}"
              f" {tally['bytes'] / tally['pages'] / 1024:16.1f}")
    off, on = tallies["off"], tallies["on"]
    print(f"on/off: CPU {on['cpu'] / off['cpu']:.3f}  wall {on['wall'] / off['wall']:.3f}  "
          f"derived bytes {on['bytes'] / max(off['bytes'], 1):.2f}")
    for label, counts in (("derived per kind (on)", sorted(on["kinds"].items())),
                          ("images per interleaved document", sorted(on["images"].items())),
                          ("figure captions", on["captions"].most_common()),
                          ("figure candidates left out", on["dropped"].most_common())):
        print(f"{label}: { {k: v // args.rounds for k, v in counts} }")
    return 0


if __name__ == "__main__":
    sys.exit(main())
