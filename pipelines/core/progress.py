"""A progress bar of tasks done / planned that works on every Beam runner.

The driver cannot see inside a remote engine, but every finished task leaves its done
marker in the run directory (``tasks/<task>.json``), wherever the run lives. A background
thread polls those markers and moves a tqdm bar on stderr; on a non-terminal stderr the bar
stays silent (tqdm's ``disable=None``), so ``--json`` output and logs are unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator, Sequence

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


@contextlib.contextmanager
def task_progress(run_url: str, task_ids: Sequence[str], label: str = "tasks",
                  poll_seconds: float = POLL_SECONDS) -> Iterator[None]:
    """Show ``label: done/planned`` for `task_ids` while the body runs."""
    from tqdm import tqdm

    from pipelines.core.run_dir import RunDir

    wanted = set(task_ids)
    stop = threading.Event()
    bar = tqdm(total=len(wanted), desc=label, unit="task", disable=None, leave=False)

    def poll() -> None:
        run = RunDir(run_url)  # its own filesystem handle: polling never blocks the driver
        while not stop.wait(poll_seconds):
            try:
                done = len(run.done_tasks() & wanted)
            except Exception as exc:  # noqa: BLE001 - a failed poll only delays the bar
                log.debug("progress poll failed: %s", exc)
                continue
            bar.update(done - bar.n)

    thread = threading.Thread(target=poll, name="task-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(poll_seconds + 5)
        bar.close()
