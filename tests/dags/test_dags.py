"""The DAGs load, and each runs end to end with dag.test() on tiny inputs (SQLite, DirectRunner)."""

import json
import os
import subprocess
import sys

import pytest

from pipelines.app.demo_inputs import write_demo_documents
from pipelines.core.run_dir import RunDir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAG_IDS = {"web_shards", "pdf_shards", "label_and_sft", "handoff", "train_vlm", "synth_charts"}
DS = "2026-11-20"
FAST = {"ocr": "none"}

# real Airflow (SQLite, dag.test() in subprocesses): each DAG run takes tens of seconds
pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(ROOT, "dags"),
           "AIRFLOW__CORE__UNIT_TEST_MODE": "False", "PYTHONPATH": ROOT}
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    return env


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def run_dag(env, dag_id, conf):
    result = subprocess.run([sys.executable, "-m", "tests.dags.dag_runner", dag_id,
                             json.dumps(conf), DS], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    lines = [l for l in result.stdout.splitlines() if l.startswith("DAG_RESULT ")]
    assert lines, result.stdout[-3000:] + result.stderr[-3000:]
    outcome = json.loads(lines[-1][len("DAG_RESULT "):])
    assert outcome["state"] == "success", (outcome, result.stdout[-4000:])
    return outcome


def test_dagbag_loads_every_dag_without_errors(airflow_env):
    code = ("import json; from airflow.dag_processing.dagbag import DagBag; "
            f"b = DagBag({os.path.join(ROOT, 'dags')!r}); "
            "print(json.dumps({'errors': {k: str(v) for k, v in b.import_errors.items()}, "
            "'dags': sorted(b.dags)}))")
    out = subprocess.run([sys.executable, "-c", code], env=airflow_env, capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert set(info["dags"]) == DAG_IDS


def test_pdf_shards_runs_the_beam_operator_and_publishes(airflow_env, data_root):
    docs = write_demo_documents(str(data_root / "docs"))
    listing = data_root / "inputs" / "pdf" / f"{DS}.txt"
    listing.parent.mkdir(parents=True)
    listing.write_text("\n".join(docs) + "\n")
    outcome = run_dag(airflow_env, "pdf_shards", {
        "data_root": str(data_root), "beam_options": FAST, "vlforge_flags": ["--no-label"]})
    assert outcome["tasks"] == {"plan": "success", "run_pdf_pipeline": "success",
                                "publish": "success"}
    run = RunDir(str(data_root / "runs" / "pdf" / DS))
    assert run.complete
    stats = run.read_json("stats.json")
    assert stats["inputs"] == len(docs) and stats["written"] > 0 and stats["errors"] >= 1


def test_web_shards_crawls_a_local_site(airflow_env, data_root):
    from pipelines.web.testsite import serve_site

    server, base = serve_site()
    try:
        listing = data_root / "inputs" / "web" / f"{DS}.txt"
        listing.parent.mkdir(parents=True)
        listing.write_text(f"{base}/\n{base}/table\n{base}/private/secret\n")
        outcome = run_dag(airflow_env, "web_shards", {
            "data_root": str(data_root), "beam_options": {**FAST, "host-delay": 0},
            "vlforge_flags": ["--allow-private", "--no-label"]})
    finally:
        server.shutdown()
    assert outcome["tasks"]["publish"] == "success"
    stats = RunDir(str(data_root / "runs" / "web" / DS)).read_json("stats.json")
    assert stats["written"] == 2 and stats["dropped"] == 1


def test_a_missing_partition_is_skipped_not_failed(airflow_env, tmp_path):
    outcome = run_dag(airflow_env, "pdf_shards", {"data_root": str(tmp_path)})
    assert outcome["tasks"]["plan"] == "skipped"


def test_label_sft_handoff_and_training_chain(airflow_env, data_root):
    pdf_run = str(data_root / "runs" / "pdf" / DS)
    web_run = str(data_root / "runs" / "web" / DS)
    curated = run_dag(airflow_env, "label_and_sft", {"data_root": str(data_root),
                                                     "runs": [pdf_run, web_run]})
    assert curated["tasks"]["build_sft"] == "success"
    labeled = sorted(str(p) for p in (data_root / "runs" / "labeled").iterdir())
    sft = sorted(str(p) for p in (data_root / "runs" / "sft").iterdir())
    assert len(labeled) == 2 and len(sft) == 1
    for run in labeled + sft:
        assert RunDir(run).complete

    handed = run_dag(airflow_env, "handoff", {"data_root": str(data_root),
                                              "runs": labeled + sft})
    assert handed["tasks"]["publish"] == "success"
    records = list((data_root / "handoff").iterdir())
    assert len(records) == 1
    assert {r["run"] for r in json.loads(records[0].read_text())["runs"]} == set(labeled + sft)

    trained = run_dag(airflow_env, "train_vlm", {
        "data_root": str(data_root), "runs": labeled + sft,
        "max_steps": {"1": 2, "2": 2, "3": 2}})
    assert [trained["tasks"][t] for t in ("prepare", "stage1", "stage2", "stage3", "evaluate")] \
        == ["success"] * 5
    train_root = next((data_root / "train").iterdir())
    for stage in (1, 2, 3):
        assert (train_root / f"stage{stage}" / "model" / "config.json").exists()
    assert (train_root / "eval.json").exists()


def test_synth_charts_draws_and_publishes(airflow_env, tmp_path):
    outcome = run_dag(airflow_env, "synth_charts", {"data_root": str(tmp_path), "n": 2})
    assert outcome["tasks"]["draw"] == "success"
    [run] = list((tmp_path / "runs" / "synth").iterdir())
    assert RunDir(str(run)).manifest().num_rows == 2
