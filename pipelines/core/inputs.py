"""Turn what a user types (files, directories, prefixes, globs, list files) into input URLs.

Arguments are local paths or fsspec URLs (``file://``, ``s3://``, ``gs://``, ``http(s)://``
and any other protocol fsspec knows). The driver only *lists* here: directory / prefix
walks, glob matches and list files; it never reads an input's content. Workers open the
inputs themselves (`pipelines.core.fetch`). Local paths come back absolute and without a
scheme (as before, so keys of local runs do not change); every other input comes back as
the full URL. Credentials and endpoints come the standard way: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` (or fsspec's own config) for S3,
``GOOGLE_APPLICATION_CREDENTIALS`` for GCS.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import fsspec

LIST_SUFFIXES = (".txt", ".lst", ".list")
HTTP = ("http", "https")


class InputError(ValueError):
    """An input argument that names nothing usable."""


@dataclass(frozen=True)
class InputFile:
    """One input file: its URL (or absolute local path) and its size in bytes (None when a
    listing does not say, e.g. a plain http URL)."""

    url: str
    size: int | None = None


def is_local(url: str) -> bool:
    """True for a plain path or a ``file://`` URL."""
    return "://" not in url or url.startswith("file://")


def expand_paths(args: Sequence[str], suffixes: Sequence[str]) -> list[str]:
    """Sorted, de-duplicated input URLs (see `expand_inputs`)."""
    return [item.url for item in expand_inputs(args, suffixes)]


def expand_inputs(args: Sequence[str], suffixes: Sequence[str]) -> list[InputFile]:
    """Input files from files, directories/prefixes, globs and list files, with sizes,
    sorted by URL and de-duplicated (`iter_inputs` held as a list)."""
    found: dict[str, InputFile] = {}
    for item in iter_inputs(args, suffixes):
        found.setdefault(item.url, item)
    return [found[url] for url in sorted(found)]


def iter_paths(args: Sequence[str], suffixes: Sequence[str]) -> Iterator[str]:
    """Input URLs, streamed (see `iter_inputs`)."""
    return (item.url for item in iter_inputs(args, suffixes))


def iter_inputs(args: Sequence[str], suffixes: Sequence[str]) -> Iterator[InputFile]:
    """Input files from files, directories/prefixes, globs and list files, with sizes,
    streamed: a directory is listed one level at a time and a list file read a line at a
    time, so a million inputs are never held here. A file named twice comes twice (the
    planner drops repeats: `RunDir.plan_pending(drop_duplicates=True)`).

    A directory or prefix contributes every file below it with one of `suffixes`; a list
    file (``.txt``/``.lst``/``.list``, one path or URL a line, ``#`` comments, relative
    lines resolved against the list's own location) contributes its lines; a glob its
    matches; an ``http(s)://`` URL is one file. Raises `InputError` naming each argument
    that matched nothing, once every argument has been listed.
    """
    wanted = tuple(s.lower() for s in suffixes)
    missing: list[str] = []
    for arg in args:
        matched = False
        for item in _expand_one(arg, wanted):
            matched = True
            yield item
        if not matched:
            missing.append(arg)
    if missing:
        raise InputError("no input files found for: " + ", ".join(missing))


def _normal(url: str) -> str:
    url = url.removeprefix("file://")
    return os.path.abspath(url) if "://" not in url else url


def _expand_one(arg: str, suffixes: tuple[str, ...]) -> Iterable[InputFile]:
    arg = _normal(arg)
    if arg.split("://", 1)[0] in HTTP:  # a web server lists nothing: the URL is the file
        yield InputFile(arg)
        return
    fs, root = fsspec.core.url_to_fs(arg)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]

    def url_of(path: str) -> str:
        return path if protocol in ("file", "local") else f"{protocol}://{path}"

    if fs.isdir(root):
        # walk: one directory's listing at a time (find would hold the whole tree's)
        for _, _, files in fs.walk(root, detail=True):
            for path, info in sorted((info["name"], info) for info in files.values()):
                if info.get("type", "file") == "file" and path.lower().endswith(suffixes):
                    yield InputFile(url_of(path), info.get("size"))
    elif fs.isfile(root) and root.lower().endswith(LIST_SUFFIXES) and not \
            root.lower().endswith(suffixes):
        base = url_of(root.rsplit("/", 1)[0])
        with fs.open(root, "r", encoding="utf-8") as handle:
            for line in handle:  # a line at a time: a list may name millions of files
                line = line.strip()
                if line and not line.startswith("#"):
                    target = line if ("://" in line or os.path.isabs(line)) else \
                        f"{base}/{line}"
                    yield from _one_file(_normal(target))
    elif fs.isfile(root):
        yield InputFile(url_of(root), fs.size(root))
    else:
        for path in fs.glob(root) if any(c in root for c in "*?[") else ():
            if fs.isfile(path):
                yield InputFile(url_of(path), fs.size(path))


def _one_file(url: str) -> Iterable[InputFile]:
    """A list file's line: a file URL (its size when a listing can say)."""
    if url.split("://", 1)[0] in HTTP:
        yield InputFile(url)
        return
    fs, root = fsspec.core.url_to_fs(url)
    try:
        size = fs.size(root)
    except (FileNotFoundError, OSError):
        size = None  # still an input: the worker reports it as an error record
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    yield InputFile(root if protocol in ("file", "local") else f"{protocol}://{root}", size)
