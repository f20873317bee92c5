"""Pauses of the cyclic garbage collector where it can only waste work.

Some phases of a `vlforge` process allocate a great many long-lived or acyclic objects,
and each allocation burst sets off collections that walk them all and find next to
nothing:

- a pipeline command's start: ~1,500 modules imported (Apache Beam, pyarrow, pandas,
  numpy) and the run planned, ~0.1 CPU-s of a one-page run's ~1 s (`bench/startup.py`);
- Apache Beam's own import (`pipelines.core.beam_import`), wherever it happens;
- unpickling a PDF page's message in the Beam process (`pipelines.pdf.isolation`):
  thousands of small lists and dicts (words, lines, drawings) with no cycles among them.

`paused` is the one mechanism: a pause counted across threads and callers, so one holder
that is done never turns the collector on under another, and a collector the program
itself turned off stays off (the first holder finds it off, and nobody turns it on).

`pause_for_startup` (the CLI, first thing for a pipeline command) and `end_startup` (the
runner, once Beam and the stages are imported, before it builds the graph; the CLI again
on its way out, whatever happened) hold that pause across two modules; `end_startup` also
freezes what is loaded (out of every later collection's sight, as
`pipelines.core.worker_cache.freeze_loaded_objects` does at a stage's first set-up).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

_lock = threading.Lock()
_holders = 0  # callers inside a pause now
_turned_off = False  # the pause turned the collector off (it was on): it turns it back on
_startup = False  # True while the start-up pause is held


def _acquire() -> bool:
    """Join the pause; True when the collector was on (the pause is what keeps it off)."""
    global _holders, _turned_off
    with _lock:
        if not _holders:
            _turned_off = gc.isenabled()
            if _turned_off:
                gc.disable()
        _holders += 1
        return _turned_off


def _release(freeze: bool = False) -> None:
    """Leave the pause; the last holder out turns the collector back on, if the pause
    turned it off (after `gc.freeze`, where asked)."""
    global _holders, _turned_off
    with _lock:
        _holders -= 1
        if freeze:
            gc.freeze()
        if not _holders and _turned_off:
            _turned_off = False
            gc.enable()


@contextlib.contextmanager
def paused(freeze: bool = False) -> Iterator[bool]:
    """The collector off while the block runs (and while any other holder is inside);
    yields whether it was on. `freeze`: what is alive at the end is frozen (it lives until
    exit: later collections need not walk it), where the collector was on."""
    was_on = _acquire()
    try:
        yield was_on
    finally:
        _release(freeze=freeze and was_on)


def pause_for_startup() -> bool:
    """Turn the collector off until `end_startup`; False (nothing done) when it is
    already off or the start-up pause is held."""
    global _startup
    with _lock:
        if _startup or not gc.isenabled():
            return False
        _startup = True
    _acquire()
    return True


def end_startup() -> bool:
    """End the start-up pause: freeze what is loaded, turn the collector back on (unless
    another holder is inside a pause); False when there was no start-up pause to end."""
    global _startup
    with _lock:
        if not _startup:
            return False
        _startup = False
    # Frozen, not collected: a full collection here is the cost the pause avoids. What
    # start-up left as cyclic garbage is kept for the process's life (~1,600 objects in
    # a one-page `vlforge pdf`: a collection here found that many).
    _release(freeze=True)
    log.debug("start-up over: %d objects frozen, collector %s", gc.get_freeze_count(),
              "on" if gc.isenabled() else "off")
    return True
