"""Beam's local job service, running each job on as many SDK workers as the job's
``--direct_num_workers`` asks for.

``python -m apache_beam.runners.portability.local_job_service_main`` (Beam 2.77) runs every
job on ONE SDK worker whatever its options say: ``BeamJob._invoke_runner`` calls the
FnApiRunner's ``run_via_runner_api``, and only ``run_pipeline`` reads
``direct_num_workers``. A "2-worker" job on the external worker pool therefore started one
SDK worker and one renderer (seen in a process trace of ``bench/engine_scaling.py``).
This is the same servicer (`LocalJobServicer`, through its ``beam_job_type`` hook) with
that one option honoured, so the engine tests and the bench run on as many external SDK
workers as they ask for, as Flink, Spark or Dataflow would with their own parallelism.

    python -m tests.portable_job_service --port P --staging_dir DIR   (repository root on
    PYTHONPATH; `tests.servers.start_beam_job_service` starts it)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.portability.api import beam_job_api_pb2
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import fn_runner

log = logging.getLogger(__name__)


class WorkersBeamJob(local_job_service.BeamJob):
    """A job run on ``direct_num_workers`` SDK workers (0: one per CPU, as Beam's own)."""

    def _invoke_runner(self):
        self.set_state(beam_job_api_pb2.JobState.RUNNING)
        options = self.pipeline_options()
        # the options come back from the job's Struct as strings
        workers = int(float(options.view_as(DirectOptions).direct_num_workers or 1))
        runner = fn_runner.FnApiRunner(provision_info=self._provision_info)
        runner._num_workers = (os.cpu_count() or 1) if workers == 0 else max(1, workers)
        log.info("job %s on %d SDK worker(s)", self._job_id, runner._num_workers)
        return runner.run_via_runner_api(self._pipeline_proto, options)


def main(argv: list[str] | None = None) -> None:
    """Serve the job API on ``--port`` until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--staging_dir")
    args = parser.parse_args(argv)
    servicer = local_job_service.LocalJobServicer(args.staging_dir,
                                                  beam_job_type=WorkersBeamJob)
    port = servicer.start_grpc_server(args.port)
    log.info("job service on port %d", port)
    try:
        while True:
            time.sleep(3600)
    finally:
        servicer.stop()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.basicConfig(level=logging.INFO)
    main()
