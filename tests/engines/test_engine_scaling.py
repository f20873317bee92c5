"""What the 2-worker engines need to scale (bench/engine_scaling.py measures it): the
portable job service really runs a job on the SDK workers it asks for, and tasks reach the
workers of a statically split bundle in an even, planned-order share."""

from __future__ import annotations

import collections
import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.core import runner
from pipelines.images.pipeline import LoadImagesFn, image_refs
from tests.engines.resource_probe import TaskProbeFn
from tests.pipelines.fixtures import write_images

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _RecordPid(beam.DoFn):
    def __init__(self, trace: str):
        self.trace = trace

    def process(self, element):
        with open(self.trace, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
        yield element


@pytest.mark.parametrize("workers", [1, 2])
def test_a_portable_job_runs_on_the_sdk_workers_it_asks_for(tmp_path, workers):
    from tests.servers import start_beam_job_service

    # the SDK workers import this module
    servers, endpoints = start_beam_job_service(tmp_path / "beam", {"PYTHONPATH": ROOT})
    trace = str(tmp_path / "pids.txt")
    try:
        with beam.Pipeline(options=PipelineOptions(endpoints.beam_args(workers))) as p:
            _ = (p | beam.Create(range(16)) | beam.Reshuffle()
                 | beam.ParDo(_RecordPid(trace)))
    finally:
        for server in reversed(servers):
            server.stop()
    with open(trace, encoding="utf-8") as handle:
        pids = collections.Counter(handle.read().split())
    assert sum(pids.values()) == 16 and len(pids) == workers
    assert os.getpid() not in {int(pid) for pid in pids}  # external workers, not us


def test_tasks_reach_two_workers_evenly_in_planned_order(tmp_path, monkeypatch):
    """The FnApiRunner deals a bundle's elements to its workers by arrival order: without
    random shuffle keys in between, neighbouring tasks (the planner's order) are shared,
    never left in a run of three on one worker, and each worker gets half."""
    trace = str(tmp_path / "trace.txt")
    monkeypatch.setattr(runner, "load_stage_builder",
                        lambda name: lambda config: [LoadImagesFn(), TaskProbeFn(trace)])
    monkeypatch.setenv("PYTHONPATH", ROOT)  # the SDK worker processes import the probe
    refs = image_refs(write_images(str(tmp_path / "in"), 16))
    stats = runner.run_pipeline(
        "images", refs, {}, str(tmp_path / "run"), task_size=1,
        beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert stats["written"] == 16
    with open(trace, encoding="utf-8") as handle:
        worker_of = dict(line.split() for line in handle)
    order = [worker_of[task] for task in sorted(worker_of)]
    assert len(order) == 16 and sorted(collections.Counter(order).values()) == [8, 8]
    assert all(len(set(order[i:i + 3])) == 2 for i in range(len(order) - 2)), order
