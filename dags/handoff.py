"""handoff: validate finished runs, de-duplicate them, and hand them to training.

A run is handed off only when ``vlforge audit`` finds every input accounted for, every
shard readable and matching the manifest (counts, sha256) and the manifest schema current.
Then ``vlforge dedup`` looks for duplicates across the runs being handed off (exact and
near, from their manifests; earlier runs win) and leaves each run a list of removed keys
that every trainer honours (``DATA_ROOT/dedup/<run id>`` holds the whole list). The
handoff is recorded in ``DATA_ROOT/handoff/<run id>.json`` and ``vlforge.training_data``
is emitted with the run list.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from pipelines.orchestration import scheduling

CURATED_RUNS = Asset(scheduling.CURATED_RUNS_ASSET)
TRAINING_DATA = Asset(scheduling.TRAINING_DATA_ASSET)


@dag(
    schedule=[CURATED_RUNS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "data_root": Param(scheduling.DEFAULT_DATA_ROOT, type="string"),
        "runs": Param([], type="array", description="run dirs for manual runs"),
        "dedup": Param(True, type="boolean", description="de-duplicate across the runs"),
        **scheduling.beam_params(),
    },
    doc_md=__doc__,
    tags=["vlforge", "handoff"],
)
def handoff():
    @task
    def collect(params=None, triggering_asset_events=None) -> list[str]:
        runs = scheduling.runs_from_events(triggering_asset_events, params["runs"])
        if not runs:
            raise ValueError("nothing to hand off: trigger with conf {'runs': [RUN_DIR, ...]}")
        return runs

    @task
    def validate(run: str) -> dict:
        from pipelines.orchestration.handoff import validate_run

        return validate_run(run)

    @task
    def dedup(checked: list[dict], params=None, run_id=None) -> list[dict]:
        import os

        checked = list(checked)
        if params["dedup"]:
            runs = [c["run"] for c in checked]
            out = os.path.join(params["data_root"], "dedup", scheduling.safe_name(run_id))
            flags = scheduling.beam_flags(params)
            scheduling.run_vlforge("dedup", *runs, "--out", out, *flags)
        return checked

    @task(outlets=[TRAINING_DATA])
    def publish(checked: list[dict], params=None, run_id=None, outlet_events=None) -> list[str]:
        from pipelines.orchestration.handoff import record_handoff

        runs = record_handoff(params["data_root"], run_id, list(checked))
        outlet_events[TRAINING_DATA].extra = {"runs": runs}
        return runs

    publish(dedup(validate.expand(run=collect())))


handoff()
