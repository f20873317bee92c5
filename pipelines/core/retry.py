"""`vlforge retry RUN_DIR`: re-run only the items that ended in an error, and merge them in.

Each error record keeps the input reference of its item (a URL, a single PDF page), so a
retry after, say, a network outage redoes exactly those items, not whole shards. What now
succeeds is written to new shards and replaces the error; what fails again stays an error.
The pipeline runs with the config and run settings that run.json recorded.
"""

from __future__ import annotations

from typing import Any, Sequence

from pipelines.core.completion import ensure_complete
from pipelines.core.config import Config, RunSettings
from pipelines.core.run_dir import RunDir, Task
from pipelines.core.runner import execute, pipeline_config


def recorded_settings(run: RunDir) -> tuple[str, Config, RunSettings]:
    """The pipeline, its config and its run settings as run.json recorded them.

    Runs recorded before typed configs kept the shard bounds inside the config
    (``shard_bounds``) and the task size at the top level; both are read too.
    """
    info = run.info()
    config = dict(info.get("config") or {})
    legacy_bounds = config.pop("shard_bounds", None) or {}
    settings = info.get("run") or {"task_size": info.get("task_size", 8), **legacy_bounds}
    return (info["pipeline"], pipeline_config(info["pipeline"], config),
            RunSettings.from_dict(settings))


def retry(out: str, beam_args: Sequence[str] = (), reasons: Sequence[str] = ()) -> dict[str, Any]:
    """Re-run only the items of `out` that ended in an error and merge what now succeeds.

    The pipeline runs with the config and run settings recorded in run.json (edit them
    there to retry with other settings, e.g. a longer timeout).
    """
    run = RunDir(out)
    pipeline, config, settings = recorded_settings(run)
    failed = [o for o in run.outcomes("error") if o.input_ref
              and (not reasons or o.reason in reasons)]
    if not failed:
        return run.finalize()
    attempt = 1 + sum(1 for a in run.info().get("attempts", []) if a["kind"] == "retry")
    size = settings.task_size
    tasks = [Task(f"r{attempt}-t{i // size:05d}", [o.input_ref for o in failed[i:i + size]])
             for i in range(0, len(failed), size)]
    run.record_attempt("retry", tasks)
    execute(pipeline, tasks, config, run.url, beam_args, settings)
    return ensure_complete(run, run.finalize())
