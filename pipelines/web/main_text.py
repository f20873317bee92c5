"""A page's main content (title, headings, paragraphs, lists, tables) as markdown, chosen
from the rendered page's blocks by trafilatura and our layout knowledge.

The browser side (`pipelines.web.extract.EXTRACT_JS`) hands over the page's visible
*blocks* (text cut where the layout starts a new block, and images, in DOM order, with
page boxes, fixed-position and landmark flags, link share, list/table context and the
ancestor chain) and a *reader HTML* (the visible DOM only, with the id/class/role hints an
extractor reads). Then:

1. trafilatura extracts the main text from the reader HTML: it sees no hidden text,
   no pop-ups, no banners (fixed boxes are left out of the reader HTML);
2. its output is aligned back onto the blocks, in order, so each block is "main" or not;
3. layout fills what the extractor skipped: blocks inside the element that holds the
   chosen text (captions, credits, a lead paragraph, repeated paragraphs) between the
   first and last chosen block, or anywhere in it when it holds little else, unless
   they are navigation-like (landmarks, link lists, fixed boxes);
4. the chosen blocks are written as markdown: ``#`` headings, ``-``/``1.`` list items,
   ``|`` tables, fenced ``pre``, ``>`` quotes.

Images are main content when they sit in the main container, are no navigation or
banner, and stand among the chosen text (between its first and last block, or next to a
chosen block). Blocks stay structured (text and images in DOM order, each with its box and
a ``main`` flag); `pipelines.web.interleave` builds the interleaved document from them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

# Landmarks whose text is never main content, even inside the main container.
CHROME_LANDMARKS = {"nav", "footer", "aside", "form", "button", "dialog", "navigation",
                    "contentinfo", "complementary", "search", "alertdialog", "menu",
                    "menubar", "toolbar", "tablist"}
HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Share of the chosen text the main container must hold.
CONTAINER_SHARE = 0.9
# Text outside the chosen range joins only when the container's unchosen text is at most
# this share of the chosen text.
TIGHT_SHARE = 0.5
# A block whose text is mostly link text is navigation, not prose.
MAX_LINK_SHARE = 0.5
_WORD = re.compile(r"\w+", re.UNICODE)


def _key(text: str) -> str:
    """What alignment compares: word characters only, case-folded (so spacing, quotes and
    markup differences between the extractor's text and the DOM's do not matter)."""
    return "".join(_WORD.findall(text.casefold()))


def extract_main(reader_html: str) -> str:
    """trafilatura's main text of the reader HTML (plain text, one block a line)."""
    import trafilatura

    return trafilatura.extract(reader_html, output_format="txt", favor_recall=True,
                               include_tables=True, include_comments=False,
                               include_formatting=False, include_links=False,
                               include_images=False, deduplicate=False) or ""


def align(blocks: list[dict[str, Any]], extracted: str) -> list[bool]:
    """Which text blocks the extractor's output holds, matched in order.

    Each block is searched in the output after the previous match; a short block (likely
    to occur by chance) only matches close to where the previous match ended.
    """
    haystack = _key(extracted)
    chosen = [False] * len(blocks)
    cursor = 0
    for index, block in enumerate(blocks):
        if block["kind"] != "text":
            continue
        needle = _key(block["text"])
        if not needle:
            continue
        found = haystack.find(needle, cursor)
        if found < 0:
            continue
        if len(needle) < 40 and found - cursor > 200:
            continue  # a few words found far ahead: probably another occurrence
        chosen[index] = True
        cursor = found + len(needle)
    return chosen


def _is_chrome(block: dict[str, Any]) -> bool:
    """Navigation, banners, pop-ups, link lists: never main text."""
    if block.get("fixed") or block.get("landmark") in CHROME_LANDMARKS:
        return True
    text_chars = len(block["text"].strip()) if block["kind"] == "text" else 0
    return text_chars > 0 and block.get("linkChars", 0) / text_chars > MAX_LINK_SHARE


def _container(blocks: list[dict[str, Any]], chosen: list[bool]) -> int | None:
    """The deepest element (by id) whose blocks hold CONTAINER_SHARE of the chosen text."""
    weight: dict[int, int] = {}
    total = 0
    for block, keep in zip(blocks, chosen):
        if not keep:
            continue
        chars = len(block["text"])
        total += chars
        for ancestor in block["ancestors"][:-1]:  # the block's own element is no container
            weight[ancestor] = weight.get(ancestor, 0) + chars
    if not total:
        return None
    best, best_depth = None, -1
    for block, keep in zip(blocks, chosen):
        if not keep:
            continue
        for depth, ancestor in enumerate(block["ancestors"][:-1]):
            if weight[ancestor] >= CONTAINER_SHARE * total and depth > best_depth:
                best, best_depth = ancestor, depth
    return best


