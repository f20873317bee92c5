"""Run one DAG with `dag.test()` in a fresh process (Airflow's settings are process-global).

    python -m tests.dags.dag_runner DAG_ID CONF_JSON LOGICAL_DATE

Expects AIRFLOW_HOME to hold a migrated SQLite database. Prints one JSON line:
{"state": ..., "tasks": {task_id: state}, "import_errors": {...}}.
"""

import json
import os
import sys

DAGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "dags")


def main() -> None:
    dag_id, conf, logical_date = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(DAGS)
    if bag.import_errors:
        print(json.dumps({"state": "import_error", "import_errors": bag.import_errors}))
        return
    run = bag.dags[dag_id].test(logical_date=pendulum.parse(logical_date), run_conf=conf)
    tasks = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state)
             for ti in run.get_task_instances()}
    print("DAG_RESULT " + json.dumps({"state": str(run.state), "tasks": tasks}))


if __name__ == "__main__":
    main()
