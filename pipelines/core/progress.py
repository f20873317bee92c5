"""A progress bar of tasks done / planned that works on every Beam runner.

The driver cannot see inside a remote engine, but every finished task leaves its done
marker in the run directory (``tasks/<task>.json``), wherever the run lives. A background
thread polls those markers and moves a tqdm bar on stderr; on a non-terminal stderr the bar
stays silent (tqdm's ``disable=None``), so ``--json`` output is unchanged. The count is
also logged (INFO, ``label: done/total tasks``, each tenth of the run and its end), and a
last poll after the engine returns makes the final count the real one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


@contextlib.contextmanager
def task_progress(run_url: str, total: int, label: str = "tasks",
                  poll_seconds: float | None = None) -> Iterator[None]:
    """Show ``label: done/total`` while the body runs `total` pending tasks of the run.

    Done counts the markers that appear after entry (markers only appear while an engine
    runs; the tasks already done were not planned), capped at `total`. `poll_seconds`
    defaults to the module's `POLL_SECONDS`.
    """
    from tqdm import tqdm

    from pipelines.core.run_dir import RunDir

    interval = POLL_SECONDS if poll_seconds is None else poll_seconds
    run = RunDir(run_url)  # its own filesystem handle: polling never blocks the driver
    before = len(run.done_tasks())
    stop = threading.Event()
    bar = tqdm(total=total, desc=label, unit="task", disable=None, leave=False)
    lock = threading.Lock()
    shown = [0]  # our own count: a disabled tqdm bar (no terminal) keeps n at 0

    def poll() -> None:
        try:
            done = min(total, max(0, len(run.done_tasks()) - before))
        except Exception as exc:  # noqa: BLE001 - a failed poll only delays the bar
            log.debug("progress poll failed: %s", exc)
            return
        with lock:
            if done > shown[0]:
                # a log line per tenth of the run and at its end, not per task
                if done == total or done * 10 // total > shown[0] * 10 // total:
                    log.info("%s: %d/%d tasks", label, done, total)
                bar.update(done - shown[0])
                shown[0] = done

    def loop() -> None:
        while not stop.wait(interval):
            poll()

    thread = threading.Thread(target=loop, name="task-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(interval + 5)
        poll()  # the engine has returned: show where it really ended
        bar.close()
