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


def test_renderer_children_are_parked_between_stage_copies(tmp_path):
    """A stopped renderer's idle child is taken by the next copy's renderer; a child
    stopped mid-document is ended, not parked; the cache's clear ends parked children."""
    from pipelines.pdf.isolation import IsolatedRenderer, idle_children
    from tests.pipelines import pdf_fixtures

    worker_cache.clear()
    path = str(tmp_path / "t.pdf")
    pdf_fixtures.text_and_table(path)
    first = IsolatedRenderer({})
    assert [m[0] for m in first.render(path)][-1] == "end"
    child = first.proc
    first.stop()  # a partition's teardown
    second = IsolatedRenderer({})
    assert [m[0] for m in second.render(path)][-1] == "end"
    assert second.proc is child and child.poll() is None  # no second start
    stream = second.render(path)
    next(stream)  # mid-document
    second.stop()
    assert child.wait(timeout=10) is not None and idle_children(4096).take() is None
    stream.close()
    third = IsolatedRenderer({})
    list(third.render(path))
    parked = third.proc
    third.stop()
    worker_cache.clear()  # as at process exit
    assert parked.wait(timeout=10) is not None


@pytest.mark.slow
def test_dask_partitions_share_one_renderer_child_per_process(tmp_path, monkeypatch):
    from pipelines.pdf.pipeline import pdf_refs
    from tests.engines.resource_probe import RenderProbeFn
    from tests.pipelines import pdf_fixtures
    from tests.servers import start_dask_cluster

    corpus = pdf_fixtures.write_corpus(str(tmp_path / "pdfs"))
    paths = [corpus[name] for name in ("text_table.pdf", "chart.pdf", "photo_scan.pdf")]
    servers, address = start_dask_cluster(tmp_path / "dask", 2, env={"PYTHONPATH": ROOT})
    try:
        trace = str(tmp_path / "trace.txt")
        monkeypatch.setattr(runner, "load_stage_builder",
                            lambda name: lambda config: [RenderProbeFn(trace)])
        refs = []
        for copy in range(4):  # byte-distinct copies, so no file is a duplicate
            for path in paths:
                target = tmp_path / "in" / f"{copy}-{os.path.basename(path)}"
                target.parent.mkdir(exist_ok=True)
                target.write_bytes(open(path, "rb").read() + b"\n%" + str(copy).encode())
                refs.append(str(target))
        stats = runner.run_pipeline(
            "pdf", pdf_refs(refs), {"ocr": None, "charts": False, "label": False},
            str(tmp_path / "run"), task_size=1,
            beam_args=["--runner=DaskRunner", f"--dask_client_address={address}",
                       "--dask_npartitions=8"])
    finally:
        for server in reversed(servers):
            server.stop()
    assert stats["errors"] == 0 and stats["written"] > 0
    with open(trace, encoding="utf-8") as handle:
        events = [tuple(line.split()) for line in handle]
    setups = collections.Counter(pid for event, pid in events if event == "setup")
    children: dict[str, set[str]] = collections.defaultdict(set)
    for event, pid in events:
        if event.startswith("child-"):
            children[pid].add(event)
    assert sum(setups.values()) > len(setups)  # a setup per partition, as Beam's Dask runner does
    assert children and all(len(pids) == 1 for pids in children.values()), children
