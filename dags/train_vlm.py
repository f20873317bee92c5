"""train_vlm: when new training data is handed off, train stage 1 -> 2 -> 3, then evaluate.

Scheduled on the ``vlforge.training_data`` asset (emitted by ``handoff``); a manual run
takes the ``runs`` param. Each stage is its own task writing
``DATA_ROOT/train/<run id>/stage<N>`` with ``--resume auto``, so a retried task continues
from its last checkpoint instead of starting over. Stage 1 and 2 read the non-SFT runs,
stage 3 the SFT runs (``pipeline == "sft"`` in their run.json) plus text-only dialogue.
Stages 2-3's language share comes from the ``text`` param, else from a corpus built from
the pretraining runs (``vlforge text build``); without either the DAG fails unless
``no_language_data`` asks for training without it. Evaluation reads the runs' held-out
(validation) split.
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
        "build_text": Param(True, type="boolean", description="without 'text': build the "
                            "corpus from the pretraining runs' main text (vlforge text build)"),
        "no_language_data": Param(False, type="boolean", description="explicitly train "
                                  "stages 2-3 without language-only data (--language-ratio 0)"),
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
        plan = {"root": root, "model": model, **split_runs(runs)}
        return {**plan, "text": language_corpus(params, plan)}

    def language_corpus(params: dict, plan: dict) -> list[str]:
        """Stages 2-3's language-only data: the 'text' param, else a corpus built from the
        pretraining runs; none at all only when 'no_language_data' says so (never silently)."""
        import json
        import os

        from pipelines.text.corpus import stats_path

        if params["text"]:
            return list(params["text"])
        if params["build_text"] and plan["pretrain"]:
            corpus = os.path.join(plan["root"], "text.jsonl")
            scheduling.run_vlforge("text", "build", *plan["pretrain"], "--out", corpus)
            with open(stats_path(corpus), encoding="utf-8") as handle:
                if json.load(handle)["documents_written"]:
                    return [corpus]
        if params["no_language_data"]:
            return []
        raise ValueError("no language-only corpus for stages 2-3: pass 'text', or runs whose "
                         "pages hold text (build_text), or set no_language_data to train "
                         "without the language share")

    def stage_task(stage: int):
        @task(task_id=f"stage{stage}")
        def train_stage(plan: dict, params=None) -> dict:
            import os

            data = plan["sft"] if stage == 3 else plan["pretrain"]
            # stages 2-3 mix in language-only data; none only when no_language_data says so
            text = (["--text", *plan["text"]] if plan["text"] else
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
        # the held-out split of every run: documents no stage trained on
        scheduling.run_vlforge("eval", "--model", plan["model"], "--split", "validation",
                               "--data", *(plan["sft"] + plan["pretrain"]), "--out", report)
        return report

    plan = prepare()
    for stage in (1, 2, 3):
        plan = stage_task(stage)(plan)
    evaluate(plan)


train_vlm()
