"""Runs any vlforge pipeline on any Beam runner, resumably, into a run directory.

A pipeline is a name, a list of input refs (JSON-able dicts) and a list of stages built
from its typed config (`pipelines.core.config`; a dict is read into the pipeline's config
class). Settings are validated before anything runs and recorded in run.json, with every
default filled in. The driver splits the inputs into tasks, skips tasks already done,
builds ``ReadTasks | ExpandTask | stage... | WriteRun`` and finalizes the
run directory. `retry` re-runs only the failed items of a finished run, with the settings
run.json recorded (`pipelines.core.retry`).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.core.collector import end_startup
from pipelines.core.completion import ensure_complete
from pipelines.core.config import Config, ConfigError, RunSettings, validate_all
from pipelines.core.engines import DEFAULT_BEAM_ARGS as DEFAULT_ENGINE_ARGS
from pipelines.core.engines import beam_options, passes_bundle_end_records, runner_name
from pipelines.core.progress import task_progress
from pipelines.core.run_dir import RunDir, Task
from pipelines.core.sample import Sample, stable_key

if TYPE_CHECKING:
    from pipelines.core.stage import StageFn

# Apache Beam is imported when tasks run (`execute`), not with this module: planning, the
# settings' checks and `vlforge COMMAND --help` do without it, and `vlforge` can make that
# import lean first (`pipelines.core.beam_import`). The graph is in `pipelines.core.task_graph`.

log = logging.getLogger(__name__)

# pipeline name -> "module:function" returning the list of StageFns for its config.
# Looked up lazily so that `vlforge retry` can rebuild any pipeline from its run.json.
PIPELINES: dict[str, str] = {
    "images": "pipelines.images.pipeline:build_stages",
    "pdf": "pipelines.pdf.pipeline:build_stages",
    "web": "pipelines.web.pipeline:build_stages",
    "label": "pipelines.label.pipeline:build_stages",
    "sft": "pipelines.sft.pipeline:build_stages",
    "synth": "pipelines.charts.synth_pipeline:build_stages",
}
# pipeline name -> "module:Class", its typed config (a `pipelines.core.config.Config`).
CONFIGS: dict[str, str] = {
    "images": "pipelines.images.config:ImagesConfig",
    "pdf": "pipelines.pdf.config:PdfConfig",
    "web": "pipelines.web.config:WebConfig",
    "label": "pipelines.label.config:LabelConfig",
    "sft": "pipelines.sft.config:SftConfig",
    "synth": "pipelines.charts.synth_config:SynthConfig",
}

DEFAULT_BEAM_ARGS = DEFAULT_ENGINE_ARGS  # kept for importers; see pipelines.core.engines


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


def load_stage_builder(pipeline: str) -> Callable[[Config], list[StageFn]]:
    return _load(PIPELINES, pipeline)


def pipeline_config(pipeline: str, config: Config | Mapping[str, Any] | None) -> Config:
    """`config` as the pipeline's typed config; a dict is read with `from_dict` (unknown
    keys and bad values raise one `ConfigError`)."""
    cls: type[Config] = _load(CONFIGS, pipeline)
    if isinstance(config, cls):
        return config
    if isinstance(config, Config):
        raise ConfigError([f"a {type(config).__name__} given to the {pipeline!r} pipeline, "
                           f"which takes a {cls.__name__}"])
    return cls.from_dict(config)


def _load(table: dict[str, str], pipeline: str) -> Any:
    try:
        target = table[pipeline]
    except KeyError:
        raise SystemExit(f"unknown pipeline {pipeline!r}; known: {', '.join(table)}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def run_pipeline(pipeline: str, refs: Iterable[dict[str, Any]],
                 config: Config | Mapping[str, Any] | None, out: str,
                 beam_args: Sequence[str] = (), task_size: int = 8, overwrite: bool = False,
                 drop_duplicates: bool = False, **bounds: Any) -> dict[str, Any]:
    """Check the settings, plan, run the pending tasks, finalize; returns the run's stats.

    `refs` may be a generator of any length: planning streams it (the driver holds a
    bounded batch of refs, `RunDir.plan_pending`), and with `drop_duplicates` a ref whose
    input id was already given is skipped rather than refused. `config` is the pipeline's
    config (or a dict of its fields); `task_size` and the shard `bounds` (``max_bytes``,
    ``max_count``) make its `RunSettings`. Every problem with either raises one
    `ConfigError` before the run directory is touched.
    """
    settings = RunSettings(task_size=task_size, **bounds)
    try:
        typed = pipeline_config(pipeline, config)
    except ConfigError as exc:  # report the run settings' problems in the same error
        raise ConfigError(exc.problems + settings.check()) from None
    typed.start_ahead(beam_args)  # beside the checks, planning and the runner's start
    validate_all(typed, settings)
    run = RunDir(out)
    pending = run.plan_pending(pipeline, refs, typed.to_dict(), task_size=settings.task_size,
                               overwrite=overwrite, settings=settings.to_dict(),
                               drop_duplicates=drop_duplicates)
    if len(pending):
        log.info("%s: %d task(s) to run (%d inputs)", pipeline, len(pending), pending.inputs)
        run.record_attempt("run", pending.task_ids())
        with task_progress(run.url, len(pending), label=pipeline):
            execute(pipeline, pending, typed, run.url, beam_args, settings)
    else:
        log.info("%s: every task already done; finalizing", pipeline)
    return ensure_complete(run, run.finalize())


def execute(pipeline: str, tasks: Collection[Task], config: Config, run_url: str,
            beam_args: Sequence[str], settings: RunSettings) -> None:
    """Run `tasks` of `pipeline` on Beam into the run at `run_url` (no planning, no
    finalizing: `run_pipeline` and `retry` do those). `tasks` is iterated once, to write
    the task lists (a `PendingTasks` streams them)."""
    if runner_name(beam_args) != "DirectRunner":
        # another engine may need what a lean import of Beam left out (GCS, Dataflow)
        from pipelines.core.beam_import import complete_beam_import

        complete_beam_import()
    import apache_beam as beam

    from pipelines.core import task_graph

    stages = load_stage_builder(pipeline)(for_runner(config, beam_args))
    # Start-up's imports are done: the collector, if the CLI paused it, is back on (with
    # what is loaded frozen) before the graph, the runner and the stages make garbage
    end_startup()
    options = beam_options(beam_args, len(tasks))  # runner aliases, engine defaults
    with beam.Pipeline(options=options) as p:
        task_graph.build_pipeline(p, pipeline, tasks, stages, run_url, **settings.shard_bounds)


def for_runner(config: Config, beam_args: Sequence[str]) -> Config:
    """`config` as this runner may run it: ``overlap_tasks`` (pdf, web) None becomes on
    where the runner passes on a stage's ``finish_bundle`` records and off elsewhere, and
    on is turned off (with a warning) where they would be lost. Decided at every run, not
    recorded: run.json keeps None, so a retry on another engine decides for that engine."""
    wanted = getattr(config, "overlap_tasks", False)
    if wanted is False:
        return config
    allowed = passes_bundle_end_records(beam_args)
    if wanted and not allowed:
        log.warning("overlap_tasks is off on this runner: it drops what a stage emits at "
                    "bundle end, where overlapping tasks leave their last records")
    return dataclasses.replace(config, overlap_tasks=allowed)


def __getattr__(name: str) -> Any:
    """`retry` and `recorded_settings` live in `pipelines.core.retry` (which imports this
    module); looked up lazily so ``from pipelines.core.runner import retry`` still works."""
    if name in ("retry", "recorded_settings"):
        from pipelines.core import retry as retry_module

        return getattr(retry_module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
