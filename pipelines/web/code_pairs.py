"""Web code pairs for pretraining: a page's viewport screenshot → its simplified HTML.

The page sample already carries a simplified HTML of the visible DOM (no scripts, styles
or hidden elements, a few attributes; `pipelines.web.extract`). The code pair cuts it to
``code_max_chars`` (`pipelines.web.interleave.DerivedSettings`) so screenshot and code fit
one training sequence: the cut falls between tags or at a space inside text, never inside
a tag or a character reference, and the elements still open there are closed, so the
result is well-formed HTML. ``meta["web"]["truncated"]`` says whether anything was cut.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipelines.core.sample import Sample
from pipelines.web.interleave import derived_locator

# Our simplified HTML escapes "<", ">" and quotes in text and attribute values, so a tag is
# exactly "<" up to the next ">".
_TOKEN = re.compile(r"<[^>]*>|[^<]+")
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})
_OPEN = re.compile(r"<([a-zA-Z][\w-]*)")
_CLOSE = re.compile(r"</([a-zA-Z][\w-]*)\s*>")


def cut_html(html: str, max_chars: int) -> tuple[str, bool]:
    """(`html` cut to at most `max_chars` characters and closed, whether it was cut)."""
    if len(html) <= max_chars:
        return html, False
    out: list[str] = []
    size = 0
    stack: list[str] = []  # open elements, innermost last

    def closing(names: list[str]) -> int:
        return sum(len(n) + 3 for n in names)

    for match in _TOKEN.finditer(html):
        token = match.group(0)
        opened = _OPEN.match(token)
        closed = _CLOSE.match(token)
        after = list(stack)
        if closed and after and after[-1] == closed.group(1).lower():
            after.pop()
        elif opened and not token.endswith("/>") and opened.group(1).lower() not in _VOID:
            after.append(opened.group(1).lower())
        if size + len(token) + closing(after) <= max_chars:
            out.append(token)
            size += len(token)
            stack = after
            continue
        if not token.startswith("<"):  # text: keep the words that fit
            room = max_chars - size - closing(stack)
            part = _cut_text(token, room)
            if part:
                out.append(part)
        break
    out.extend(f"</{name}>" for name in reversed(stack))
    return "".join(out), True


def _cut_text(text: str, room: int) -> str:
    """The longest prefix of `text` within `room` characters that ends at a space and
    not inside a character reference (``&amp;``)."""
    if room <= 0:
        return ""
    part = text[:room]
    space = part.rfind(" ")
    part = part[:space] if space > 0 else ""
    amp = part.rfind("&")
    if amp >= 0 and ";" not in part[amp:]:
        part = part[:amp]
    return part


def code_pair(page: Sample, url: str, web: Mapping[str, Any], viewport_png: bytes, html: str,
              max_chars: int, source_truncated: bool = False) -> Sample | None:
    """The screenshot → HTML pair of a page (None when the page has no HTML)."""
    if not html:
        return None
    code, truncated = cut_html(html, max_chars)
    pair = page.derive(derived_locator(url, "code", 0), image=viewport_png, text=code,
                       html=code)
    return pair.with_meta("web", {
        "kind": "code", "url": url, "final_url": web.get("final_url", url),
        "title": web.get("title", ""), "lang": web.get("lang"), "image": "viewport",
        "width": web.get("width"), "height": web.get("height"),
        "html_chars": len(html), "chars": len(code), "max_chars": max_chars,
        "truncated": truncated, "source_truncated": bool(source_truncated),
        "render": web.get("render", {})})
