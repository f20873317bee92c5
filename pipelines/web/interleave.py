"""A crawled page's main content as one interleaved image-text document.

The page's blocks (`pipelines.web.extract`: visible text and images in DOM order, each with
a ``main`` flag from `pipelines.web.main_text`) say where each image stands. Every image
gets a verdict, in this order (first match wins), so none is lost silently:

==================  ================================================================
reason              the image is...
==================  ================================================================
``decorative``      ``aria-hidden`` (itself or an ancestor) or ``role=presentation|none``
``failed_load``     loaded and broken (no pixels) — or refused by the request guard
``not_loaded``      never loaded (a lazy loader that did not fire)
``tiny``            shown or stored smaller than ``min_image_side`` (trackers, icons)
``not_main``        outside the main content (navigation, sidebars, teasers)
``not_captured``    main, but past the renderer's budget of image bodies per page
``robots_disallowed`` / ``no_ai`` / ``http_NNN`` / ``too_large`` / ``body_unavailable``
                    the renderer's verdict on its bytes (`pipelines.web.browser`);
                    ``too_large`` also for more than `MAX_PIXELS` pixels
``undecodable``     bytes that are no raster image (an SVG file, a truncated JPEG)
``duplicate``       the same picture (URL) again in this document
``over_limit``      past ``max_images`` per document (kept for captions)
==================  ================================================================

The document (`interleaved_sample`) is a derived sample whose ``image`` is the first kept
picture and ``extra_images`` the rest (PNG), and whose text is the main-content markdown
with one `IMAGE_PLACEHOLDER` at each kept picture's place, in DOM order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.core.sample import Sample, as_png
from pipelines.core.text import IMAGE_PLACEHOLDER, MAX_DOCUMENT_IMAGES, image_dimensions
from pipelines.web.main_text import CHROME_LANDMARKS, to_markdown

# The renderer takes the bytes of at most this many candidate images per document image
# allowed: which candidates are main content is only known after the page is released.
BODIES_PER_IMAGE = 3
# Larger pictures (a PNG passes through undecoded) would cost every reader a huge decode.
MAX_PIXELS = 40_000_000
# Dropped images listed one by one in meta (a page of 200 thumbnails and icons would
# otherwise bloat every sample's JSON); the counts by reason always cover all of them.
MAX_LISTED = 100


@dataclass(frozen=True)
class DerivedSettings:
    """Which derived samples a crawled page yields, and their limits.

    interleaved: one interleaved document per page whose main content holds images.
    captions: one caption pair per main-content image with a usable figcaption or alt.
    code_pairs: one screenshot → simplified-HTML pair per page (the paper's web code
        data). Its image is the page sample's own; dedup keeps both, since its content
        buckets are per source and kind (page, tile, code...).
    max_images: images per interleaved document. 6 is what the paper's 4096-token
        sequences hold (six 576-token blocks and the text around them; the trainer's
        collator keeps six too).
    min_image_side: images shown or stored smaller than this many px on a side are
        trackers, icons and bullets, dropped as ``tiny``.
    max_image_bytes: larger image bodies are dropped (``too_large``).
    code_max_chars: the code pair's HTML is cut (at a tag, never inside one) to this many
        characters: a 4096-token sequence less the screenshot's 576 tokens and some room;
        a token of (mostly ASCII) HTML covers at least one character.
    """

    interleaved: bool = True
    captions: bool = True
    code_pairs: bool = True
    max_images: int = MAX_DOCUMENT_IMAGES
    min_image_side: int = 64
    max_image_bytes: int = 10_000_000
    code_max_chars: int = 3400

    @property
    def takes_images(self) -> bool:
        """Whether the renderer needs the pages' image bytes at all."""
        return self.interleaved or self.captions

    def problems(self) -> list[str]:
        """Every invalid value, as messages for `WebConfig.problems`."""
        found = []
        for name in ("max_images", "min_image_side", "max_image_bytes", "code_max_chars"):
            if getattr(self, name) < 1:
                found.append(f"derived.{name} must be >= 1 (got {getattr(self, name)})")
        return found


@dataclass
class ImageVerdict:
    """One image block of a page and what became of it (`reason` "" = usable)."""

    index: int  # block index in the page's blocks
    block: Mapping[str, Any]
    reason: str = ""
    png: bytes | None = None
    size: tuple[int, int] = (0, 0)

    def record(self) -> dict[str, Any]:
        """The image as listed in meta: src, alt, box, size and the reason."""
        out = {"block": self.index, "src": self.block.get("src", "")[:500],
               "alt": self.block.get("alt", ""),
               "box": [round(v, 1) for v in self.block.get("box", [0, 0, 0, 0])]}
        if self.block.get("figcaption"):
            out["figcaption"] = self.block["figcaption"]
        if self.png is not None:
            out.update(width=self.size[0], height=self.size[1])
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class PageImages:
    """Every image block of one page with its verdict, in DOM order."""

    verdicts: list[ImageVerdict] = field(default_factory=list)

    @property
    def usable(self) -> list[ImageVerdict]:
        """Main-content pictures with bytes (the document's, then the over-limit ones)."""
        return [v for v in self.verdicts if v.reason in ("", "over_limit")]

    @property
    def kept(self) -> list[ImageVerdict]:
        """The interleaved document's pictures."""
        return [v for v in self.verdicts if not v.reason]

    def dropped_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(v.reason for v in self.verdicts if v.reason).items()))

    def summary(self) -> dict[str, Any]:
        """What the page sample's ``meta["web"]["images"]`` records: counts, and each
        dropped image with its reason (the first `MAX_LISTED`; the counts cover all)."""
        dropped = [v for v in self.verdicts if v.reason]
        return {"total": len(self.verdicts), "kept": len(self.kept),
                "dropped_by_reason": self.dropped_by_reason(),
                "dropped": [v.record() for v in dropped[:MAX_LISTED]],
                "dropped_unlisted": max(0, len(dropped) - MAX_LISTED)}


