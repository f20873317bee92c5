"""Models load once per worker process, though Beam's Dask runner sets a stage up once per
partition (`pipelines.core.worker_cache`)."""

from __future__ import annotations

import collections
import os
import pickle

import pytest

from pipelines.core import runner, worker_cache
from pipelines.core.worker_cache import worker_resource
from pipelines.images.pipeline import LoadImagesFn, image_refs
from pipelines.ocr import stage as ocr_stage
from tests.engines.resource_probe import ProbeFn
from tests.pipelines.fixtures import write_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_copies_of_an_ocr_stage_share_one_engine(monkeypatch):
    worker_cache.clear()
    loads = []
    real = ocr_stage.load_backend

    def counting(name, **options):
        loads.append(name)
        return real(name, **options)

    monkeypatch.setattr(ocr_stage, "load_backend", counting)
    stage = ocr_stage.OcrImagesFn(policy="always")
    first, second = (pickle.loads(pickle.dumps(stage)) for _ in range(2))  # as a runner
    first.setup()
    first.teardown()  # one partition done
    second.setup()  # the next partition's copy
    assert loads == ["rapidocr"] and second.engine is not None
    other = ocr_stage.OcrImagesFn(policy="always", options={"Det.box_thresh": 0.4})
    other.setup()  # other settings: a model of their own
    assert loads == ["rapidocr", "rapidocr"] and other.engine is not second.engine
    worker_cache.clear()


def test_the_cache_is_bounded_and_keyed_by_settings(monkeypatch):
    worker_cache.clear()
    monkeypatch.setattr(worker_cache, "MAX_RESOURCES", 2)
    built = []

    def build(name):
        built.append(name)
        return object()

    a = worker_resource("m", {"n": 1}, lambda: build("a"))
    assert worker_resource("m", {"n": 1}, lambda: build("again")) is a
    worker_resource("m", {"n": 2}, lambda: build("b"))
    worker_resource("m", {"n": 1}, lambda: build("again"))  # a is the most recent now
    worker_resource("m", {"n": 3}, lambda: build("c"))  # evicts b, the least recent
    worker_resource("m", {"n": 2}, lambda: build("b2"))
    assert built == ["a", "b", "c", "b2"]
    worker_cache.clear()


@pytest.mark.slow
def test_dask_sets_a_stage_up_per_partition_but_loads_once_per_process(tmp_path,
                                                                      monkeypatch):
    from tests.servers import start_dask_cluster

    # the workers import the probe stage by name
    servers, address = start_dask_cluster(tmp_path / "dask", 2,
                                          env={"PYTHONPATH": ROOT})
    try:
        trace = str(tmp_path / "trace.txt")
        monkeypatch.setattr(runner, "load_stage_builder",
                            lambda name: lambda config: [LoadImagesFn(), ProbeFn(trace)])
        refs = image_refs(write_images(str(tmp_path / "in"), 16))
        stats = runner.run_pipeline(
            "images", refs, {}, str(tmp_path / "run"), task_size=1,
            beam_args=["--runner=DaskRunner", f"--dask_client_address={address}"])
    finally:
        for server in reversed(servers):
            server.stop()
    assert stats["written"] == 16
    with open(trace, encoding="utf-8") as handle:
        events = collections.Counter(tuple(line.split()) for line in handle)
    pids = {pid for _, pid in events}
    assert pids and all(events[("load", pid)] == 1 for pid in pids)
    # what made the cache worth having: more setups than processes
    assert sum(events[("setup", pid)] for pid in pids) > len(pids)
