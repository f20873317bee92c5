"""Turn what a user types (files, directories, globs, list files) into input paths."""

from __future__ import annotations

import glob
import os
from typing import Iterable, Sequence

LIST_SUFFIXES = (".txt", ".lst", ".list")


class InputError(ValueError):
    """An input argument that names nothing usable."""


def expand_paths(args: Sequence[str], suffixes: Sequence[str]) -> list[str]:
    """Absolute, de-duplicated, sorted paths from files, directories, globs and list files.

    A directory contributes every file below it with one of `suffixes`; a list file
    (``.txt``/``.lst``, one path a line, ``#`` comments) contributes its lines; a glob its
    matches. Raises `InputError` naming each argument that matched nothing.
    """
    found: list[str] = []
    missing: list[str] = []
    for arg in args:
        matches = list(_expand_one(arg, tuple(s.lower() for s in suffixes)))
        if not matches:
            missing.append(arg)
        found.extend(matches)
    if missing:
        raise InputError("no input files found for: " + ", ".join(missing))
    return sorted(set(os.path.abspath(p) for p in found))


def _expand_one(arg: str, suffixes: tuple[str, ...]) -> Iterable[str]:
    if os.path.isdir(arg):
        for root, _, files in os.walk(arg):
            for name in files:
                if name.lower().endswith(suffixes):
                    yield os.path.join(root, name)
    elif os.path.isfile(arg) and arg.lower().endswith(LIST_SUFFIXES) and not \
            arg.lower().endswith(suffixes):
        base = os.path.dirname(os.path.abspath(arg))
        with open(arg, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#"):
                    yield line if os.path.isabs(line) else os.path.join(base, line)
    elif os.path.isfile(arg):
        yield arg
    else:
        yield from (p for p in glob.glob(arg, recursive=True) if os.path.isfile(p))
