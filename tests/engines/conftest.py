"""Servers for the engine tests: S3 and GCS stores, a dask cluster, a Beam job service."""

from tests.servers import beam_job_service, dask_cluster, gcs_emulator, seaweedfs  # noqa: F401
from tests.training.conftest import tiny_model_dir  # noqa: E402,F401
