"""A stage that records, in a trace file, each setup and each load of its resource (with
the process id), so a test can count them across an engine's worker processes. Workers
import it by name: start them with the repository root on PYTHONPATH."""

from __future__ import annotations

import os

from pipelines.core.stage import StageFn
from pipelines.core.worker_cache import worker_resource
from pipelines.pdf.pipeline import RenderPdfPagesFn


class Model:
    """Stands for a loaded model."""


def record(trace: str, event: str) -> None:
    with open(trace, "a", encoding="utf-8") as handle:
        handle.write(f"{event} {os.getpid()}\n")


def load(trace: str) -> Model:
    record(trace, "load")
    return Model()


class ProbeFn(StageFn):
    """Passes samples through; loads its "model" through `worker_resource` in `open`."""

    stage = "Probe"

    def __init__(self, trace: str):
        self.trace = trace

    def open(self) -> None:
        record(self.trace, "setup")
        self.model = worker_resource("probe", {"trace": self.trace}, lambda: load(self.trace))

    def close(self) -> None:
        self.model = None  # as real stages let go; the worker's cache keeps the load

    def process_sample(self, sample):
        yield sample


class RenderProbeFn(RenderPdfPagesFn):
    """The PDF render stage, recording each setup and, at each teardown, the renderer
    children it used (child pid, worker pid)."""

    def __init__(self, trace: str, **settings):
        super().__init__(**settings)
        self.trace = trace

    def open(self) -> None:
        record(self.trace, "setup")
        super().open()

    def close(self) -> None:
        for renderer in getattr(self, "pool", ()):
            if renderer.proc is not None:
                record(self.trace, f"child-{renderer.proc.pid}")
        super().close()


class TaskProbeFn(StageFn):
    """Passes samples through, recording which worker process got each task."""

    stage = "TaskProbe"

    def __init__(self, trace: str):
        self.trace = trace

    def process_sample(self, sample):
        record(self.trace, sample.lineage["task"])
        yield sample
