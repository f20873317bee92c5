"""synth_charts: draw synthetic charts with the code that drew them (chart→code, chart→table).

A manual DAG (trigger it with conf ``{"n": 500, "seed": 7}``): ``vlforge charts synth``
writes ``DATA_ROOT/runs/synth/<ds>-seed<seed>`` (matplotlib and plotly in turn), the run is
audited and announced on the raw-runs asset like any crawl or PDF run. Re-running resumes
the run directory and skips finished tasks.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from pipelines.orchestration import scheduling

RAW_RUNS = Asset(scheduling.RAW_RUNS_ASSET)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    params={
        "data_root": Param(scheduling.DEFAULT_DATA_ROOT, type="string"),
        "n": Param(200, type="integer", minimum=1, description="charts to draw"),
        "seed": Param(0, type="integer", description="seed of the chart specs"),
        "families": Param(["matplotlib", "plotly"], type="array"),
        **scheduling.beam_params(),
    },
    doc_md=__doc__,
    tags=["vlforge", "data"],
)
def synth_charts():
    @task(outlets=[RAW_RUNS])
    def draw(params=None, ds=None, outlet_events=None) -> str:
        from pipelines.core.audit import audit_run, format_report

        out = scheduling.partition_run(params["data_root"], "synth", f"{ds}-seed{params['seed']}")
        scheduling.run_vlforge("charts", "synth", "--n", params["n"], "--seed", params["seed"],
                               "--families", *params["families"], "--out", out,
                               *scheduling.beam_flags(params))
        report = audit_run(out)
        if not report.ok:
            raise RuntimeError(format_report(report))
        outlet_events[RAW_RUNS].extra = {"runs": [out], "kind": "synth"}
        return out

    draw()


synth_charts()