def choose_main(blocks: list[dict[str, Any]], extracted: str) -> list[bool]:
    """The main-content flag of every block: the extractor's choice, cleaned and completed
    by layout (see the module docstring)."""
    chosen = align(blocks, extracted)
    chosen = [keep and not _is_chrome(b) for b, keep in zip(blocks, chosen)]
    container = _container(blocks, chosen)
    if container is None:
        # The extractor found nothing (a short page, a page of lists): the visible text
        # and images without navigation, banners and link lists are the best we have.
        return [not _is_chrome(b) for b in blocks]
    picked = [i for i, keep in enumerate(chosen) if keep]
    first, last = picked[0], picked[-1]
    inside = [i for i, b in enumerate(blocks) if not chosen[i] and b["kind"] == "text"
              and container in b["ancestors"] and not _is_chrome(b)]
    # Before the first / after the last chosen block only while the container is tight
    # (mostly chosen text): in a loose one (say, the whole body) that would sweep in
    # teasers and comments.
    chosen_chars = sum(len(b["text"]) for b, keep in zip(blocks, chosen) if keep)
    tight = sum(len(blocks[i]["text"]) for i in inside) <= TIGHT_SHARE * chosen_chars
    for index in inside:
        if tight or first <= index <= last or _continues(blocks, index, last):
            chosen[index] = True
    for index, block in enumerate(blocks):
        if block["kind"] == "image" and container in block["ancestors"] \
                and not _is_chrome(block) and (tight or first <= index <= last
                                               or _next_to_main(blocks, chosen, index)):
            chosen[index] = True
    return chosen


def _next_to_main(blocks: list[dict[str, Any]], chosen: list[bool], index: int) -> bool:
    """An image whose nearest text block before or after it (other images skipped) is main
    text: a lead picture above the headline, a figure closing the article."""
    for step in (-1, 1):
        other = index + step
        while 0 <= other < len(blocks) and blocks[other]["kind"] != "text":
            other += step
        if 0 <= other < len(blocks) and chosen[other]:
            return True
    return False


def _continues(blocks: list[dict[str, Any]], index: int, last: int) -> bool:
    """A block after the last chosen one that reads as more of the body (a repeated
    paragraph the extractor dropped as a duplicate): long, and of the last one's tag."""
    block = blocks[index]
    return index > last and len(block["text"]) >= 80 and block["tag"] == blocks[last]["tag"]


def to_markdown(blocks: list[dict[str, Any]], chosen: list[bool], title: str = "",
                inserts: Mapping[int, str] | None = None) -> str:
    """Markdown of the chosen text blocks in DOM order (the title first, unless the text
    already starts with it). `inserts` maps block indexes to paragraphs of their own put
    at those blocks' places (an interleaved document's image placeholders)."""
    inserts = inserts or {}
    parts: list[str] = []
    index = 0
    picked = [(i, b) for i, (b, keep) in enumerate(zip(blocks, chosen))
              if i in inserts or (keep and b["kind"] == "text")]
    while index < len(picked):
        at, block = picked[index]
        if at in inserts:
            parts.append(inserts[at])
            index += 1
            continue
        if block.get("table", -1) >= 0 and block["tag"] in ("td", "th"):
            end = index
            while end < len(picked) and picked[end][0] not in inserts \
                    and picked[end][1].get("table") == block["table"] \
                    and picked[end][1]["tag"] in ("td", "th"):
                end += 1
            parts.append(_table([b for _, b in picked[index:end]]))
            index = end
            continue
        parts.append(_block_markdown(block))
        index += 1
    text = ""
    for part in parts:
        if not part:
            continue
        joiner = "\n" if text.endswith(_LIST_END) and _is_list_line(part) else "\n\n"
        text = part if not text else text + joiner + part
    title = " ".join(title.split())
    if title and _key(title) not in _key(text[:len(title) * 3 + 200]):
        text = f"# {title}\n\n{text}" if text else f"# {title}"
    return text.replace(_LIST_END, "")


_LIST_END = "\u2063"  # invisible marker on list lines, removed at the end


def _is_list_line(part: str) -> bool:
    return part.endswith(_LIST_END)


def _block_markdown(block: dict[str, Any]) -> str:
    text, tag = block["text"], block["tag"]
    if tag in HEADING_TAGS:
        return "#" * HEADING_TAGS[tag] + " " + " ".join(text.split())
    if tag == "li":
        indent = "  " * max(0, block.get("lists", 1) - 1)
        marker = "1." if block.get("ordered") else "-"
        return f"{indent}{marker} {' '.join(text.split())}{_LIST_END}"
    if tag == "pre":
        return f"```\n{text}\n```"
    if tag == "blockquote":
        return "\n".join("> " + line for line in text.splitlines())
    return text


def _table(cells: list[dict[str, Any]]) -> str:
    """Cells of one table (DOM order, grouped by row) as a markdown table; a table whose
    cells are long prose (a layout table) becomes paragraphs instead."""
    if any(len(c["text"]) > 300 for c in cells):
        return "\n\n".join(c["text"] for c in cells)
    rows: list[list[str]] = []
    row_id = None
    for cell in cells:
        if cell.get("row") != row_id or not rows:
            rows.append([])
            row_id = cell.get("row")
        rows[-1].append(" ".join(cell["text"].split()).replace("|", "\\|"))
    width = max(len(r) for r in rows)
    lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in rows]
    lines.insert(1, "|" + " --- |" * width)
    return "\n".join(lines)


def main_text(extracted: dict[str, Any]) -> tuple[str, list[bool]]:
    """(markdown of the main content, main flag per block) for one page's extraction."""
    blocks = extracted.get("blocks") or []
    try:
        chosen = choose_main(blocks, extract_main(extracted.get("readerHtml") or ""))
    except Exception as exc:  # a page the extractor cannot parse keeps its visible text
        log.warning("main-text extraction failed: %s", exc)
        chosen = [b["kind"] == "text" and not _is_chrome(b) for b in blocks]
    markdown = to_markdown(blocks, chosen, extracted.get("title", ""))
    return markdown, chosen
