"""WebDataset shard writing and reading, usable inside or outside Beam.

`ShardWriter` writes size- and count-bounded tar shards under a temporary name and renames
each one only when complete, so a reader never sees a partial tar. `iter_shard_samples`
streams samples back from tars (local paths or fsspec URLs), one group per key.
"""

from __future__ import annotations

import io
import logging
import tarfile
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

import fsspec

from pipelines.sample import Sample, sha256_hex

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_COUNT = 10_000
TMP_MARK = ".tmp-"


def manifest_row(sample: Sample, shard: str) -> dict[str, Any]:
    """The manifest row for one written sample (see `pipelines.run_dir.MANIFEST_SCHEMA`)."""
    lineage = sample.lineage
    taxonomy = sample.meta.get("taxonomy") or {}
    image = sample.image or b""
    payload = sample.to_wds()
    return {
        "key": sample.key,
        "shard": shard,
        "source": sample.source,
        "locator": sample.locator,
        "input_id": lineage.get("input_id", ""),
        "item_id": sample.item_id,
        "parent_item": lineage.get("parent_item", ""),
        "derived_from": lineage.get("derived_from", ""),
        "task": lineage.get("task", ""),
        "image_sha256": sha256_hex(image) if image else "",
        "image_bytes": len(image),
        "num_images": len(sample.images),
        "text_chars": len(sample.text or ""),
        "bytes": sum(len(v) for k, v in payload.items() if k != "__key__"),
        "taxonomy_leaf": taxonomy.get("leaf", ""),
        "taxonomy_version": str(taxonomy.get("version", "")),
        "taxonomy_confidence": float(taxonomy.get("confidence", 0.0) or 0.0),
    }


def tar_size(group: dict[str, Any]) -> int:
    """Bytes a WebDataset group occupies in a tar: a 512-byte header + padded data each."""
    return sum(512 + -(-len(v) // 512) * 512 for k, v in group.items() if k != "__key__")


@dataclass
class ShardWriter:
    """Append samples to ``{directory}/{prefix}-{index:06d}.tar``, rolling over at the bounds.

    Names are deterministic (prefix + running index), so writing the same samples again
    replaces the same files rather than adding duplicates.
    """

    directory: str
    prefix: str = "shard"
    max_bytes: int = DEFAULT_MAX_BYTES
    max_count: int = DEFAULT_MAX_COUNT
    start_index: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list, init=False)
    shards: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(self.directory)
        self.fs.makedirs(self.root, exist_ok=True)
        self._index = self.start_index
        self._file = None
        self._tar: tarfile.TarFile | None = None
        self._count = 0
        self._bytes = 0

    def write(self, sample: Sample) -> dict[str, Any]:
        """Write one sample; returns its manifest row."""
        group = sample.to_wds()
        size = tar_size(group)
        if self._tar is not None and (self._count >= self.max_count
                                      or (self._count and self._bytes + size > self.max_bytes)):
            self._finish_shard()
        if self._tar is None:
            self._open_shard()
        for ext, data in group.items():
            if ext == "__key__":
                continue
            info = tarfile.TarInfo(f"{sample.key}.{ext}")
            info.size = len(data)
            info.mtime = 0  # deterministic bytes for the same samples
            info.mode = 0o644
            self._tar.addfile(info, io.BytesIO(data))
        self._count += 1
        self._bytes += size
        row = manifest_row(sample, self._current_name)
        self.rows.append(row)
        return row

    def close(self) -> list[str]:
        """Finish the open shard; returns the names of all shards written."""
        if self._tar is not None:
            self._finish_shard()
        return list(self.shards)

    def abort(self) -> None:
        """Drop the open shard's temporary file (used when a task fails)."""
        if self._tar is not None:
            self._tar.close()
            self._file.close()
            self.fs.rm(self._tmp_path)
            self._tar = None

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals ---------------------------------------------------------------------
    def _open_shard(self) -> None:
        self._current_name = f"{self.prefix}-{self._index:06d}.tar"
        self._tmp_path = f"{self.root}/{TMP_MARK}{uuid.uuid4().hex[:8]}-{self._current_name}"
        self._file = self.fs.open(self._tmp_path, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT)
        self._count = 0
        self._bytes = 0

    def _finish_shard(self) -> None:
        self._tar.close()
        self._file.close()
        final = f"{self.root}/{self._current_name}"
        self.fs.mv(self._tmp_path, final)  # atomic on local disks and object stores alike
        self.shards.append(self._current_name)
        self._tar = None
        self._index += 1


class ShardReadError(RuntimeError):
    """A shard that cannot be read (truncated, not a tar, missing)."""


def iter_shard_groups(url: str) -> Iterator[dict[str, bytes]]:
    """Yield WebDataset groups (``{"__key__": k, ext: bytes}``) from one tar shard."""
    fs, path = fsspec.core.url_to_fs(url)
    try:
        with fs.open(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r|") as tar:
            group: dict[str, bytes] = {}
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                key, _, ext = name.partition(".")
                if group and key != group["__key__"]:
                    yield group
                    group = {}
                group["__key__"] = key
                group[ext] = tar.extractfile(member).read()
            if group:
                yield group
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ShardReadError(f"cannot read shard {url}: {exc}") from exc


def iter_shard_samples(url: str) -> Iterator[Sample]:
    """Yield `Sample`s from one tar shard."""
    for group in iter_shard_groups(url):
        try:
            yield Sample.from_wds(group)
        except (KeyError, ValueError) as exc:
            raise ShardReadError(f"malformed sample {group.get('__key__')} in {url}: {exc}") from exc
