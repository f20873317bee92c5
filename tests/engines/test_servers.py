"""The test servers themselves: each answers on loopback and does real work."""

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

pytestmark = pytest.mark.slow


def test_seaweedfs_put_list_rename(seaweedfs):
    fs = seaweedfs.filesystem()
    bucket = seaweedfs.new_bucket()
    fs.pipe(f"{bucket}/a/one.bin", b"x" * 1000)
    fs.mv(f"{bucket}/a/one.bin", f"{bucket}/a/two.bin")
    assert fs.ls(f"{bucket}/a", detail=False) == [f"{bucket}/a/two.bin"]
    assert fs.cat(f"{bucket}/a/two.bin") == b"x" * 1000
    assert seaweedfs.endpoint.startswith("http://127.0.0.1:")


def test_dask_cluster_runs_tasks_in_two_worker_processes(dask_cluster):
    from distributed import Client

    with Client(dask_cluster) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert all(w["host"] == "127.0.0.1" for w in workers.values())
        pids = set(client.run(lambda: __import__("os").getpid()).values())
        assert len(pids) == 2


def test_portable_external_workers_run_a_pipeline(beam_job_service, tmp_path):
    out = tmp_path / "squares"
    options = PipelineOptions(beam_job_service.beam_args())
    with beam.Pipeline(options=options) as p:
        _ = (p | beam.Create(range(10)) | beam.Map(lambda x: x * x)
             | beam.io.WriteToText(str(out), shard_name_template=""))
    assert sorted(int(v) for v in out.read_text().split()) == [x * x for x in range(10)]
