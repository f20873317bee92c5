"""The cyclic garbage collector paused while a `vlforge` process starts.

A pipeline command imports ~1,500 modules (Apache Beam, pyarrow, pandas, numpy) and plans
its run before the first task runs. Every import allocates thousands of objects, so the
collector runs hundreds of times meanwhile, two full collections among them that walk
everything loaded so far: ~0.1 CPU-s of a one-page run's ~1 s (`bench/startup.py`), all
of it before the pipeline's graph is built, and all of it finding next to nothing
(modules, classes and functions live until exit; planning's garbage is acyclic and freed
by reference counts).

`pause_for_startup` (the CLI, first thing for a pipeline command) turns the collector off;
`end_startup` (the runner, once Beam and the stages are imported, before it builds the
graph; the CLI again on its way out, whatever happened) freezes what is loaded (out of
every later collection's sight, as `pipelines.core.worker_cache.freeze_loaded_objects`
does at a stage's first set-up) and turns the collector back on. Only a pause this module
made is ended: a collector that an embedding program turned off stays off.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)

_lock = threading.Lock()
_paused = False  # True while a pause of this module's is in force


def pause_for_startup() -> bool:
    """Turn the collector off until `end_startup`; False (nothing done) when it is
    already off or paused."""
    global _paused
    with _lock:
        if _paused or not gc.isenabled():
            return False
        gc.disable()
        _paused = True
        return True


def end_startup() -> bool:
    """End this module's pause: freeze what is loaded, turn the collector back on; False
    when there was no pause to end (then nothing is frozen or turned on)."""
    global _paused
    with _lock:
        if not _paused:
            return False
        _paused = False
        # Frozen, not collected: a full collection here is the cost the pause avoids.
        # What start-up left as cyclic garbage is kept for the process's life (~1,600
        # objects in a one-page `vlforge pdf`: a collection here found that many).
        gc.freeze()
        gc.enable()
    log.debug("start-up over: %d objects frozen, collector on", gc.get_freeze_count())
    return True


def startup_paused() -> bool:
    """Whether this module's pause is in force."""
    return _paused
