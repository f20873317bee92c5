"""Every pipeline DAG takes the Beam runner and its options as params / Variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.orchestration.scheduling import beam_flags


class Variables(dict):
    def get(self, name, default=None):  # Airflow's Variable.get signature
        return super().get(name, default)


def test_params_win_over_variables_and_variables_over_nothing():
    variables = Variables(vlforge_beam_runner="DataflowRunner",
                          vlforge_beam_options='{"project": "p", "region": "r"}')
    assert beam_flags({}, Variables()) == []
    assert beam_flags({}, variables) == ["--runner=DataflowRunner", "--project=p", "--region=r"]
    params = {"runner": "DaskRunner",
              "beam_options": {"dask_client_address": "tcp://s:8786", "flag": True,
                               "off": False}}
    assert beam_flags(params, variables) == ["--runner=DaskRunner",
                                             "--dask_client_address=tcp://s:8786", "--flag"]
    assert beam_flags({"beam_options": {"runner": "PortableRunner"}}, Variables()) == [
        "--runner=PortableRunner"]


@pytest.mark.airflow
@pytest.mark.slow
def test_every_pipeline_dag_has_runner_params(tmp_path):
    pytest.importorskip("airflow")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"), "PYTHONPATH": str(root)}
    code = ("import json; from airflow.dag_processing.dagbag import DagBag; "
            f"b = DagBag({str(root / 'dags')!r}); "
            "print(json.dumps({'errors': {k: str(v) for k, v in b.import_errors.items()}, "
            "'params': {d: sorted(dag.params) for d, dag in b.dags.items()}}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, cwd=root)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    pipeline_dags = {d: p for d, p in info["params"].items() if d != "train_vlm"}
    assert len(pipeline_dags) >= 4, info
    for dag_id, params in pipeline_dags.items():
        assert {"runner", "beam_options"} <= set(params), dag_id
