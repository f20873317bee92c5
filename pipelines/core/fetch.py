"""Reading input files inside workers, from any fsspec URL or local path.

Stages call these instead of `open()`, so the same pipeline reads local files on the
DirectRunner and ``s3://`` / ``gs://`` / ``http(s)://`` inputs on a cluster whose workers
share no disk with the driver. Hashing happens here too, in the worker, while reading.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import Iterator

import fsspec

from pipelines.core.inputs import is_local

BLOCK = 1 << 20


def _local_path(url: str) -> str:
    return url[len("file://"):] if url.startswith("file://") else url


def read_bytes(url: str) -> bytes:
    """The whole content of `url` (a local path or any fsspec URL)."""
    if is_local(url):
        with open(_local_path(url), "rb") as handle:
            return handle.read()
    with fsspec.open(url, "rb") as handle:
        return handle.read()


def file_sha256(url: str) -> str:
    """sha256 of the file at `url`, streamed in 1 MiB blocks."""
    digest = hashlib.sha256()
    opener = open(_local_path(url), "rb") if is_local(url) else fsspec.open(url, "rb")
    with opener as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def local_copy(url: str, suffix: str = "") -> Iterator[tuple[str, str]]:
    """``(local_path, sha256)`` of `url`: the file itself when local, else a temporary copy
    (downloaded once, hashed while downloading, deleted on exit). For tools that need a
    path, such as a renderer in a child process."""
    if is_local(url):
        path = _local_path(url)
        yield path, file_sha256(path)
        return
    digest = hashlib.sha256()
    handle, path = tempfile.mkstemp(prefix="vlforge-input-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out, fsspec.open(url, "rb") as source:
            for block in iter(lambda: source.read(BLOCK), b""):
                digest.update(block)
                out.write(block)
        yield path, digest.hexdigest()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
