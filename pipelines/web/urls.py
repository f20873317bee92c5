"""URLs for the crawl: reading URL lists, canonical forms, same-site tests, PDF links.

The canonical form is what the crawl dedups on and what input ids are made from, so two
spellings of one page (``HTTP://Example.com:80/a#top`` and ``http://example.com/a``) are one
input.
"""

from __future__ import annotations

import csv
import os
from typing import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import fsspec

# Query parameters that only track the visitor; dropping them merges duplicate pages.
TRACKING_PARAMS = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid")
DEFAULT_PORTS = {"http": 80, "https": 443}
URL_COLUMNS = ("url", "URL", "link", "href")


class MalformedUrl(ValueError):
    """A string that is not an absolute http(s) URL with a host."""


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, no fragment, no tracking parameters.

    Raises `MalformedUrl` for anything without a scheme and host (the scheme itself is
    judged by the policy, so ``file:`` and ``chrome:`` URLs pass through here unchanged).
    """
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MalformedUrl(f"{url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if scheme and parts.scheme.isascii() and ":" in url:
            return url  # a non-web scheme: kept verbatim so the policy can name it
        raise MalformedUrl(f"{url!r}: not an absolute URL")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host or any(c in host for c in " <>\"{}|\\^`"):
        raise MalformedUrl(f"{url!r}: no valid host")
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not k.lower().startswith(TRACKING_PARAMS)])
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def site_of(url: str) -> str:
    """The host a link must share to count as same-site (``www.`` is ignored)."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def same_site(url: str, other: str) -> bool:
    parts, other_parts = urlsplit(url), urlsplit(other)
    return (site_of(url) == site_of(other) and parts.port == other_parts.port
            and parts.scheme in ("http", "https") and other_parts.scheme in ("http", "https"))


def looks_like_pdf(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".pdf")


def read_url_list(path: str) -> list[str]:
    """URLs from a text file (one a line, ``#`` comments), a CSV or a parquet file.

    CSV and parquet files need a column named url (or URL, link, href); a CSV without a
    header is read from its first column.
    """
    lower = path.lower()
    if lower.endswith(".parquet"):
        import pyarrow.parquet as pq

        with fsspec.open(path, "rb") as handle:  # a local path or any fsspec URL (s3://...)
            table = pq.read_table(handle, use_threads=False)
        column = next((c for c in URL_COLUMNS if c in table.column_names), None)
        if column is None:
            raise ValueError(f"{path}: no url column (one of {', '.join(URL_COLUMNS)})")
        return [str(u) for u in table.column(column).to_pylist() if u]
    with fsspec.open(path, "r", encoding="utf-8", newline="") as handle:
        if lower.endswith(".csv"):
            rows = list(csv.reader(handle))
            if not rows:
                return []
            header = rows[0]
            column = next((header.index(c) for c in URL_COLUMNS if c in header), None)
            body = rows[1:] if column is not None else rows
            return [row[column or 0].strip() for row in body if row and row[column or 0].strip()]
        return [line.strip() for line in handle
                if line.strip() and not line.lstrip().startswith("#")]


def read_url_args(args: Iterable[str]) -> list[str]:
    """Each argument is a URL list file or, if no such file exists, a URL itself."""
    urls: list[str] = []
    for arg in args:
        urls.extend(read_url_list(arg) if _is_list_file(arg) else [arg])
    return urls


def _is_list_file(arg: str) -> bool:
    """A local file, or a file on an object store (``s3://``, ``gs://``...); an http(s)
    argument is always a URL to crawl."""
    if os.path.isfile(arg):
        return True
    scheme = arg.split("://", 1)[0] if "://" in arg else ""
    if not scheme or scheme in ("http", "https"):
        return False
    fs, root = fsspec.core.url_to_fs(arg)
    return fs.isfile(root)
