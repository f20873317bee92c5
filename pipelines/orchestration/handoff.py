"""The handoff contract between data jobs and training, as functions a DAG (or a person) calls.

`validate_run` finalizes a run (rewrites manifest, stats and ``_SUCCESS``: idempotent)
and audits it (accounting, shards, manifest columns); `record_handoff` writes what was
handed off and when.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pipelines.core.audit import audit_run, format_report
from pipelines.core.run_dir import RunDir, RunDirError


class HandoffError(RunDirError):
    """A run that must not reach training."""


def validate_run(url: str) -> dict[str, Any]:
    """Finalize, audit and schema-check one run; returns its summary or raises HandoffError."""
    run = RunDir(url)
    if not run.exists("run.json"):
        raise HandoffError(f"{url}: not a run directory")
    stats = run.finalize()
    if not run.complete:
        raise HandoffError(f"{url}: {stats['tasks']['total'] - stats['tasks']['done']} "
                           "task(s) unfinished; re-run the pipeline to complete it")
    report = audit_run(url)  # also checks the manifest's columns
    if not report.ok:
        raise HandoffError(format_report(report))
    info = run.info()
    return {"run": url, "pipeline": info.get("pipeline"), "written": stats["written"],
            "derived": stats["derived"], "dropped": stats["dropped"],
            "errors": stats["errors"], "bytes": stats["bytes"]}


def record_handoff(data_root: str, handoff_id: str, checked: list[dict[str, Any]]) -> list[str]:
    """Write ``DATA_ROOT/handoff/<id>.json`` (what was handed off, when); returns the runs."""
    directory = os.path.join(data_root, "handoff")
    os.makedirs(directory, exist_ok=True)
    from pipelines.orchestration.scheduling import safe_name

    record = {"handed_off": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "runs": checked}
    with open(os.path.join(directory, f"{safe_name(handoff_id)}.json"), "w") as handle:
        json.dump(record, handle, indent=2)
    return [item["run"] for item in checked]
