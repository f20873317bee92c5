"""Main text of a web page: the extractor's choice completed by layout, written as
markdown; a real page rendered by Chromium, and the pure parts on hand-made blocks."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pipelines.core.runner import seed_sample
from pipelines.web.main_text import align, choose_main, to_markdown
from pipelines.web.pipeline import ScreenshotPagesFn, web_refs
from pipelines.web.testsite import paragraph, serve_site


def block(text: str, tag: str = "p", ancestors=(0, 1, 2), **extra) -> dict:
    return {"kind": "text", "tag": tag, "text": text, "box": [0, 0, 10, 10],
            "ancestors": list(ancestors), "linkChars": 0, **extra}


def test_align_matches_in_order_and_ignores_far_short_matches():
    blocks = [block("Home"), block("A long first paragraph of the article body text."),
              block("Share"), block("The second paragraph, also long enough to be unique.")]
    extracted = ("A long first paragraph of the article body text.\n" + "x " * 300 +
                 "Share\nThe second paragraph, also long enough to be unique.")
    assert align(blocks, extracted) == [False, True, False, True]


def test_layout_completes_and_cleans_the_extractors_choice():
    article = (0, 1, 5)
    blocks = [
        block("Site menu", "li", (0, 1, 2), landmark="nav", linkChars=9),
        block("Lead paragraph the extractor dropped as a copyright note. " * 2, ancestors=article + (6,)),
        block("First body paragraph. " * 20, ancestors=article + (7,)),
        block("Photo credit", "figcaption", ancestors=article + (8,)),
        block("Second body paragraph. " * 20, ancestors=article + (9,)),
        block("Accept cookies", "div", (0, 1, 3), fixed=True),
        block("Related: ten other stories", "li", article + (10,), linkChars=26),
        block("Footer text", "p", (0, 1, 4), landmark="footer"),
    ]
    extracted = ("First body paragraph. " * 20 + "\n" + "Second body paragraph. " * 20 +
                 "\nAccept cookies")
    chosen = choose_main(blocks, extracted)
    assert chosen == [False, True, True, True, True, False, False, False]


def test_without_an_extractor_choice_the_visible_text_minus_chrome_is_kept():
    blocks = [block("Home", "li", landmark="nav", linkChars=4), block("Short note."),
              block("Accept", "div", fixed=True)]
    assert choose_main(blocks, "") == [False, True, False]


def test_markdown_structure():
    blocks = [block("Heading", "h2"), block("Para one."),
              block("apple", "li", lists=1, ordered=False), block("pear", "li", lists=2,
                                                                   ordered=True),
              block("City", "th", table=7, row=1), block("Pop", "th", table=7, row=1),
              block("Oslo", "td", table=7, row=2), block("700", "td", table=7, row=2),
              block("code  kept", "pre"), block("quoted", "blockquote")]
    text = to_markdown(blocks, [True] * len(blocks), title="The page")
    assert text == ("# The page\n\n## Heading\n\nPara one.\n\n- apple\n  1. pear\n\n"
                    "| City | Pop |\n| --- | --- |\n| Oslo | 700 |\n\n```\ncode  kept\n```"
                    "\n\n> quoted")
    # The title is not repeated when the text already starts with it.
    assert to_markdown([block("The page", "h1")], [True], "The page") == "# The page"


ARTICLE = f"""<!doctype html><html lang="en"><head><title>Rivers of the north</title>
<style>
  .banner {{ position: fixed; bottom: 0; left: 0; width: 300px; background: #eee; }}
  .sr {{ display: none; }}
</style></head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>
  <li><a href="/sport">Sport</a></li></ul></nav></header>
<div class="banner">We use cookies. <button>Accept all cookies</button></div>
<main><article>
  <h1>Rivers of the north</h1>
  <p>{paragraph(1, 70)}</p>
  <figure><img src="/map.png" width="200" height="120" alt="a map">
    <figcaption>Map of the river basin, credit the survey office</figcaption></figure>
  <h2>Where they flow</h2>
  <p>{paragraph(2, 70)}</p>
  <ul><li>The long river runs east</li><li>The short river runs west</li></ul>
  <table><tr><th>River</th><th>Length</th></tr><tr><td>Long</td><td>900</td></tr>
    <tr><td>Short</td><td>120</td></tr></table>
  <p style="visibility:hidden">hidden words never shown</p>
  <p class="sr">undisplayed words never shown</p>
  <p>{paragraph(3, 70)}</p>
</article>
<aside><h3>Most read</h3><ul><li><a href="/a">Other story one</a></li>
  <li><a href="/b">Other story two</a></li></ul></aside></main>
<footer><p>Copyright footer words and contact details</p></footer>
</body></html>"""


@pytest.mark.browser
def test_rendered_article_main_text_and_blocks():
    image = io.BytesIO()
    Image.new("RGB", (100, 60), "navy").save(image, format="PNG")
    server, base = serve_site({"/article": (ARTICLE.encode(), "text/html; charset=utf-8"),
                               "/map.png": (image.getvalue(), "image/png")})
    try:
        refs, _ = web_refs([base + "/article"])
        fn = ScreenshotPagesFn({"allow_private": ["127.0.0.1"], "host_delay_s": 0,
                                "retries": 0, "load_grace_s": 1})
        page = fn.run_local([seed_sample("web", refs[0], "t00000")])[0]
    finally:
        server.shutdown()
    text, web = page.text, page.meta["web"]
    assert text.startswith("# Rivers of the north\n\n")
    for part in (paragraph(1, 70), "## Where they flow", paragraph(3, 70),
                 "- The long river runs east", "| River | Length |", "| Long | 900 |",
                 "Map of the river basin"):
        assert part in text, part
    for junk in ("Home", "Sport", "cookies", "Most read", "Other story", "Copyright",
                 "hidden words", "undisplayed"):
        assert junk not in text, junk
    # The full visible text stays in meta, with boxes, in DOM order, flagged.
    blocks = web["blocks"]
    texts = [b.get("text", "") for b in blocks]
    assert any("Accept all cookies" in t for t in texts)          # visible, not main
    assert not any("hidden words" in t for t in texts)            # not visible at all
    banner = next(b for b in blocks if "Accept all cookies" in b.get("text", ""))
    assert banner["fixed"] and not banner["main"]
    heading = next(b for b in blocks if b.get("text") == "Rivers of the north")
    assert heading["tag"] == "h1" and heading["main"]
    image = next(b for b in blocks if b["kind"] == "image")
    assert image["alt"] == "a map" and image["src"].endswith("/map.png")
    x0, y0, x1, y1 = image["box"]
    assert abs(x1 - x0 - 200) < 1 and abs(y1 - y0 - 120) < 1
    order = [b["kind"] for b in blocks]
    caption = texts.index("Map of the river basin, credit the survey office")
    assert order.index("image") < caption  # DOM order: the image, then its caption
    assert web["text_source"] == "main_content"
