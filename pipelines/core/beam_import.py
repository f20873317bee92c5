"""Import Apache Beam without the Google Cloud parts a DirectRunner run never uses.

``import apache_beam`` runs Beam's optional imports for every library that is installed:
``apache_beam.io``'s BigQuery / Pub/Sub / GCS client / cross-language IO block, the GCS
filesystem (Beam's own `FileSystems`, for ``gs://`` paths read by Beam's IO) and the
Dataflow API client of the DataflowRunner, and the MongoDB client of Beam's MongoDB IO.
Where the Google client libraries are installed (gcsfs, the Airflow Google provider) that
is close to half of Beam's import (`bench/startup.py` shows it per run). vlforge's
pipelines use none of it: they read and write through fsspec, not Beam's IO. (pandas, which
Beam's type hints also import where it is installed, is not left out: pyarrow imports it
anyway at the driver's first ``pa.array``, in planning, so leaving it out would save
nothing.)

`lean_beam_import` arranges, before anything has imported Apache Beam, that its *first*
import leaves those out: during that one import, and only then, the modules of `SKIPPED`
read as not installed (a ``None`` in ``sys.modules``, which Beam's own ``try: ... except
ImportError`` blocks skip); right after it they import normally again (``from google.cloud
import storage`` works, and so does ``from apache_beam.io.gcp import bigquery``). It does
so only where nothing can need them: the DirectRunner (this machine's processes; its
multi-processing workers import Beam in full on their own) and no ``gs://`` among the
arguments. What is left out is not lost: `complete_beam_import` imports it as Beam's
package ``__init__`` files would have (names on ``apache_beam.io``, the GCS filesystem
registered, the Dataflow client, MongoDB IO's client), and `pipelines.core.runner` calls
it before running on any other runner, so a process that went on to use Dataflow still
could. That one import also runs without the cyclic garbage collector, and what it loaded
is frozen after it (~0.1 CPU-s of collections that find nothing: Beam's modules live
until exit), unless the program has paused the collector itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import logging
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

from pipelines.core.collector import paused

log = logging.getLogger(__name__)

# What Beam's first import leaves out, each a module whose ImportError Beam catches:
SKIPPED = (
    # apache_beam/io/__init__.py: its try block (BigQuery, Pub/Sub, gcsio, xlang IO) stops here
    "apache_beam.io.gcp.bigquery",
    # apache_beam/io/filesystems.py registers the GCS filesystem (google.cloud.storage)
    "apache_beam.io.gcp.gcsfilesystem",
    # apache_beam/runners/dataflow/dataflow_runner.py: the Dataflow API client
    "google.cloud.dataflow",
    # apache_beam/io/gcp/pubsub.py's client (below: the DirectRunner imports that module)
    "google.cloud.pubsub",
    # apache_beam/io/mongodbio.py's client (its try block; ~0.05 CPU-s, pymongo's own
    # asynchronous client included): MongoDB IO, which no vlforge pipeline reads or writes
    "bson",
    "pymongo",
)
# Loggers that warn, during the lean import only, that a module of `SKIPPED` is missing
QUIETED = ("apache_beam.io.mongodbio",)
# Imported within the lean import, with `SKIPPED` absent: the DirectRunner imports Beam's
# Pub/Sub transforms at every run (to tell streaming pipelines apart), which would import
# the Pub/Sub client (~0.2 CPU-s); imported here, the transforms exist and the client stays
# out until `complete_beam_import`.
WITHIN = ("apache_beam.io.gcp.pubsub",)

_lock = threading.Lock()
_skipped: list[str] = []  # what the lean import left out and `complete_beam_import` owes


def lean_import_applies(args: Sequence[str]) -> bool:
    """Whether a run with these command-line arguments can do without `SKIPPED`: it runs
    on the DirectRunner and names no ``gs://`` path (Beam's GCS filesystem stays in)."""
    from pipelines.core.engines import runner_name

    return (runner_name(list(args)) == "DirectRunner"
            and not any("gs://" in arg for arg in args))


