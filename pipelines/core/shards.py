"""WebDataset shard writing and reading, usable inside or outside Beam.

`ShardWriter` writes size- and count-bounded tar shards under a temporary name and renames
each one only when complete, so a reader never sees a partial tar. `iter_shard_samples`
streams samples back from tars (local paths or fsspec URLs), one group per key;
`ShardIndex` reads single samples by key. This module and `pipelines.core.run_dir` are the
only places that open a tar: everything else goes through `RunDir`.
"""

from __future__ import annotations

import logging
import tarfile
import uuid
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import fsspec

from pipelines.core.sample import Sample, sha256_hex
from pipelines.core.signatures import image_phash, text_hash, text_minhash
from pipelines.core.split import document_id

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_COUNT = 10_000
TMP_MARK = ".tmp-"


def manifest_row(sample: Sample, shard: str, group: dict[str, Any] | None = None,
                 image_sha256: str | None = None, phash: str | None = None) -> dict[str, Any]:
    """The manifest row for one written sample (see `pipelines.core.run_dir.MANIFEST_SCHEMA`).

    `group` is the sample's already-encoded WebDataset group and `image_sha256` / `phash`
    its image checksum and perceptual hash, when the caller has them (computed here
    otherwise). The content signatures (`pipelines.core.signatures`) let de-duplication
    work from manifests alone.
    """
    lineage = sample.lineage
    taxonomy = sample.meta.get("taxonomy") or {}
    image = sample.image or b""
    payload = group if group is not None else sample.to_wds()
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
        "image_sha256": (image_sha256 if image_sha256 is not None
                         else sha256_hex(image) if image else ""),
        "image_bytes": len(image),
        "num_images": len(sample.images),
        "text_chars": len(sample.text or ""),
        "bytes": sum(len(v) for k, v in payload.items() if k != "__key__"),
        "taxonomy_leaf": taxonomy.get("leaf", ""),
        "taxonomy_version": str(taxonomy.get("version", "")),
        "taxonomy_confidence": float(taxonomy.get("confidence", 0.0) or 0.0),
        "document": document_id(sample),
        # "" = decided per document when the run is finalized (RunDir.merged); a sample
        # read from another run carries that run's side (pipelines.core.split)
        "split": str(lineage.get("split") or ""),
        "text_hash": text_hash(sample.text),
        "text_minhash": text_minhash(sample.text),
        "image_phash": phash if phash is not None else image_phash(sample.image),
    }


def _image_hashes(image: bytes) -> tuple[str, str]:
    return sha256_hex(image), image_phash(image)


# Perceptual hashes handed over by a stage that computed them from the pixels it encoded
# (the PDF renderer, in its own process, before PNG encoding): decoding the PNG again
# costs the writer more than everything else it does for a page. Keyed by the image's
# sha256, so an entry can only ever describe those exact bytes; read (not taken) when
# written, as samples that share an image (a figure, its caption pair, the page's
# interleaved document) each read it; bounded, oldest out first (dropped pages never
# read theirs); stage and writer share a worker thread.
_KNOWN_PHASHES: OrderedDict[str, str] = OrderedDict()
KNOWN_PHASHES_KEPT = 1024


def remember_image_phash(image: bytes, phash: str) -> None:
    """Tell the writer `image`'s manifest perceptual hash (what
    `pipelines.core.signatures.image_phash` returns for these bytes), so it is not decoded
    again when the sample is written in this process."""
    sha = sha256_hex(image)
    _KNOWN_PHASHES[sha] = phash
    _KNOWN_PHASHES.move_to_end(sha)
    while len(_KNOWN_PHASHES) > KNOWN_PHASHES_KEPT:
        _KNOWN_PHASHES.popitem(last=False)


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
        self._file = None  # the open temporary shard
        self._count = 0
        self._bytes = 0
        # sha256 releases the GIL: hashing images on a thread overlaps it with tar writes.
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-sha256")
        self._pending: list[tuple[dict[str, Any], Future]] = []
        self._hashing: dict[str, Future] = {}  # image sha256 -> its hashes (this task's)

    def write(self, sample: Sample) -> dict[str, Any]:
        """Write one sample; returns its manifest row (its image_sha256 is set by `close`)."""
        group = sample.to_wds()
        size = tar_size(group)
        if self._file is not None and (self._count >= self.max_count
                                      or (self._count and self._bytes + size > self.max_bytes)):
            self._finish_shard()
        if self._file is None:
            self._open_shard()
        for ext, data in group.items():
            if ext != "__key__":
                self._add_member(f"{sample.key}.{ext}", data)
        self._count += 1
        self._bytes += size
        row = manifest_row(sample, self._current_name, group, image_sha256="", phash="")
        if sample.image:
            sha = sha256_hex(sample.image)
            known = _KNOWN_PHASHES.get(sha)
            if known is not None:
                row["image_sha256"], row["image_phash"] = sha, known
            else:
                # derived samples often repeat an image (a figure, its caption pair, the
                # page's interleaved document): decode each distinct image once
                future = self._hashing.get(sha)
                if future is None:
                    future = self._hashing[sha] = self._hasher.submit(_image_hashes,
                                                                      sample.image)
                self._pending.append((row, future))
        self.rows.append(row)
        return row

    def close(self) -> list[str]:
        """Finish the open shard and fill in checksums; returns all shard names written."""
        if self._file is not None:
            self._finish_shard()
        for row, future in self._pending:
            row["image_sha256"], row["image_phash"] = future.result()
        self._pending.clear()
        self._hashing.clear()
        self._hasher.shutdown()
        return list(self.shards)

    def abort(self) -> None:
        """Drop the open shard's temporary file (used when a task fails)."""
        self._hasher.shutdown(cancel_futures=True)
        if self._file is not None:
            self._file.close()
            self.fs.rm(self._tmp_path)
            self._file = None

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals ---------------------------------------------------------------------
    # Members are written as raw ustar blocks (header, data, zero padding): the same bytes
    # tarfile writes, without its per-16KB copy loop, which leaves room for the checksums.
    def _add_member(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0  # deterministic bytes for the same samples
        info.mode = 0o644
        self._file.write(info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8"))
        self._file.write(data)
        padding = -len(data) % tarfile.BLOCKSIZE
        if padding:
            self._file.write(tarfile.NUL * padding)

    def _open_shard(self) -> None:
        self._current_name = f"{self.prefix}-{self._index:06d}.tar"
        self._tmp_path = f"{self.root}/{TMP_MARK}{uuid.uuid4().hex[:8]}-{self._current_name}"
        self._file = self.fs.open(self._tmp_path, "wb")
        self._count = 0
        self._bytes = 0

    def _finish_shard(self) -> None:
        end = self._bytes + 2 * tarfile.BLOCKSIZE  # two zero blocks end the archive
        self._file.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE + (-end % tarfile.RECORDSIZE)))
        self._file.close()
        final = f"{self.root}/{self._current_name}"
        # a rename on local disks; on object stores a copy that appears whole or not at all
        self.fs.mv(self._tmp_path, final)
        self.shards.append(self._current_name)
        self._file = None
        self._index += 1


