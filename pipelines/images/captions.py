"""Captions of image files, read the way img2dataset and common datasets lay them out.

- **Sidecar files** beside ``NAME.jpg``: ``NAME.txt`` (the caption itself) and
  ``NAME.json`` (a ``caption`` or ``text`` field), as img2dataset's ``files`` output and
  most caption datasets write them. Read in the worker, next to the image, from a local
  path or any fsspec URL.
- **A caption table** (``--captions FILE``): a parquet, CSV or TSV file with a ``caption``
  (or ``text``) column and a ``url`` or ``path`` column (img2dataset's parquet also has
  ``key``, the file stem of each downloaded image). It is read once on the driver and each
  image's caption travels in its input ref, so workers never load the table.

A table row matches an image by its path/URL exactly, else by the image's file stem
(``key`` column), else by the file name of the row's url/path when that name is unique
in the table. The table, when it has the image, wins over sidecars; ``.txt`` wins over
``.json``. Whether a caption is usable is `pipelines.core.caption_quality`'s rule.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import posixpath
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.core.fetch import read_bytes

log = logging.getLogger(__name__)

CAPTION_FIELDS = ("caption", "text")
LOCATOR_FIELDS = ("url", "path")
KEY_FIELD = "key"
TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")


class CaptionTableError(ValueError):
    """A caption table that cannot be used (unknown format, no caption or locator column)."""


def _strip_file(url: str) -> str:
    return url.removeprefix("file://")


def _stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(_strip_file(path)))[0]


def _name(path: str) -> str:
    return posixpath.basename(_strip_file(path).split("?", 1)[0])


def sidecar_caption(image_path: str) -> tuple[str, str] | None:
    """``(caption, "txt" | "json")`` from the sidecar files beside `image_path`, or None.

    A sidecar that exists but holds no caption field is passed over (the next one is
    tried); an unreadable JSON file is logged and passed over.
    """
    base = posixpath.splitext(_strip_file(image_path))[0]
    try:
        return read_bytes(base + ".txt").decode("utf-8", errors="replace"), "txt"
    except FileNotFoundError:
        pass
    try:
        data = read_bytes(base + ".json")
    except FileNotFoundError:
        return None
    try:
        record = json.loads(data)
    except ValueError as exc:
        log.warning("%s.json is not JSON (%s); no caption from it", base, exc)
        return None
    if isinstance(record, Mapping):
        for name in CAPTION_FIELDS:
            if isinstance(record.get(name), str):
                return record[name], "json"
    return None


@dataclass
class CaptionTable:
    """Captions by image path/URL, file stem and (unique) file name."""

    by_locator: dict[str, str] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    by_name: dict[str, str | None] = field(default_factory=dict)  # None: name not unique
    rows: int = 0

    def add(self, caption: str, locator: str = "", key: str = "") -> None:
        """One table row."""
        self.rows += 1
        if locator:
            self.by_locator[_strip_file(locator)] = caption
            name = _name(locator)
            self.by_name[name] = None if name in self.by_name else caption
        if key:
            self.by_key[key] = caption

    def lookup(self, path: str) -> str | None:
        """The caption of the image at `path` (local path or URL), or None."""
        path = _strip_file(path)
        if path in self.by_locator:
            return self.by_locator[path]
        if _stem(path) in self.by_key:
            return self.by_key[_stem(path)]
        return self.by_name.get(_name(path))


def _table_rows(url: str) -> Iterable[Mapping[str, Any]]:
    lower = url.lower().split("?", 1)[0]
    data = read_bytes(url)
    if lower.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data), use_threads=False).to_pylist()
    if lower.endswith((".csv", ".tsv")):
        text = data.decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(text),
                                   delimiter="\t" if lower.endswith(".tsv") else ","))
    raise CaptionTableError(f"{url}: a caption table is {', '.join(TABLE_SUFFIXES)}")


def read_caption_table(url: str) -> CaptionTable:
    """The caption table at `url` (parquet / CSV / TSV, local or any fsspec URL)."""
    rows = _table_rows(url)
    table = CaptionTable()
    caption_field = locator_field = None
    for row in rows:
        if caption_field is None:
            columns = set(row)
            caption_field = next((c for c in CAPTION_FIELDS if c in columns), None)
            locators = [c for c in LOCATOR_FIELDS if c in columns]
            if caption_field is None or not (locators or KEY_FIELD in columns):
                raise CaptionTableError(
                    f"{url}: needs a {' or '.join(CAPTION_FIELDS)} column and a "
                    f"{' or '.join(LOCATOR_FIELDS)} (or {KEY_FIELD}) column; it has "
                    f"{sorted(columns)}")
            locator_field = locators[0] if locators else None
        caption = row.get(caption_field)
        if caption is None:
            continue
        locator = str(row.get(locator_field) or "") if locator_field else ""
        key = row.get(KEY_FIELD)
        table.add(str(caption), locator, str(key) if key not in (None, "") else "")
    log.info("caption table %s: %d rows", url, table.rows)
    return table


def caption_counts(samples: Iterable[Any]) -> dict[str, int]:
    """How many written samples got a caption from each source, had one dropped (per
    reason), or had none: what a run's summary shows (an image whose caption is dropped
    is still written, so these are not in the run's drop counts)."""
    counts: Counter = Counter()
    for sample in samples:
        info = sample.meta.get("image") or {}
        if info.get("caption_dropped"):
            counts[f"dropped:{info['caption_dropped']}"] += 1
        elif info.get("caption"):
            counts[f"from:{info.get('caption_source', '?')}"] += 1
        else:
            counts["none"] += 1
    return dict(sorted(counts.items()))


def attach_captions(refs: list[dict[str, Any]], table: CaptionTable) -> int:
    """Put each ref's table caption into ``ref["caption"]``; returns how many matched."""
    matched = 0
    for ref in refs:
        caption = table.lookup(ref.get("path") or ref["locator"])
        if caption is not None:
            ref["caption"] = caption
            matched += 1
    return matched
