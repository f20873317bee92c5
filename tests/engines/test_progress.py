"""The progress of a real run (DirectRunner): tasks done / planned, ending at the total."""

from __future__ import annotations

import logging
import re

from pipelines.core import progress
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import run_pipeline
from pipelines.images.pipeline import image_refs
from tests.pipelines.fixtures import write_images

LINE = re.compile(r"^images: (\d+)/(\d+) tasks$")


def progress_counts(caplog) -> list[tuple[int, int]]:
    return [tuple(int(g) for g in LINE.match(r.getMessage()).groups())
            for r in caplog.records if r.name == progress.__name__]


def test_progress_counts_the_planned_tasks_and_ends_at_the_total(tmp_path, monkeypatch,
                                                                 caplog):
    caplog.set_level(logging.INFO, logger=progress.__name__)
    refs = image_refs(write_images(str(tmp_path / "in"), 5))
    out = str(tmp_path / "run")
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.02)  # poll while the engine runs
    run_pipeline("images", refs, {}, out, task_size=1)
    counts = progress_counts(caplog)
    assert counts and {total for _, total in counts} == {5}
    done = [d for d, _ in counts]
    assert done == sorted(done) and len(set(done)) == len(done)  # only moves forward
    assert counts[-1] == (5, 5)

    # a re-run plans only the reopened tasks: its bar counts those, not the whole run
    run = RunDir(out)
    for task in ("t00001", "t00004"):
        run.fs.rm(run.path("tasks", f"{task}.json"))
    caplog.clear()
    monkeypatch.setattr(progress, "POLL_SECONDS", 3600.0)  # only the final count
    run_pipeline("images", refs, {}, out, task_size=1)
    assert progress_counts(caplog) == [(2, 2)]
