"""Beam runner flags for the engines vlforge runs on, with the defaults each one needs.

Every pipeline command passes unknown ``--flags`` to Beam; this module turns them into
`PipelineOptions`:

- ``--runner=DaskRunner`` (Beam's runner lookup knows only its own short names) becomes
  ``apache_beam.runners.dask.dask_runner.DaskRunner``. Beam's Dask runner makes one Dask
  task per partition of the first `Create`, and a partition is a bundle that runs each stage
  to the end before the next; it would put up to 128 of our tasks in one partition, so all
  of them would run in one worker process, one stage at a time. Unless
  ``--dask_npartitions``/``--dask_partition_size`` is given, `dask_partitions` decides.
- ``--runner=PortableRunner`` with ``--environment_type=EXTERNAL`` runs on a worker pool
  (``python -m apache_beam.runners.worker.worker_pool_main``), the way Flink, Spark and
  Dataflow run Python workers; nothing is added.
- no ``--runner`` or ``--runner=DirectRunner``: Beam's DirectRunner without its first try
  of the Prism runner (`pipelines.core.direct_runner.FnApiDirectRunner`: the in-process
  FnApiRunner, or its multi-processing workers, as vlforge's stages are built and tested
  on), where Beam's own would download Prism at every run's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Beam is imported where options are made: flag checks run before it
    from apache_beam.options.pipeline_options import PipelineOptions

DEFAULT_BEAM_ARGS = ["--runner=DirectRunner"]
DIRECT_RUNNER = "pipelines.core.direct_runner.FnApiDirectRunner"
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNER_ALIASES = {"DaskRunner": DASK_RUNNER, "dask": DASK_RUNNER}
MAX_DASK_PARTITIONS = 1024
MAX_TASKS_PER_PARTITION = 2
PARTITIONS_PER_THREAD = 4


def flag_value(beam_args: Sequence[str], flag: str) -> str | None:
    """The value of ``FLAG=V`` or ``FLAG V`` in `beam_args` (the last one given; None when
    absent), as Beam reads its own flags."""
    value = None
    args = list(beam_args)
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and index + 1 < len(args):
            value = args[index + 1]
    return value


def runner_name(beam_args: Sequence[str]) -> str:
    """The ``--runner`` value of `beam_args` (aliases resolved; DirectRunner when absent)."""
    name = flag_value(beam_args, "--runner")
    name = "DirectRunner" if name is None else name
    return RUNNER_ALIASES.get(name, name)


def is_dask(beam_args: Sequence[str]) -> bool:
    return runner_name(beam_args) == DASK_RUNNER


def passes_bundle_end_records(beam_args: Sequence[str]) -> bool:
    """Whether the runner passes on what a stage emits from ``finish_bundle``.

    Beam's Dask runner discards it, so a stage that keeps records in flight across a task's
    end (`overlap_tasks` of the pdf and web configs) would lose a bundle's last records
    there. The DirectRunner (in-process and multi-processing) passes them on. Other runners
    are not assumed to: overlap stays off where it is not tested."""
    return runner_name(beam_args) == "DirectRunner"


def resolve_beam_args(beam_args: Sequence[str], tasks: int = 1) -> list[str]:
    """`beam_args` with runner aliases expanded and the engine's defaults added."""
    args: list[str] = []
    skip = False
    given = list(beam_args) or list(DEFAULT_BEAM_ARGS)
    for index, arg in enumerate(given):
        if skip:
            skip = False
            continue
        if arg.startswith("--runner="):
            name = arg.split("=", 1)[1]
            args.append(f"--runner={RUNNER_ALIASES.get(name, name)}")
        elif arg == "--runner" and index + 1 < len(given):
            args.append(f"--runner={RUNNER_ALIASES.get(given[index + 1], given[index + 1])}")
            skip = True
        else:
            args.append(arg)
    # the DirectRunner (named, or Beam's default) without its first try of Prism
    args = [f"--runner={DIRECT_RUNNER}" if a == "--runner=DirectRunner" else a for a in args]
    if not any(a.startswith("--runner=") for a in args):
        args.append(f"--runner={DIRECT_RUNNER}")
    if is_dask(args) and not any(a.startswith(("--dask_npartitions", "--dask_partition_size"))
                                 for a in args):
        args.append(f"--dask_npartitions={dask_partitions(tasks, _dask_threads(args))}")
    return args


def dask_partitions(tasks: int, threads: int) -> int:
    """Partitions for `tasks` tasks on `threads` Dask worker threads.

    Beam's Dask runner runs a partition as one Dask task, each stage to its end before the
    next (its outputs held in memory), and calls DoFn setup/teardown per partition; the
    costly resources outlive a partition (`pipelines.core.worker_cache`, parked renderer
    children), so small partitions cost little and let the scheduler hand the next one to
    whichever worker is free: at least `PARTITIONS_PER_THREAD` per thread and at most
    `MAX_TASKS_PER_PARTITION` tasks in one. (8 partitions of ~8 tasks on the shared corpus
    left one worker rendering a partition holding both 2-s documents while the other
    idled.)
    """
    wanted = max(PARTITIONS_PER_THREAD * max(threads, 1), -(-tasks // MAX_TASKS_PER_PARTITION))
    return max(1, min(tasks, wanted, MAX_DASK_PARTITIONS))


def _dask_threads(args: Sequence[str]) -> int:
    """Worker threads of the cluster at ``--dask_client_address`` (CPUs when local)."""
    import os

    address = flag_value(args, "--dask_client_address")
    if not address:
        return os.cpu_count() or 1
    from distributed import Client

    with Client(address, timeout=30) as client:
        return sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())


def beam_options(beam_args: Sequence[str], tasks: int = 1) -> PipelineOptions:
    """`PipelineOptions` for running `tasks` tasks with the user's Beam flags."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(resolve_beam_args(beam_args, tasks))
