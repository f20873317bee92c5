"""train_vlm: when new training data is handed off, train stage 1 -> 2 -> 3, then evaluate.

Scheduled on the ``vlforge.training_data`` asset (emitted by ``handoff``); a manual run
takes the ``runs`` param. Each stage is its own task writing
``DATA_ROOT/train/<run id>/stage<N>`` with ``--resume auto``, so a retried task continues
from its last checkpoint instead of starting over. Stage 1 and 2 read the non-SFT runs,
stage 3 the SFT runs (``pipeline == "sft"`` in their run.json) plus text-only dialogue.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from pipelines.orchestration import scheduling

TRAINING_DATA = Asset(scheduling.TRAINING_DATA_ASSET)


@dag(
    schedule=[TRAINING_DATA],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    params={
        "data_root": Param(scheduling.DEFAULT_DATA_ROOT, type="string"),
        "runs": Param([], type="array", description="run dirs for manual runs"),
        "base_model": Param(None, type=["null", "string"],
                            description="model dir to start from (default: init the preset)"),
        "preset": Param("tiny", type="string"),
        "text": Param([], type="array", description="language-only corpora (stage 2, 3)"),
        "max_steps": Param({"1": 20, "2": 20, "3": 20}, type="object"),
    },
    doc_md=__doc__,
    tags=["vlforge", "training"],
)
def train_vlm():
    @task
    def prepare(params=None, run_id=None, triggering_asset_events=None) -> dict:
        import os

        from pipelines.orchestration.training_plan import split_runs

        runs = scheduling.runs_from_events(triggering_asset_events, params["runs"])
        if not runs:
            raise ValueError("no training data: trigger with conf {'runs': [RUN_DIR, ...]}")
        root = os.path.join(params["data_root"], "train", scheduling.safe_name(run_id))
        model = params["base_model"] or os.path.join(root, "init")
        if not params["base_model"] and not os.path.exists(os.path.join(model, "config.json")):
            scheduling.run_vlforge("model", "init", "--preset", params["preset"], "--out", model)
        return {"root": root, "model": model, **split_runs(runs)}

    def stage_task(stage: int):
        @task(task_id=f"stage{stage}")
        def train_stage(plan: dict, params=None) -> dict:
            import os

            data = plan["sft"] if stage == 3 else plan["pretrain"]
            # stages 2-3 mix in language-only data; without a corpus they train on runs only
            text = (["--text", *params["text"]] if params["text"] else
                    ["--language-ratio", "0"]) if stage > 1 else []
            out = os.path.join(plan["root"], f"stage{stage}")
            steps = str(params["max_steps"].get(str(stage), 20))
            scheduling.run_vlforge("train", "--stage", stage, "--model", plan["model"],
                                   "--data", *data, *text, "--out", out, "--max-steps", steps,
                                   "--resume", "auto", "--no-progress")
            return {**plan, "model": os.path.join(out, "model")}

        return train_stage

    @task
    def evaluate(plan: dict) -> str:
        import os

        report = os.path.join(plan["root"], "eval.json")
        scheduling.run_vlforge("eval", "--model", plan["model"],
                               "--data", *(plan["sft"] + plan["pretrain"]), "--out", report)
        return report

    plan = prepare()
    for stage in (1, 2, 3):
        plan = stage_task(stage)(plan)
    evaluate(plan)


train_vlm()
