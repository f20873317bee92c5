"""The pure parts of the web derived samples: image verdicts, placeholders in the main
text, caption choice, and cutting HTML for code pairs (no browser)."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from typing import ClassVar

import pytest
from PIL import Image

from pipelines.core.sample import Sample
from pipelines.core.text import IMAGE_PLACEHOLDER
from pipelines.web.captions import caption_pairs, choose_caption
from pipelines.web.code_pairs import cut_html
from pipelines.web.interleave import (
    DerivedSettings,
    interleaved_sample,
    judge_images,
    screen_reason,
)


def png(size=(200, 120), colour="red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def text(t, tag="p", ancestors=(0, 1, 2)):
    return {"kind": "text", "tag": tag, "text": t, "box": [0, 0, 500, 20],
            "ancestors": list(ancestors), "fixed": False, "landmark": "", "linkChars": 0}


def image(src, box=(0, 0, 300, 200), natural=(300, 200), complete=True, alt="", **extra):
    return {"kind": "image", "tag": "img", "src": src, "alt": alt, "box": list(box),
            "natural": list(natural), "complete": complete, "decorative": "",
            "figure": -1, "figcaption": "", "ancestors": [0, 1, 9], "fixed": False,
            "landmark": "", **extra}


@pytest.mark.parametrize("block,reason", [
    (image("a", decorative="aria_hidden"), "decorative"),
    (image("a", decorative="presentation"), "decorative"),
    (image("a", box=(0, 0, 1, 1), natural=(1, 1)), "tiny"),
    (image("a", box=(0, 0, 300, 200), natural=(16, 16)), "tiny"),   # an icon blown up
    (image("a", box=(0, 0, 24, 24)), "tiny"),
    (image("a", natural=(0, 0), complete=True), "failed_load"),
    (image("a", natural=(0, 0), complete=False), "not_loaded"),
    (image("a"), ""),
])
def test_screen_reason(block, reason):
    assert screen_reason(block, DerivedSettings()) == reason


def test_verdicts_placeholders_and_limits():
    blocks = [text("Title", "h1"), image("a"), text("One."), image("b"), text("Two."),
              image("a"), image("c"), text("Three."), image("d"), image("bad"), image("nav")]
    chosen = [True] * 10 + [False]
    bodies = {"a": png(), "b": png(colour="blue"), "c": png(colour="green"),
              "d": png(colour="gray"), "bad": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}
    settings = DerivedSettings(max_images=3)
    images = judge_images(blocks, chosen, bodies, {"c": "robots_disallowed"}, settings)
    assert [(v.block["src"], v.reason) for v in images.verdicts] == [
        ("a", ""), ("b", ""), ("a", "duplicate"), ("c", "robots_disallowed"), ("d", ""),
        ("bad", "undecodable"), ("nav", "not_main")]
    assert images.dropped_by_reason() == {"duplicate": 1, "not_main": 1,
                                          "robots_disallowed": 1, "undecodable": 1}
    over = judge_images(blocks, chosen, bodies, {}, DerivedSettings(max_images=2))
    assert [v.reason for v in over.verdicts][:5] == ["", "", "duplicate", "over_limit", "over_limit"]
    assert len(over.kept) == 2 and len(over.usable) == 4

    page = Sample.create("web", "http://x/a", text="t")
    doc = interleaved_sample(page, "http://x/a", {"title": "Title"}, blocks, chosen, images)
    assert doc.locator == "http://x/a#&interleaved=0"
    assert doc.meta["web"]["kind"] == "interleaved"
    assert doc.lineage["derived_from"] == page.key and len(doc.images) == 3
    P = IMAGE_PLACEHOLDER
    assert doc.text == f"# Title\n\n{P}\n\nOne.\n\n{P}\n\nTwo.\n\nThree.\n\n{P}"


def test_a_placeholder_in_the_page_text_is_not_an_image():
    blocks = [text(f"Write {IMAGE_PLACEHOLDER} in a prompt."), image("a")]
    images = judge_images(blocks, [True, True], {"a": png()}, {}, DerivedSettings())
    doc = interleaved_sample(Sample.create("web", "u"), "u", {}, blocks, [True, True], images)
    assert doc.text.count(IMAGE_PLACEHOLDER) == 1 and len(doc.images) == 1


def test_no_document_without_a_kept_picture():
    blocks = [text("Only text."), image("a", natural=(0, 0), complete=False)]
    images = judge_images(blocks, [True, True], {}, {}, DerivedSettings())
    assert interleaved_sample(Sample.create("web", "u"), "u", {}, blocks, [True, True],
                              images) is None
    assert images.summary()["dropped_by_reason"] == {"not_loaded": 1}
    # Main, loaded, but its bytes were not taken (past the renderer's budget): said so.
    blocks = [text("Only text."), image("a")]
    images = judge_images(blocks, [True, True], {}, {}, DerivedSettings())
    assert images.summary()["dropped_by_reason"] == {"not_captured": 1}


@pytest.mark.parametrize("alt,figcaption,shared,expected", [
    ("IMG_1234.jpg", "A heron on the pier.", 1, ("A heron on the pier.", "figcaption", "")),
    ("A gull on a post", "", 1, ("A gull on a post", "alt", "")),
    ("A gull on a post", "Photos of the day", 2, ("A gull on a post", "alt", "")),
    ("IMG_1234.jpg", "", 1, ("", "", "file_name")),
    ("", "", 1, ("", "", "empty")),
    ("", "image", 1, ("", "", "boilerplate")),
    ("click to enlarge", "", 1, ("", "", "boilerplate")),
])
def test_caption_choice(alt, figcaption, shared, expected):
    from pipelines.web.interleave import ImageVerdict

    verdict = ImageVerdict(0, image("a", alt=alt, figure=5, figcaption=figcaption))
    assert choose_caption(verdict, {5: shared}) == expected


def test_caption_pairs_record_dropped_captions():
    blocks = [image("a", alt="A red square"), image("b", alt="DSC0001")]
    images = judge_images(blocks, [True, True], {"a": png(), "b": png()}, {}, DerivedSettings())
    pairs, record = caption_pairs(Sample.create("web", "u"), "u", {}, blocks, images)
    assert [(p.text, p.meta["web"]["kind"], p.locator) for p in pairs] == [
        ("A red square", "caption", "u#&caption=0")]
    assert record["dropped_by_reason"] == {"file_name": 1} and record["pairs"] == 1


class _Checker(HTMLParser):
    VOID: ClassVar[set[str]] = {"img", "br", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, tag


HTML = ('<html lang="en"><body><h1>Title &amp; more</h1><div><p>First words of a long '
        'paragraph that goes on and on.</p><img src="/a.png" alt="x"><ul><li>one</li>'
        '<li>two &lt;three&gt;</li></ul></div><p>End</p></body></html>')


@pytest.mark.parametrize("limit", list(range(40, len(HTML) + 5, 7)))
def test_cut_html_is_within_budget_and_well_formed(limit):
    cut, truncated = cut_html(HTML, limit)
    assert truncated == (len(HTML) > limit)
    assert len(cut) <= limit
    checker = _Checker()
    checker.feed(cut)
    checker.close()
    assert checker.stack == []
    if truncated:
        assert cut.endswith("</body></html>")
        assert all(";" in cut[i:i + 6] for i, ch in enumerate(cut) if ch == "&")
    else:
        assert cut == HTML
    # Never inside a tag: without the closing tags it added, the cut is a prefix of the
    # source ending at a tag or a space.
    assert body_prefix(cut, HTML)


def body_prefix(cut: str, source: str) -> bool:
    """The cut without its added closing tags is a prefix of the source."""
    while cut and not source.startswith(cut):
        if not cut.endswith(">"):
            return False
        cut = cut[:cut.rindex("</")] if "</" in cut else ""
    return bool(cut)