class ShardReadError(RuntimeError):
    """A shard that cannot be read (truncated, not a tar, missing)."""


class SampleNotFound(KeyError):
    """A key that is not in the shard asked for (the run changed since it was listed)."""


def iter_shard_groups(url: str, exts: Iterable[str] | None = None) -> Iterator[dict[str, bytes]]:
    """Yield WebDataset groups (``{"__key__": k, ext: bytes}``) from one tar shard.

    With `exts`, only those members are read into memory (e.g. ``("json",)`` to scan
    metadata without holding images); the group still carries its key.
    """
    fs, path = fsspec.core.url_to_fs(url)
    yield from read_shard_groups(fs, path, exts)


def read_shard_groups(fs: Any, path: str, exts: Iterable[str] | None = None
                      ) -> Iterator[dict[str, bytes]]:
    """`iter_shard_groups` on an already-resolved fsspec filesystem and path."""
    wanted = None if exts is None else set(exts)
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
                if wanted is None or ext in wanted:
                    group[ext] = tar.extractfile(member).read()
            if group:
                yield group
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ShardReadError(f"cannot read shard {path}: {exc}") from exc


def group_to_sample(group: dict[str, Any], where: str) -> Sample:
    """Decode one group, naming the shard in the error when it is malformed."""
    try:
        return Sample.from_wds(group)
    except (KeyError, ValueError) as exc:
        raise ShardReadError(f"malformed sample {group.get('__key__')} in {where}: {exc}") from exc


def iter_shard_samples(url: str) -> Iterator[Sample]:
    """Yield `Sample`s from one tar shard (a local path or an fsspec URL)."""
    for group in iter_shard_groups(url):
        yield group_to_sample(group, url)


class ShardIndex:
    """Random access to the members of one (uncompressed) tar shard by sample key.

    Opening reads the tar headers only (data blocks are skipped), so N lookups in one
    shard cost one header scan plus the bytes of the N samples, not N full reads. The
    member offsets outlive `close` (which only releases the file): a later lookup reopens
    the file without scanning the headers again.
    """

    def __init__(self, fs: Any, path: str):
        self.fs, self.path = fs, path
        self.handle = fs.open(path, "rb")
        self.members: dict[str, dict[str, tuple[int, int]]] = {}
        try:
            with tarfile.open(fileobj=self.handle, mode="r:") as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        key, _, ext = member.name.rsplit("/", 1)[-1].partition(".")
                        self.members.setdefault(key, {})[ext] = (member.offset_data, member.size)
        except (tarfile.TarError, OSError, EOFError) as exc:
            self.handle.close()
            raise ShardReadError(f"cannot read shard {path}: {exc}") from exc

    @property
    def is_open(self) -> bool:
        return self.handle is not None

    def group(self, key: str) -> dict[str, bytes]:
        """The WebDataset group of `key`; raises `SampleNotFound` when it is not here."""
        if key not in self.members:
            raise SampleNotFound(f"{key} not in {self.path}")
        if self.handle is None:
            self.handle = self.fs.open(self.path, "rb")
        group: dict[str, Any] = {"__key__": key}
        for ext, (offset, size) in self.members[key].items():
            self.handle.seek(offset)
            group[ext] = self.handle.read(size)
        return group

    def sample(self, key: str) -> Sample:
        return group_to_sample(self.group(key), self.path)

    def close(self) -> None:
        """Release the file (the index stays usable: the next lookup reopens it)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None
