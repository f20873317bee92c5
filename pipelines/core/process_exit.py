"""Ending a finished `vlforge` process without the interpreter's teardown, where nothing can
be lost by it.

When a command returns, the interpreter's exit still tears down every module a run loaded
(~1,500 with Apache Beam: each module's namespace cleared and its objects freed one by
one) before the process ends; the caller of a one-page run waits for it (the "interpreter
exit" phase of `bench/startup.py`). That teardown writes nothing: what a run writes is
written by then, *if* every file it opened is closed. `exit_now` ends the process at once
(``os._exit``) only when that holds, and otherwise returns so the normal exit runs:

- no thread other than the main one is alive that the interpreter would wait for (a
  non-daemon thread still writing);
- no regular file is open for writing in this process, apart from stdin/stdout/stderr
  (a file object never closed keeps its descriptor open, and its buffer may hold
  unwritten bytes), read from ``/proc/self/fdinfo`` (elsewhere than Linux: never);
- what would run at a normal exit and can write runs first: the ``atexit`` handlers
  (logging's flush and close, `pipelines.core.worker_cache` closing renderers and
  browsers, ``weakref.finalize`` callbacks), then Python's and C's stdio buffers are
  flushed (a C library's ``printf`` into a redirected stdout included).

The open-file check is made again after the handlers (a handler may open one); if a file
is open then, the normal exit goes on (the handlers, already run, do not run twice).

What the check cannot see: bytes a Python object holds with no descriptor behind it (an
fsspec file on object storage buffers a part in memory until ``close``). vlforge's own
writers close what they open before a command returns (a run's ``_SUCCESS`` is written
last, after every shard and table is closed); and the teardown does not promise to flush
such an object either (Python does not guarantee ``__del__`` for objects alive at exit).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

_FDINFO = "/proc/self/fdinfo"
_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def files_open_for_writing() -> list[str] | None:
    """Paths of the regular files this process holds open for writing (descriptors 0-2
    left out); None where that cannot be known (no ``/proc``)."""
    try:
        descriptors = os.listdir(_FDINFO)
    except OSError:
        return None
    found = []
    for name in descriptors:
        fd = int(name)
        if fd <= 2:
            continue
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
            with open(f"{_FDINFO}/{fd}") as info:
                flags = next(int(line.split()[1], 8) for line in info
                             if line.startswith("flags:"))
        except (OSError, StopIteration, ValueError):
            continue  # closed meanwhile (the listing's own descriptor, for one)
        if flags & os.O_ACCMODE not in _WRITE_MODES:
            continue
        if path.endswith(" (deleted)") or not os.path.isfile(path):
            continue  # a pipe, socket or device; or a file nobody can read after us
        found.append(path)
    return found


def waited_for_threads() -> list[str]:
    """Names of the live threads a normal exit would wait for (non-daemon, not main)."""
    main = threading.main_thread()
    return [t.name for t in threading.enumerate()
            if t is not main and not t.daemon and t.is_alive()]


def exit_now(code: int) -> None:
    """End this process with `code` without the interpreter's teardown, if nothing can be
    lost by it (see the module); otherwise return, and the caller exits normally."""
    if threading.current_thread() is not threading.main_thread():
        return
    if waited_for_threads() or files_open_for_writing() != []:
        return
    atexit._run_exitfuncs()  # the handlers a normal exit runs, run now (and cleared)
    open_files = files_open_for_writing()
    if open_files or waited_for_threads():
        log.debug("normal exit: left open at exit: %s", open_files)
        return
    try:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
        _flush_c_stdio()
    except (OSError, ValueError):  # a closed or broken stdout: let the interpreter report
        return
    os._exit(code)


def _flush_c_stdio() -> None:
    """``fflush(NULL)``: what C code printed into buffered stdio streams (``exit`` does
    this, ``_exit`` does not)."""
    import ctypes

    ctypes.CDLL(None).fflush(None)
