"""label_and_sft: relabel new runs by the current taxonomy and build the SFT set from them.

Scheduled on the ``vlforge.raw_runs`` asset (emitted by web_shards / pdf_shards); a manual
run takes the ``runs`` param instead. Labeled runs go to ``DATA_ROOT/runs/labeled/<kind>-<name>``,
the SFT set to ``DATA_ROOT/runs/sft/<run id>``; both are announced as
``vlforge.curated_runs`` for the handoff. Each step skips work whose output is complete.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from pipelines.orchestration import scheduling

RAW_RUNS = Asset(scheduling.RAW_RUNS_ASSET)
CURATED_RUNS = Asset(scheduling.CURATED_RUNS_ASSET)


@dag(
    schedule=[RAW_RUNS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=2)},
    params={
        "data_root": Param(scheduling.DEFAULT_DATA_ROOT, type="string"),
        "runs": Param([], type="array", description="run dirs for manual runs"),
        "mixture": Param(None, type=["null", "string"],
                         description="SFT mixture YAML (default: the bundled one)"),
        **scheduling.beam_params(),
    },
    doc_md=__doc__,
    tags=["vlforge", "data"],
)
def label_and_sft():
    @task
    def collect(params=None, triggering_asset_events=None) -> list[str]:
        runs = scheduling.runs_from_events(triggering_asset_events, params["runs"])
        if not runs:
            raise ValueError("no runs to label: trigger with conf {'runs': [RUN_DIR, ...]}")
        return runs

    @task
    def label(run: str, params=None) -> str:
        import os

        from pipelines.core.run_dir import RunDir

        # runs/pdf/<ds> and runs/web/<ds> share a basename: keep the kind in the name
        name = f"{os.path.basename(os.path.dirname(run))}-{os.path.basename(run)}"
        out = os.path.join(params["data_root"], "runs", "labeled", name)
        if not RunDir(out).complete:
            scheduling.run_vlforge("label", run, "--out", out, *scheduling.beam_flags(params))
        return out

    @task(outlets=[CURATED_RUNS])
    def build_sft(labeled: list[str], params=None, run_id=None, outlet_events=None) -> dict:
        import os

        from pipelines.core.run_dir import RunDir

        out = os.path.join(params["data_root"], "runs", "sft", scheduling.safe_name(run_id))
        if not RunDir(out).complete:
            mixture = ["--mixture", params["mixture"]] if params["mixture"] else []
            scheduling.run_vlforge("sft", "build", *labeled, "--out", out, *mixture,
                                   *scheduling.beam_flags(params))
        curated = {"runs": list(labeled), "sft": [out]}
        outlet_events[CURATED_RUNS].extra = {"runs": list(labeled) + [out], **curated}
        return curated

    build_sft(label.expand(run=collect()))


label_and_sft()