def screen_reason(block: Mapping[str, Any], settings: DerivedSettings) -> str:
    """The reason an image block is no candidate, from its own facts alone ("" = candidate).

    The renderer asks this before taking bytes; `judge_images` asks it again."""
    if block.get("decorative"):
        return "decorative"
    x0, y0, x1, y1 = block.get("box", (0, 0, 0, 0))
    natural = block.get("natural") or (0, 0)
    # Load state first: a broken or unloaded image shows as a small box, and "tiny" would
    # hide why it has no pixels.
    if not natural[0]:
        return "failed_load" if block.get("complete") else "not_loaded"
    side = settings.min_image_side
    if min(x1 - x0, y1 - y0) < side or min(natural) < side:
        return "tiny"
    return ""


def is_chrome_image(block: Mapping[str, Any]) -> bool:
    """Fixed-position or inside navigation/banner landmarks: never main content."""
    return bool(block.get("fixed")) or block.get("landmark") in CHROME_LANDMARKS


def judge_images(blocks: list[Mapping[str, Any]], chosen: list[bool],
                 bodies: Mapping[str, bytes], refused: Mapping[str, str],
                 settings: DerivedSettings) -> PageImages:
    """A verdict for every image block (see the module docstring for the reasons).

    `bodies` are the image bytes the renderer took, by src; `refused` its reasons for the
    candidates it took none of.
    """
    page = PageImages()
    seen: set[str] = set()
    kept = 0
    for index, block in enumerate(blocks):
        if block["kind"] != "image":
            continue
        verdict = ImageVerdict(index, block)
        page.verdicts.append(verdict)
        src = block.get("src", "")
        verdict.reason = screen_reason(block, settings)
        if verdict.reason:
            continue
        if not chosen[index]:
            verdict.reason = "not_main"
        elif src in refused:
            verdict.reason = refused[src]
        elif src not in bodies:
            verdict.reason = "not_captured"
        elif src in seen:
            verdict.reason = "duplicate"
        else:
            verdict.reason = _decode(verdict, bodies[src], settings)
        if verdict.reason:
            continue
        seen.add(src)
        if kept >= settings.max_images:
            verdict.reason = "over_limit"
        kept += 1
    return page


def _decode(verdict: ImageVerdict, data: bytes, settings: DerivedSettings) -> str:
    """Store the picture as PNG (every pipeline's image member); a reason on failure."""
    try:
        png = as_png(data)
    except Exception:  # SVG files, truncated or unknown formats: PIL's many errors
        return "undecodable"
    size = image_dimensions(png)
    if not size:
        return "undecodable"
    if min(size) < settings.min_image_side:
        return "tiny"
    if size[0] * size[1] > MAX_PIXELS:
        return "too_large"
    verdict.png, verdict.size = png, size
    return ""


def interleaved_text(blocks: list[Mapping[str, Any]], chosen: list[bool],
                     kept: list[ImageVerdict], title: str = "") -> str:
    """The main-content markdown with one `IMAGE_PLACEHOLDER` paragraph at each kept
    picture's place. A placeholder spelled in the page's own text is removed first: the
    i-th placeholder must be the i-th image."""
    clean = [_without_placeholder(b) for b in blocks]
    inserts = {v.index: IMAGE_PLACEHOLDER for v in kept}
    return to_markdown(clean, chosen, title.replace(IMAGE_PLACEHOLDER, ""), inserts)


def _without_placeholder(block: Mapping[str, Any]) -> Mapping[str, Any]:
    text = block.get("text")
    if text and IMAGE_PLACEHOLDER in text:
        return {**block, "text": text.replace(IMAGE_PLACEHOLDER, "")}
    return block


def derived_locator(url: str, kind: str, number: int) -> str:
    """The locator of a sample derived from the page at `url`: ``URL#&KIND=N``. The
    ``&KIND=N`` ending is the record contract (`pipelines.app.mix` reads the kind from it);
    the fragment keeps it apart from every crawled URL (a canonical URL has none), so no
    page ever shares a derived sample's key."""
    return f"{url}#&{kind}={number}"


def interleaved_sample(page: Sample, url: str, web: Mapping[str, Any],
                       blocks: list[Mapping[str, Any]], chosen: list[bool],
                       images: PageImages) -> Sample | None:
    """The page's interleaved document, or None when its main content kept no picture."""
    kept = images.kept
    if not kept:
        return None
    text = interleaved_text(blocks, chosen, kept, web.get("title", ""))
    doc = page.derive(derived_locator(url, "interleaved", 0), image=kept[0].png,
                      extra_images=tuple(v.png for v in kept[1:]), text=text)
    return doc.with_meta("web", {
        "kind": "interleaved", "url": url, "final_url": web.get("final_url", url),
        "title": web.get("title", ""), "lang": web.get("lang"),
        "images": [v.record() for v in kept], "placeholders": len(kept),
        "images_dropped_by_reason": images.dropped_by_reason(),
        "images_dropped": images.summary()["dropped"],
        "render": web.get("render", {})})

