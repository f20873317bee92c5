"""Content signatures written into the manifest, so de-duplication reads manifests only.

* ``text_hash``: a hash of the sample's text after normalisation (case folded, every run of
  non-word characters one space), so re-flowed or re-punctuated copies match exactly.
* ``text_minhash``: a MinHash signature (datasketch, ``NUM_PERM`` 32-bit values, packed
  little-endian) over word ``SHINGLE``-grams of the same normalised text: its agreement with
  another signature estimates the Jaccard similarity of the two shingle sets.
* ``image_phash``: the primary image's 64-bit perceptual hash (imagehash's DCT pHash) as
  16 hex digits: a near-identical picture (re-encoded, rescaled, lightly edited) differs in
  a few bits.

Texts shorter than `MIN_WORDS` words get no MinHash (too few shingles to say anything),
and each signature costs a bounded amount of work per sample: at most `MAX_SHINGLES`
shingles are hashed and images are decoded in draft mode at thumbnail size.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Iterable

import numpy as np

NUM_PERM = 64           # signature length: std. error of the Jaccard estimate ~ 1/sqrt(64)
SHINGLE = 5             # words per shingle
MIN_WORDS = 8           # shorter texts are compared by their exact hash only
MAX_SHINGLES = 20_000   # bound the per-sample cost on huge texts (the rest is not hashed)
SEED = 1                # fixed: signatures from every worker and every run must agree
# Named, not left to datasketch's default: datasketch 2.0 changed the default scheme
# ("legacy" -> "affine32"), which would make runs written by two installs never match.
SCHEME = "affine32"

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_text(text: str) -> str:
    """Case-folded words separated by single spaces (punctuation and layout dropped)."""
    return _NON_WORD.sub(" ", text.casefold()).strip()


def text_hash(text: str | None) -> str:
    """16 hex digits identifying the normalised text ("" for no text)."""
    norm = normalise_text(text or "")
    return hashlib.blake2b(norm.encode("utf-8"), digest_size=8).hexdigest() if norm else ""


def shingles(words: list[str], size: int = SHINGLE) -> Iterable[bytes]:
    """Distinct word n-grams, at most `MAX_SHINGLES` of them, as bytes for hashing."""
    seen = dict.fromkeys(" ".join(words[i:i + size]).encode("utf-8")
                         for i in range(min(len(words) - size + 1, MAX_SHINGLES)))
    return seen.keys()


def text_minhash(text: str | None) -> bytes:
    """The packed MinHash signature of the text's shingles (b"" when too short)."""
    words = normalise_text(text or "").split()
    if len(words) < MIN_WORDS:
        return b""
    from datasketch import MinHash

    signature = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
    signature.update_batch(list(shingles(words)))
    return signature.hashvalues.astype("<u4").tobytes()


def minhash_values(packed: bytes) -> np.ndarray:
    """The signature `text_minhash` packed, as an array of `NUM_PERM` unsigned ints."""
    return np.frombuffer(packed, dtype="<u4")


def minhash_similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two packed signatures (0.0 if either is empty)."""
    if not a or not b or len(a) != len(b):
        return 0.0
    return float(np.mean(minhash_values(a) == minhash_values(b)))


def minhash_bands(packed: bytes, bands: int) -> list[str]:
    """LSH band keys: the signature cut into `bands` equal rows, each hashed to 16 hex
    digits (two texts share a band key with probability ~ similarity ** rows)."""
    if not packed:
        return []
    values = minhash_values(packed)
    rows = len(values) // bands
    return [hashlib.blake2b(values[i * rows:(i + 1) * rows].tobytes(),
                            digest_size=8).hexdigest() for i in range(bands)]


def image_phash(data: bytes | None) -> str:
    """The image's 64-bit perceptual hash as 16 hex digits ("" for no/undecodable image)."""
    if not data:
        return ""
    import imagehash
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (128, 128))  # JPEG decodes at thumbnail size; others ignore it
            return str(imagehash.phash(image.convert("L")))
    except Exception:  # a broken image is the image stage's problem, not the signature's
        return ""


def phash_distance(a: str, b: str) -> int:
    """Hamming distance of two hex perceptual hashes (64 when either is missing)."""
    if not a or not b:
        return 64
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def phash_chunks(value: str, chunks: int) -> list[str]:
    """The hash cut into `chunks` bit ranges: two hashes within ``chunks - 1`` bits agree
    on at least one chunk (pigeonhole), so the chunks are exact bucket keys for a
    near-duplicate search."""
    if not value:
        return []
    bits = bin(int(value, 16))[2:].zfill(64)
    size = -(-64 // chunks)
    return [bits[i:i + size] for i in range(0, 64, size)]
