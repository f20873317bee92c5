"""Plain-Python helpers behind the Airflow DAGs in ``dags/`` (no Airflow import here).

The DAGs stay thin: they decide *when*; these functions decide *where* (one directory per
partition, named by the data interval) and *how* (runner options from DAG params or
Airflow Variables, so DirectRunner becomes Dataflow/Flink/Spark without a code change).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pipelines.orchestration.launch
from pipelines.core.config import RunSettings

# Asset names: one DAG's output is the next one's schedule.
RAW_RUNS_ASSET = "vlforge.raw_runs"          # web_shards / pdf_shards -> label_and_sft
CURATED_RUNS_ASSET = "vlforge.curated_runs"  # label_and_sft -> handoff
TRAINING_DATA_ASSET = "vlforge.training_data"  # handoff -> train_vlm

DEFAULT_DATA_ROOT = os.path.expanduser("~/vlforge-data")
DEFAULT_TASK_SIZE = RunSettings.task_size  # the DAG param's default is the CLI's


def launcher_path() -> str:
    """The file Airflow's Beam operator runs (see `pipelines.orchestration.launch`)."""
    return os.path.abspath(pipelines.orchestration.launch.__file__)


def partition_input(data_root: str, kind: str, partition: str) -> str:
    """Where a partition's input list lives: ``ROOT/inputs/<kind>/<partition>.txt``."""
    return os.path.join(data_root, "inputs", kind, f"{partition}.txt")


def partition_run(data_root: str, stage: str, partition: str) -> str:
    """Where a partition's run directory goes: ``ROOT/runs/<stage>/<partition>``."""
    return os.path.join(data_root, "runs", stage, partition)


def beam_pipeline_options(params: dict[str, Any], pipeline: str, inputs: list[str],
                          out: str) -> dict[str, Any]:
    """Options for `BeamRunPythonPipelineOperator`: the launcher's flags + runner flags.

    ``params["beam_options"]`` (a dict, or a JSON string from an Airflow Variable) adds any
    runner's flags, e.g. ``{"project": "p", "region": "r", "temp_location": "gs://..."}``.
    """
    extra = params.get("beam_options") or {}
    if isinstance(extra, str):
        extra = json.loads(extra or "{}")
    options = {"pipeline": pipeline, "input": inputs, "out": out,
               "task-size": int(params.get("task_size", DEFAULT_TASK_SIZE))}
    for flag in params.get("vlforge_flags") or []:
        options[flag.lstrip("-")] = True
    options.update(extra)
    return options


RUNNER_VARIABLE = "vlforge_beam_runner"
OPTIONS_VARIABLE = "vlforge_beam_options"


def beam_params() -> dict[str, Any]:
    """The ``runner`` and ``beam_options`` Airflow params every DAG that runs a Beam
    pipeline through the vlforge CLI declares (read back by `beam_flags`)."""
    from airflow.sdk import Param

    return {
        "runner": Param(None, type=["null", "string"], description="Beam runner, e.g. "
                        "DaskRunner, DataflowRunner; default: Variable vlforge_beam_runner, "
                        "else DirectRunner"),
        "beam_options": Param({}, type="object", description="runner flags, e.g. "
                              "{'dask_client_address': 'tcp://scheduler:8786'}; default: "
                              "Variable vlforge_beam_options (JSON)"),
    }


def beam_flags(params: dict[str, Any], variables: Any = None) -> list[str]:
    """Beam flags for a vlforge command run by a DAG task: ``params["runner"]`` (else the
    Airflow Variable ``vlforge_beam_runner``; none: DirectRunner) and ``params["beam_options"]``
    (else the Variable ``vlforge_beam_options``, JSON), e.g. ``{"dask_client_address":
    "tcp://scheduler:8786"}`` or ``{"project": "p", "region": "r", "temp_location": ...}``.
    `variables` is anything with ``get(name, default)`` (Airflow's ``Variable`` by default).
    """
    if variables is None:
        from airflow.sdk import Variable as variables
    runner = params.get("runner") or variables.get(RUNNER_VARIABLE, None)
    options = params.get("beam_options") or variables.get(OPTIONS_VARIABLE, None) or {}
    if isinstance(options, str):
        options = json.loads(options or "{}")
    flags = [f"--runner={runner}"] if runner else []
    for key, value in options.items():
        if key == "runner":
            flags = [f"--runner={value}"] + [f for f in flags if not f.startswith("--runner=")]
        elif value is True:
            flags.append(f"--{key}")
        elif value not in (None, False):
            flags.append(f"--{key}={value}")
    return flags


def runs_from_events(triggering_asset_events: Any, fallback: list[str] | None = None) -> list[str]:
    """Run directories named by the asset events that triggered a DAG run (``extra["runs"]``),
    or `fallback` (the DAG's ``runs`` param) for manual and test runs."""
    runs: list[str] = []
    for events in (triggering_asset_events or {}).values():
        for event in events:
            runs.extend((event.extra or {}).get("runs", []))
    return list(dict.fromkeys(runs or list(fallback or [])))


def safe_name(run_id: str) -> str:
    """An Airflow run id as a directory name."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)


def run_vlforge(*argv: str) -> None:
    """Run one vlforge command in-process; a non-zero exit fails the Airflow task."""
    from pipelines.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse exits on bad arguments; a task must fail instead
        code = exc.code if isinstance(exc.code, int) else 2
    if code:
        raise RuntimeError(f"vlforge {' '.join(map(str, argv))} exited with status {code}")