def lean_beam_import(args: Sequence[str]) -> bool:
    """Make the first ``import apache_beam`` of this process lean, if `args` (a command
    line, or Beam flags) allow it and Beam is not imported yet; True when arranged."""
    if "apache_beam" in sys.modules or not lean_import_applies(args):
        return False
    with _lock:
        if not any(isinstance(f, _LeanFirstImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _LeanFirstImport())
    return True


def complete_beam_import() -> list[str]:
    """Import what a lean import left out, into the namespaces Beam's ``__init__`` files
    would have put it in; returns the modules now imported (none after a full import)."""
    with _lock:
        owed, _skipped[:] = list(_skipped), []
    if not owed:
        return []
    done = []
    if "apache_beam.io.gcp.bigquery" in owed:
        import apache_beam.io as beam_io

        for name in ("apache_beam.io.gcp.bigquery", "apache_beam.io.gcp.pubsub",
                     "apache_beam.transforms.xlang.io"):
            done += _star_import(name, beam_io)
        done += _import_as("apache_beam.io.gcp.gcsio", beam_io, "gcsio")
    if "google.cloud.pubsub" in owed:
        pubsub = sys.modules.get("apache_beam.io.gcp.pubsub")
        if pubsub is not None and getattr(pubsub, "pubsub", None) is None:
            done += _import_as("google.cloud.pubsub", pubsub, "pubsub")
    if "apache_beam.io.gcp.gcsfilesystem" in owed:
        # importing it registers the filesystem (Beam looks its FileSystem subclasses up)
        done += _import_as("apache_beam.io.gcp.gcsfilesystem", None, "")
    if "pymongo" in owed:
        mongodbio = sys.modules.get("apache_beam.io.mongodbio")
        if mongodbio is not None and mongodbio.MongoClient is None:
            # its module-level try block runs again, now with the client importable
            import apache_beam.io as beam_io

            if _reload(mongodbio):
                done += _star_import("apache_beam.io.mongodbio", beam_io)
    if "google.cloud.dataflow" in owed:
        from apache_beam.runners.dataflow import dataflow_runner

        if dataflow_runner.dataflow_api is None:
            done += _import_as("google.cloud.dataflow", dataflow_runner, "dataflow_api")
    log.debug("completed Apache Beam's import: %s", ", ".join(done))
    return done


class _LeanFirstImport(importlib.abc.MetaPathFinder):
    """A one-shot finder: the first import of ``apache_beam`` runs with `SKIPPED` absent."""

    def find_spec(self, name, path=None, target=None):
        if name != "apache_beam":
            return None
        with _lock:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)  # from the finders after this one
        if spec is not None and spec.loader is not None:
            spec.loader = _SkippingLoader(spec.loader)
        return spec


class _SkippingLoader(importlib.abc.Loader):
    """Runs the real loader of ``apache_beam`` with `SKIPPED` reading as not installed."""

    def __init__(self, real: importlib.abc.Loader):
        self.real = real

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        absent = [name for name in SKIPPED if name not in sys.modules]
        for name in absent:
            sys.modules[name] = None  # an ImportError (ModuleNotFoundError) on import
        quiet = _QuietMissing()
        for name in QUIETED:
            logging.getLogger(name).addFilter(quiet)
        # Beam's ~1,400 modules allocate enough objects to run the collector hundreds of
        # times during this import, each full collection walking everything imported so
        # far, for nothing: they live until exit. Paused here, and frozen after (out of
        # later collections' sight), unless the program turned the collector off itself
        with paused(freeze=True):
            try:
                self.real.exec_module(module)
                for name in WITHIN:
                    try:
                        importlib.import_module(name)
                    except ImportError as exc:
                        log.debug("%s not imported: %s", name, exc)
            finally:
                for name in QUIETED:
                    logging.getLogger(name).removeFilter(quiet)
                for name in absent:
                    if name in sys.modules and sys.modules[name] is None:
                        del sys.modules[name]
                # the module keeps its real loader (importlib.resources, reloads)
                module.__loader__ = self.real
                if module.__spec__ is not None:
                    module.__spec__.loader = self.real
        with _lock:
            _skipped[:] = absent
        log.debug("apache_beam imported without %s", ", ".join(absent))


class _QuietMissing(logging.Filter):
    """Drops the warnings of a `QUIETED` logger: what they report missing was left out on
    purpose (and `complete_beam_import` brings it back)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING


def _reload(module: ModuleType) -> list[str]:
    """Run `module` again (its optional imports now possible); [] where that fails."""
    try:
        importlib.reload(module)
    except ImportError as exc:
        log.debug("not completing %s: %s", module.__name__, exc)
        return []
    return [module.__name__]


def _star_import(name: str, into: ModuleType) -> list[str]:
    """``from NAME import *`` into the module `into`; [] where NAME cannot be imported."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        log.debug("not completing %s: %s", name, exc)
        return []
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    for attr in names:
        setattr(into, attr, getattr(module, attr))
    return [name]


def _import_as(name: str, into: ModuleType | None, attr: str) -> list[str]:
    """Import NAME and, with `into`, bind it there as `attr`; [] where it cannot be."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        log.debug("not completing %s: %s", name, exc)
        return []
    if into is not None:
        setattr(into, attr, module)
    return [name]
