"""Runs any vlforge pipeline on any Beam runner, resumably, into a run directory.

A pipeline is a name, a list of input refs (JSON-able dicts) and a list of stages built
from a config dict. The driver splits the inputs into tasks, skips tasks already done,
builds ``Create(tasks) | Reshuffle | ExpandTask | stage... | WriteRun`` and finalizes the
run directory. `retry` re-runs only the failed items of a finished run.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable, Iterator, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.core.run_dir import RunDir, Task
from pipelines.core.sample import Sample, stable_key
from pipelines.core.stage import StageFn
from pipelines.core.write_run import WriteRun

log = logging.getLogger(__name__)

# pipeline name -> "module:function" returning the list of StageFns for a config dict.
# Looked up lazily so that `vlforge retry` can rebuild any pipeline from its run.json.
PIPELINES: dict[str, str] = {
    "images": "pipelines.images.pipeline:build_stages",
    "pdf": "pipelines.pdf.pipeline:build_stages",
    "web": "pipelines.web.pipeline:build_stages",
    "label": "pipelines.label.pipeline:build_stages",
    "sft": "pipelines.sft.pipeline:build_stages",
}

DEFAULT_BEAM_ARGS = ["--runner=DirectRunner"]


def input_ref(pipeline: str, locator: str, **fields: Any) -> dict[str, Any]:
    """A JSON-able input description; its id is stable for the same pipeline + locator."""
    input_id = stable_key(pipeline, locator)
    return {"input_id": input_id, "item_id": input_id, "locator": locator, **fields}


def seed_sample(pipeline: str, ref: dict[str, Any], task_id: str) -> Sample:
    """The payload-less Sample that carries an input into the first stage."""
    lineage = {"input_id": ref["input_id"], "item_id": ref.get("item_id", ref["input_id"]),
               "input_ref": ref, "task": task_id}
    if ref.get("parent_item"):
        lineage["parent_item"] = ref["parent_item"]
    return Sample.create(pipeline, ref["locator"], lineage=lineage)


def load_stage_builder(pipeline: str) -> Callable[[dict[str, Any]], list[StageFn]]:
    try:
        target = PIPELINES[pipeline]
    except KeyError:
        raise SystemExit(f"unknown pipeline {pipeline!r}; known: {', '.join(PIPELINES)}")
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


class ExpandTaskFn(beam.DoFn):
    """One task in, one seed Sample per input out (all within one `process` call)."""

    def __init__(self, pipeline: str):
        self.pipeline = pipeline

    def process(self, task: tuple[str, list[dict[str, Any]]]) -> Iterator[Sample]:
        task_id, refs = task
        for ref in refs:
            yield seed_sample(self.pipeline, ref, task_id)


def build_pipeline(p: beam.Pipeline, pipeline: str, tasks: Sequence[Task],
                   stages: Sequence[StageFn], run_url: str, **bounds: Any) -> None:
    """Add the whole chain to `p` (kept fused from ExpandTask to WriteRun)."""
    records = (
        p
        | "CreateTasks" >> beam.Create([(t.task_id, t.input_refs) for t in tasks])
        | "SpreadTasks" >> beam.Reshuffle()
        | "ExpandTasks" >> beam.ParDo(ExpandTaskFn(pipeline))
    )
    for stage in stages:
        records = records | stage.stage >> beam.ParDo(stage)
    _ = records | "WriteRun" >> WriteRun(run_url, pipeline, **bounds)


def run_pipeline(pipeline: str, refs: list[dict[str, Any]], config: dict[str, Any],
                 out: str, beam_args: Sequence[str] = (), task_size: int = 8,
                 overwrite: bool = False, **bounds: Any) -> dict[str, Any]:
    """Plan, run the pending tasks, finalize; returns the run's stats."""
    run = RunDir(out)
    config = {**config, "shard_bounds": bounds}
    tasks = run.plan(pipeline, refs, config, task_size=task_size, overwrite=overwrite)
    if tasks:
        log.info("%s: %d task(s) to run (%d inputs)", pipeline, len(tasks),
                 sum(len(t.input_refs) for t in tasks))
        run.record_attempt("run", tasks)
        _execute(pipeline, tasks, config, run.url, beam_args, bounds)
    else:
        log.info("%s: every task already done; finalizing", pipeline)
    return run.finalize()


def retry(out: str, beam_args: Sequence[str] = (), reasons: Sequence[str] = ()) -> dict[str, Any]:
    """Re-run only the items of `out` that ended in an error and merge what now succeeds."""
    run = RunDir(out)
    info = run.read_json("run.json")
    failed = [o for o in run.outcomes() if o.kind == "error" and o.input_ref
              and (not reasons or o.reason in reasons)]
    if not failed:
        return run.finalize()
    attempt = 1 + sum(1 for a in info.get("attempts", []) if a["kind"] == "retry")
    size = int(info.get("task_size", 8))
    tasks = [Task(f"r{attempt}-t{i // size:05d}", [o.input_ref for o in failed[i:i + size]])
             for i in range(0, len(failed), size)]
    run.record_attempt("retry", tasks)
    bounds = info.get("config", {}).get("shard_bounds", {})
    _execute(info["pipeline"], tasks, info.get("config", {}), run.url, beam_args, bounds)
    return run.finalize()


def _execute(pipeline: str, tasks: list[Task], config: dict[str, Any], run_url: str,
             beam_args: Sequence[str], bounds: dict[str, Any]) -> None:
    stages = load_stage_builder(pipeline)(config)
    options = PipelineOptions(list(beam_args) or DEFAULT_BEAM_ARGS)
    with beam.Pipeline(options=options) as p:
        build_pipeline(p, pipeline, tasks, stages, run_url, **bounds)
