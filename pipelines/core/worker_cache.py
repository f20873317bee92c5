"""Heavy resources (OCR models, renderer processes, ...) kept once per worker process, not
once per bundle.

Beam's Dask runner calls a DoFn's ``setup`` and ``teardown`` once per *partition*, on a
fresh copy of the DoFn each time (measured: 8 partitions on 2 worker processes gave 4
setups per process per stage; the portable runner gave one). A model loaded in `open`
would be reloaded for every partition. ``apache_beam.utils.shared.Shared`` does not cure
this: it holds its objects weakly and keeps only the *last* acquired one alive, so with two
shared stages in a pipeline (or a stage that lets go in `close`) every partition reloads
again (measured: one load per partition with two Shared stages whose teardown lets go).

`worker_resource` keeps a strong, bounded (LRU) per-process cache keyed by what the
resource is built from, so copies of a stage with the same settings share one load for the
life of the worker process; a long-lived worker that sees other settings evicts the least
recently used. By default the key includes the thread: resources are not assumed
thread-safe, and a runner running DoFns on several threads of one process gets one per
thread. A resource with a ``close()`` method (a pool of child processes) is closed when it
is evicted, by `clear`, and when the process exits.
"""

from __future__ import annotations

import atexit
import collections
import gc
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_RESOURCES = 8  # per process; each is a model or similar, so keep few

_lock = threading.Lock()
_cache: collections.OrderedDict[tuple, Any] = collections.OrderedDict()


def worker_resource(kind: str, settings: Mapping[str, Any], build: Callable[[], T],
                    per_thread: bool = True) -> T:
    """The resource `kind` built with `settings` by `build()`, built at most once per
    process (and thread, unless `per_thread` is false: the resource guards itself) while
    it stays among the `MAX_RESOURCES` most recently used."""
    key = (kind, json.dumps(dict(settings), sort_keys=True, default=str),
           threading.get_ident() if per_thread else None)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    resource = build()  # outside the lock: a load may take seconds
    evicted = []
    with _lock:
        kept = _cache.setdefault(key, resource)
        _cache.move_to_end(key)
        while len(_cache) > MAX_RESOURCES:
            old_key, old = _cache.popitem(last=False)
            log.debug("worker resource %s evicted", old_key[0])
            evicted.append(old)
    if kept is not resource:  # another thread built the same one meanwhile
        evicted.append(resource)
    for old in evicted:
        _close(old)
    return kept


def clear() -> None:
    """Forget every cached resource, closing those that can be closed (tests; a worker
    that must free memory; process exit)."""
    with _lock:
        resources = list(_cache.values())
        _cache.clear()
    for resource in resources:
        _close(resource)


def _close(resource: Any) -> None:
    close = getattr(resource, "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:  # closing one must not stop closing the others
            log.warning("closing worker resource %r failed: %s", resource, exc)


atexit.register(clear)


_frozen_in: set[int] = set()  # the processes that froze their loaded objects


def freeze_loaded_objects() -> None:
    """Once per process, at a stage's first set-up: what is loaded by then (Beam, the
    modules, the stage's renderer) lives as long as the worker. Frozen out of the
    collector's sight, the full collections that each page's parsed or unpickled meta
    (thousands of small lists) triggers stop walking it again (~15% of the web stage's
    Python CPU), and so does the last one at interpreter exit (~0.3 s with Beam's ~2,200
    modules). Garbage is still freed by reference counts. Not at every set-up: a runner
    that sets a stage up per partition (Dask) would freeze each partition's leftovers for
    good."""
    if os.getpid() not in _frozen_in:
        _frozen_in.add(os.getpid())
        gc.freeze()
