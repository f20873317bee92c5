"""Is a caption worth training on? The one quality rule for every caption source.

Captions come from sidecar files and caption tables (``vlforge images``) and, later, from
web alt text and figure captions. Scraped captions are full of text that describes no
image: nothing at all, the file's own name (``IMG_1234.jpg``, ``DSC0001``), or page
boilerplate (``image``, ``photo``, ``untitled``, ``click here``). Training an image→caption
pair on those teaches the model to answer "image". `caption_problem` names the reason a
caption is dropped (``empty``, ``file_name``, ``boilerplate``) or returns None for a usable
one; the image itself is kept by the caller, only the caption goes.
"""

from __future__ import annotations

import re

EMPTY, FILE_NAME, BOILERPLATE = "empty", "file_name", "boilerplate"
REASONS = (EMPTY, FILE_NAME, BOILERPLATE)

_IMAGE_EXT = r"(?:jpe?g|png|gif|webp|bmp|tiff?|svg|heic|heif|avif|raw|cr2|nef|dng)"
# A whole caption that is a file name or a path: "IMG_1234.JPG", "photos/cat-01.png".
_FILE = re.compile(rf"^[\w\-.()~/\\ ]*\.{_IMAGE_EXT}$", re.IGNORECASE)
# Camera and phone names without an extension: "DSC0001", "IMG_20240101_120000",
# "PXL_20231231", "DSCN 4521", "Screenshot_2024-01-02".
_CAMERA = re.compile(
    r"^(?:img|dsc[nf]?|dcim|pxl|pict?|mvimg|gopr|dji|sam|wp|scan|screenshot|screen shot|"
    r"photo|image|picture|pic|vid|p)[\s_\-]*\d[\d_\-.\s]*$", re.IGNORECASE)
# Bare ids: numbers, hex digests, UUIDs ("9f86d081884c7d65", "0001").
_ID = re.compile(r"^[\s_\-]*(?:\d+|[0-9a-f]{8,}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})"
                 r"[\s_\-]*$", re.IGNORECASE)
# Generic words, optionally numbered: "image", "Photo 3", "figure 2", "thumbnail".
_GENERIC_NUMBERED = re.compile(
    r"^(?:an? |the )?(?:image|img|photo|photograph|picture|pic|figure|fig|graphic|"
    r"illustration|thumbnail|thumb|icon|logo|banner|screenshot|untitled)s?\.?\s*#?\d*$",
    re.IGNORECASE)
BOILERPLATE_PHRASES = frozenset({
    "untitled", "no title", "untitled image", "untitled photo", "click here", "click",
    "click to enlarge", "click for larger image", "click to view", "view image", "view larger",
    "enlarge", "zoom", "image placeholder", "placeholder", "spacer", "blank", "alt",
    "alt text", "null", "none", "n/a", "na", "nan", "undefined", "default", "image not found",
    "no image", "no image available", "image not available", "no description",
    "description", "caption", "insert caption", "insert image", "stock photo",
    "featured image", "advertisement", "ad", "read more", "see more", "more", "download",
    "loading", "image of", "photo of", "picture of", "an image of", "a photo of",
    "a picture of", "image description", "this image", "this photo", "cover", "cover image",
    "avatar", "profile picture", "profile photo", "header image", "hero image", "attachment",
    "embedded image", "inline image", "image alt", "imagen", "bild", "foto",
})
_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def normalise(text: str) -> str:
    """Whitespace collapsed to single spaces and stripped (what a sample stores)."""
    return " ".join(str(text or "").split())


def caption_problem(text: str | None) -> str | None:
    """Why `text` is no caption (``empty``, ``file_name``, ``boilerplate``), or None."""
    text = normalise(text or "")
    if not any(ch.isalnum() for ch in text):
        return EMPTY
    if _FILE.match(text):
        return FILE_NAME
    # Before the camera names: "Image 3" is a page's generic label, "image_0003" a file.
    bare = _PUNCT.sub("", text).lower()
    if bare in BOILERPLATE_PHRASES or _GENERIC_NUMBERED.match(bare):
        return BOILERPLATE
    if _CAMERA.match(text) or _ID.match(text):
        return FILE_NAME
    return None
