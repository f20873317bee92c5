"""The `vlforge` command: a table of subcommands, each imported only when used.

Each package exposes its commands in one module (``pipelines/<family>/commands.py``,
``model/cli.py``, ``training/cli.py``): for a command NAME it defines
``add_NAME_arguments(parser)`` and ``NAME_command(args, extra) -> int`` (``extra`` holds
unrecognised ``--flags``, which pipeline commands pass on to Apache Beam; a dash in NAME
is an underscore in Python). Domain modules hold no argparse. Keeping heavy imports out
of this file keeps ``vlforge --help`` instant.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from typing import Sequence

from pipelines.core.collector import end_startup, pause_for_startup

# name -> (module, one-line help). Grouped in the order a user meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("pipelines.app.commands", "run the whole job end to end on bundled inputs"),
    "pdf": ("pipelines.pdf.commands", "render PDFs and e-books into page/figure/table shards"),
    "crawl": ("pipelines.web.commands", "screenshot web pages with Chromium into shards"),
    "images": ("pipelines.images.commands", "turn image files into shards"),
    "ocr": ("pipelines.ocr.commands", "OCR images or PDF pages (rapidocr, paddleocr, tesseract)"),
    "ocr-eval": ("pipelines.ocr.commands", "compare OCR with the text layer of a run: CER/WER"),
    "chart": ("pipelines.charts.commands", "recover the data behind a chart (SVG, PDF page, image)"),
    "charts": ("pipelines.charts.commands", "charts synth: draw synthetic charts with their code "
                                            "and table (matplotlib, plotly)"),
    "label": ("pipelines.label.commands", "label samples or prompts by the use-case taxonomy"),
    "taxonomy": ("pipelines.label.commands", "validate, show and edit the use-case taxonomy"),
    "sft": ("pipelines.sft.commands", "build instruction-tuning conversations from runs"),
    "text": ("pipelines.text.commands", "build the de-duplicated text-only corpus from runs"),
    "dedup": ("pipelines.dedup.commands", "find duplicates across runs; readers skip them"),
    "audit": ("pipelines.core.commands", "check that a run accounts for every input"),
    "retry": ("pipelines.core.commands", "re-run only the failed items of a run"),
    "shards": ("pipelines.core.commands", "inspect shards or export them to parquet / HF datasets"),
    "model": ("model.cli", "model presets: info, init"),
    "chat": ("training.cli", "chat with a model about images"),
    "train": ("training.cli", "train a stage (1 adaptor, 2 joint, 3 SFT) on run directories"),
    "eval": ("training.cli", "evaluate a model on a run directory"),
    "report": ("pipelines.app.commands", "write an HTML data card for runs"),
}

# Commands whose unknown --flags are Beam pipeline options rather than mistakes.
PASSES_EXTRA_FLAGS = {"dedup", "pdf", "crawl", "images", "label", "sft", "retry", "demo", "charts"}
# Commands whose work runs as tasks of `pipelines.core.runner.execute`, which ends the
# collector's start-up pause (`pipelines.core.collector`); the others keep it on.
STARTS_A_RUN = {"pdf", "crawl", "images", "label", "sft", "retry", "charts"}


class _QuietOptionalCloudDeps(logging.Filter):
    """Beam warns on import that Google Cloud client libraries are absent; they are optional
    (only Dataflow/BigQuery need them) and the warning would greet every command."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def top_level_help() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: vlforge COMMAND [options]   (vlforge COMMAND --help for details)", "",
             "Build vision-language training data and train DeepSeek-VL-style models.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command of `argv` (default: this program's arguments); its exit status."""
    if argv is None:  # the program itself: the process ends when this returns
        command = sys.argv[1] if len(sys.argv) > 1 else ""
        if command in STARTS_A_RUN:
            # A pipeline's start (imports, planning) runs without the cyclic collector:
            # ~0.1 CPU-s of collections finding nothing; the runner ends the pause before
            # it builds the graph (`pipelines.core.collector`)
            pause_for_startup()
        try:
            return _run(sys.argv[1:])
        finally:
            end_startup()  # where no run ended it (a flag error, nothing left to run)
            # What is loaded lives until exit: out of the collector's sight, the
            # interpreter's last collection does not walk Beam's ~2,000 modules and the
            # run's objects again (0.3-0.4 CPU-s of a one-page `vlforge images` run).
            gc.freeze()
    return _run(list(argv))


def _run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(top_level_help())
        return 0
    if argv[0] == "--version":
        from importlib.metadata import version

        print(version("vlforge"))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"vlforge: unknown command {name!r}\n\n{top_level_help()}", file=sys.stderr)
        return 2
    module_name, help_ = COMMANDS[name]
    logging.getLogger().addFilter(_QuietOptionalCloudDeps())
    if name in PASSES_EXTRA_FLAGS:
        # Before anything imports Beam: on the DirectRunner its import leaves out the Google
        # Cloud IO and Dataflow client that no local run uses (near half its cost)
        from pipelines.core.beam_import import lean_beam_import

        lean_beam_import(rest)
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"vlforge {name}", description=help_,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    attr = name.replace("-", "_")
    getattr(module, f"add_{attr}_arguments")(parser)
    if name in PASSES_EXTRA_FLAGS:
        args, extra = parser.parse_known_args(rest)
        stray = [a for a in extra if not a.startswith("--")]
        if stray:
            parser.error("unrecognized arguments: " + " ".join(stray))
    else:
        args, extra = parser.parse_args(rest), []
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(getattr(module, f"{attr}_command")(args, extra) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        if args.verbose:
            raise
        print(f"vlforge {name}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
