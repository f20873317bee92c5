"""Servers for the engine tests: a SeaweedFS S3 store, a dask cluster, a Beam job service."""

from tests.servers import beam_job_service, dask_cluster, seaweedfs  # noqa: F401
from tests.training.conftest import tiny_model_dir  # noqa: E402,F401
