"""web_shards and pdf_shards: turn one day's inputs into shards, then announce the run.

Each run takes its partition's input list (``DATA_ROOT/inputs/<kind>/<ds>.txt``: URLs for
web, paths for pdf, one a line) and writes ``DATA_ROOT/runs/<kind>/<ds>``. The Beam
pipeline runs through the Beam provider's operator: DirectRunner by default; set the
``runner`` param (or the Airflow Variable ``vlforge_beam_runner``) and ``beam_options`` to
run on Dataflow, Flink or Spark with no code change. Re-runs are idempotent: the pipeline
resumes its run directory and skips finished tasks.
"""

from __future__ import annotations

import sys

import pendulum
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
from airflow.sdk import Asset, Param, dag, task

from pipelines.orchestration import scheduling

RAW_RUNS = Asset(scheduling.RAW_RUNS_ASSET)


def shard_dag(dag_id: str, kind: str, command: str, what: str):
    """One scheduled DAG: plan the partition -> Beam pipeline -> audit and announce."""

    @dag(
        dag_id=dag_id,
        description=f"{what} into WebDataset shards, one partition per data interval",
        doc_md=__doc__,
        schedule="@daily",
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
        params={
            "data_root": Param(scheduling.DEFAULT_DATA_ROOT, type="string"),
            "runner": Param(None, type=["null", "string"], description="Beam runner; "
                            "default: Variable vlforge_beam_runner, else DirectRunner"),
            "beam_options": Param({}, type="object", description="extra Beam flags"),
            "task_size": Param(scheduling.DEFAULT_TASK_SIZE, type="integer", minimum=1),
            "vlforge_flags": Param([], type="array", description="e.g. ['--allow-private']"),
        },
        tags=["vlforge", "data"],
    )
    def shards():
        @task
        def plan(params=None, ds=None) -> dict:
            """Find the partition's input list; skip the run when there is none."""
            import os

            from airflow.exceptions import AirflowSkipException

            inputs = scheduling.partition_input(params["data_root"], kind, ds)
            if not os.path.exists(inputs):
                raise AirflowSkipException(f"no input list for {ds}: {inputs}")
            out = scheduling.partition_run(params["data_root"], kind, ds)
            return scheduling.beam_pipeline_options(params, command, [inputs], out)

        options = plan()
        pipeline = BeamRunPythonPipelineOperator(
            task_id=f"run_{command}_pipeline",
            py_file=scheduling.launcher_path(),
            py_interpreter=sys.executable,
            runner="{{ params.runner or var.value.get('vlforge_beam_runner', 'DirectRunner') }}",
            pipeline_options=options,
        )

        @task(outlets=[RAW_RUNS])
        def publish(options: dict, outlet_events=None) -> str:
            """Audit the run (every input accounted for) and announce it downstream."""
            from pipelines.core.audit import audit_run, format_report

            report = audit_run(options["out"])
            if not report.ok:
                raise RuntimeError(format_report(report))
            outlet_events[RAW_RUNS].extra = {"runs": [options["out"]], "kind": kind}
            return options["out"]

        options >> pipeline >> publish(options)

    return shards()


web_shards = shard_dag("web_shards", "web", "crawl", "Screenshot the day's URL list")
pdf_shards = shard_dag("pdf_shards", "pdf", "pdf", "Render the day's PDFs and e-books")
