"""`vlforge demo`: the whole mission end to end on embedded inputs, in a few minutes.

Serves a bundled sample site on loopback and crawls it, renders generated PDFs and an
EPUB (plus two broken files), runs OCR and chart extraction, labels by the taxonomy,
draws synthetic charts with their code (matplotlib and plotly), builds the SFT set, hands
the runs off, builds the de-duplicated text corpus for stages 2-3's language share, trains
the tiny model through the three stages and the seed's CNN hybrid (a small subset first,
then the whole runs), evaluates both on the runs' held-out split and writes the HTML
report (with each stage's data mix next to the paper's). Each step is the same `vlforge` command a user
would type; their output goes to ``OUT/demo.log`` and one progress line per step is
printed. Re-running with the same ``--out`` resumes: finished steps are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from typing import Callable

from pipelines.core.run_dir import RunDir
from pipelines.orchestration.scheduling import run_vlforge

DEMO_PATHS = ["/", "/articles/1", "/articles/2", "/articles/3", "/photos", "/table",
              "/chart", "/private/secret", "/missing", "/data.csv", "/loop"]
TRAIN_STEPS = {1: 12, 2: 12, 3: 12}
SYNTH_CHARTS = 8
CNN_STEPS = {"subset": 10, "full": 6}
CNN_SUBSET = 8
PRETRAIN_RUNS = ("web", "pdf", "synth")


@dataclass
class DemoStep:
    name: str
    run: Callable[[], str]      # returns a one-line summary
    done: Callable[[], bool]    # True when a previous demo run already finished it


class Demo:
    """The demo's steps over one output directory."""

    def __init__(self, out: str, beam_args: list[str]):
        self.out = os.path.abspath(out)
        self.beam_args = beam_args
        self.log_path = os.path.join(self.out, "demo.log")
        self.p = lambda *parts: os.path.join(self.out, *parts)  # noqa: E731

    # -- helpers -------------------------------------------------------------------------
    def vlforge(self, *argv: str) -> None:
        """Run a vlforge command with its output appended to demo.log."""
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"\n$ vlforge {' '.join(map(str, argv))}\n")
            log.flush()
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                run_vlforge(*argv)

    def complete(self, *parts: str) -> bool:
        return RunDir(self.p(*parts)).complete

    def stats(self, run: str) -> str:
        s = RunDir(self.p("runs", run)).stats()
        return (f"{s['inputs']} inputs -> {s['written']} written (+{s['derived']} derived), "
                f"{s['dropped']} dropped, {s['errors']} errors")

    # -- steps ---------------------------------------------------------------------------
    def crawl(self) -> str:
        from pipelines.web.testsite import serve_site

        server, base = serve_site()
        try:
            urls = self.p("inputs", "urls.txt")
            os.makedirs(os.path.dirname(urls), exist_ok=True)
            with open(urls, "w", encoding="utf-8") as handle:
                handle.write("".join(f"{base}{path}\n" for path in DEMO_PATHS))
            self.vlforge("crawl", urls, "--out", self.p("runs", "web"), "--allow-address",
                         "127.0.0.1", "--host-delay", "0", "--nav-timeout", "8",
                         "--page-timeout", "20", "--retries", "0", "--task-size", "4",
                         *self.beam_args)
        finally:
            server.shutdown()
        return self.stats("web")

    def pdf(self) -> str:
        from pipelines.app.demo_inputs import write_demo_documents

        docs = write_demo_documents(self.p("inputs", "docs"))
        self.vlforge("pdf", *docs, "--out", self.p("runs", "pdf"), "--task-size", "2",
                     *self.beam_args)
        return self.stats("pdf")

    def synth(self) -> str:
        self.vlforge("charts", "synth", "--n", str(SYNTH_CHARTS), "--out",
                     self.p("runs", "synth"), *self.beam_args)
        return self.stats("synth")

    def sft(self) -> str:
        self.vlforge("sft", "build", self.p("runs", "web"), self.p("runs", "pdf"),
                     "--out", self.p("runs", "sft"), *self.beam_args)
        return self.stats("sft")

    def handoff(self) -> str:
        from pipelines.orchestration.handoff import record_handoff, validate_run

        checked = [validate_run(self.p("runs", name)) for name in (*PRETRAIN_RUNS, "sft")]
        record_handoff(self.out, "demo", checked)
        return f"{len(checked)} runs audited and handed off ({self.p('handoff', 'demo.json')})"

    def model(self) -> str:
        self.vlforge("model", "init", "--preset", "tiny", "--out", self.p("model", "init"))
        return f"tiny model initialised in {self.p('model', 'init')}"

    def corpus(self) -> str:
        """The language-only corpus (stages 2-3 mix it in) from the runs' main text."""
        self.vlforge("text", "build", self.p("runs", "web"), self.p("runs", "pdf"),
                     "--out", self.p("inputs", "corpus.jsonl"), "--min-chars", "100")
        from pipelines.text.corpus import stats_path

        with open(stats_path(self.p("inputs", "corpus.jsonl")), encoding="utf-8") as handle:
            stats = json.load(handle)
        if not stats["documents_written"]:
            raise RuntimeError("the text corpus is empty: stages 2-3 have no language data")
        return (f"{stats['documents_written']} documents ({stats['chars_written']} chars), "
                f"dropped {stats['dropped']}")

    def train(self, stage: int) -> str:
        previous = self.p("model", "init") if stage == 1 else self.p("train", f"stage{stage - 1}", "model")
        data = ([self.p("runs", "sft")] if stage == 3 else
                [self.p("runs", name) for name in PRETRAIN_RUNS])
        text = ["--text", self.p("inputs", "corpus.jsonl")] if stage > 1 else []
        self.vlforge("train", "--stage", str(stage), "--model", previous, "--data", *data,
                     *text, "--out", self.p("train", f"stage{stage}"), "--max-steps",
                     str(TRAIN_STEPS[stage]), "--resume", "auto", "--no-progress")
        return _loss_summary(self.p("train", f"stage{stage}"))

    def evaluate(self) -> str:
        # the runs' held-out split (vlforge eval's default): documents no stage trained on
        self.vlforge("eval", "--model", self.p("train", "stage3", "model"), "--data",
                     self.p("runs", "sft"), self.p("runs", "pdf"), "--out", self.p("eval.json"))
        with open(self.p("eval.json"), encoding="utf-8") as handle:
            result = json.load(handle)
        losses = [f"{os.path.basename(run)} {r['loss']:.3f} ({r['samples']} samples)"
                  for run, r in result["runs"].items() if isinstance(r.get("loss"), float)]
        return "held-out loss " + ", ".join(losses)

    def cnn(self) -> str:
        """The seed's CNN hybrid: taxonomy-leaf classification, a subset first, then all."""
        init, subset, full = (self.p("cnn", name) for name in ("init", "subset", "full"))
        data = [self.p("runs", name) for name in ("web", "pdf")]
        self.vlforge("model", "init", "--preset", "cnn-hybrid", "--out", init)
        for out, model, steps, extra in ((subset, init, CNN_STEPS["subset"],
                                          ["--subset", str(CNN_SUBSET)]),
                                         (full, os.path.join(subset, "model"),
                                          CNN_STEPS["full"], [])):
            self.vlforge("train", "--stage", "3", "--model", model, "--head", "classification",
                         "--data", *data, *extra, "--out", out, "--max-steps", str(steps),
                         "--batch-size", "4", "--resume", "auto", "--no-progress")
        self.vlforge("eval", "--model", os.path.join(full, "model"), "--data", *data,
                     "--out", self.p("eval-cnn.json"))
        with open(self.p("eval-cnn.json"), encoding="utf-8") as handle:
            result = json.load(handle)
        scores = [f"{os.path.basename(run)} {r['heads']['metrics']}"
                  for run, r in result["runs"].items()]
        return (f"subset: {_loss_summary(subset)}; whole runs: {_loss_summary(full)}; "
                f"held-out {', '.join(scores)}")

    def report(self) -> str:
        paths = [self.p("runs", n) for n in (*PRETRAIN_RUNS, "sft")]
        paths += [self.p("train", f"stage{s}") for s in (1, 2, 3)] + [self.p("cnn", "full")]
        paths += [self.p("eval.json"), self.p("eval-cnn.json")]
        self.vlforge("report", *paths, "--out", self.p("report.html"),
                     "--title", "vlforge demo data card")
        return self.p("report.html")

    def steps(self) -> list[DemoStep]:
        model_ready = lambda: os.path.exists(self.p("model", "init", "config.json"))  # noqa: E731
        trained = lambda s: lambda: os.path.exists(  # noqa: E731
            self.p("train", f"stage{s}", "model", "config.json"))
        return [
            DemoStep("crawl the bundled site", self.crawl, lambda: self.complete("runs", "web")),
            DemoStep("render PDFs and an EPUB", self.pdf, lambda: self.complete("runs", "pdf")),
            DemoStep("draw synthetic charts", self.synth, lambda: self.complete("runs", "synth")),
            DemoStep("build SFT conversations", self.sft, lambda: self.complete("runs", "sft")),
            DemoStep("audit and hand off", self.handoff,
                     lambda: os.path.exists(self.p("handoff", "demo.json"))),
            DemoStep("init the tiny model", self.model, model_ready),
            DemoStep("build the text corpus", self.corpus,
                     lambda: os.path.exists(self.p("inputs", "corpus.jsonl"))),
            DemoStep("train stage 1 (adaptor)", lambda: self.train(1), trained(1)),
            DemoStep("train stage 2 (joint)", lambda: self.train(2), trained(2)),
            DemoStep("train stage 3 (SFT)", lambda: self.train(3), trained(3)),
            DemoStep("evaluate (held-out split)", self.evaluate,
                     lambda: os.path.exists(self.p("eval.json"))),
            DemoStep("train + evaluate the CNN", self.cnn,
                     lambda: os.path.exists(self.p("eval-cnn.json"))),
            DemoStep("write the report", self.report, lambda: False),
        ]


def _loss_summary(run: str) -> str:
    path = os.path.join(run, "metrics.jsonl")
    losses = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            losses = [json.loads(line)["loss"] for line in handle if '"loss"' in line]
    if not losses:
        return "trained"
    return f"{len(losses)} logged steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}"


def run_demo(out: str, beam_args: list[str] | None = None, echo=print) -> str:
    """Run (or resume) every demo step; returns the report path."""
    demo = Demo(out, list(beam_args or []))
    os.makedirs(demo.out, exist_ok=True)
    steps = demo.steps()
    started = time.time()
    summary = ""
    for index, step in enumerate(steps, 1):
        prefix = f"[{index:2d}/{len(steps)}] {step.name:28s}"
        if step.done():
            echo(f"{prefix} already done")
            continue
        t0 = time.time()
        try:
            summary = step.run()
        except Exception as exc:
            echo(f"{prefix} FAILED: {exc}\n  see {demo.log_path}")
            raise
        echo(f"{prefix} {summary}  ({time.time() - t0:.1f} s)")
    echo(f"demo finished in {time.time() - started:.0f} s; log: {demo.log_path}")
    echo(f"report: {summary}")
    return summary
