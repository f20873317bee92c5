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

The MinHash is datasketch's ``MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)``
computed here in a few numpy lines (`_affine32_minhash`; a test holds it to datasketch's
bytes): ``import datasketch`` imports scipy's integrate, optimize and sparse packages,
0.5 CPU-s in every process that writes a sample (the serial sink of a run included), and
the class draws its permutations again for every sample.
"""

from __future__ import annotations

import functools
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
    return _affine32_minhash(shingles(words)).astype("<u4").tobytes()


@functools.lru_cache(maxsize=1)
def _affine32_permutations() -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a odd, b) for `SEED`, drawn as it does."""
    gen = np.random.RandomState(SEED)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


def _affine32_minhash(values: Iterable[bytes]) -> np.ndarray:
    """The hash values of datasketch's affine32 MinHash after ``update_batch(values)``:
    the first 4 bytes of each value's SHA-1 (little-endian), the MurmurHash3 32-bit
    finalizer, then ``a * h + b`` mod 2^32 per permutation, and the minimum of each."""
    digests = b"".join(hashlib.sha1(v).digest()[:4] for v in values)
    empty = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
    if not digests:
        return empty
    hv = np.frombuffer(digests, dtype="<u4").astype(np.uint32).reshape(-1, 1)
    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    hv = hv ^ (hv >> np.uint32(16))
    a, b = _affine32_permutations()
    return np.minimum(empty, (hv * a + b).min(axis=0))


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
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (128, 128))  # JPEG decodes at thumbnail size; others ignore it
            return perceptual_hash(image.convert("L"))
    except Exception:  # a broken image is the image stage's problem, not the signature's
        return ""


def perceptual_hash(image, hash_size: int = 8) -> str:
    """``str(imagehash.phash(image, hash_size))``: the same resize, the same DCT routine
    called the same way (`_dct_ii`), the same bits, as hex digits."""
    from PIL import Image

    size = hash_size * 4  # imagehash's highfreq_factor
    grey = image if image.mode == "L" else image.convert("L")  # convert would copy it
    pixels = np.asarray(grey.resize((size, size), Image.Resampling.LANCZOS))
    dct = _dct_ii()
    low = dct(dct(pixels, 0), 1)[:hash_size, :hash_size]
    return _bits_hex(low > np.median(low))


def _bits_hex(bits: np.ndarray) -> str:
    """``str(imagehash.ImageHash(bits))``: the bits, first most significant, as hex digits
    (a digit per 4 bits, rounded up, zero-padded), packed by numpy instead of imagehash's
    string of "0"s and "1"s (a `str` per bit: ~25 us of a page's 256-bit hash)."""
    flat = np.asarray(bits, dtype=bool).ravel()
    value = int.from_bytes(np.packbits(flat).tobytes(), "big") >> (-flat.size % 8)
    return format(value, f"0{-(-flat.size // 4)}x")


@functools.lru_cache(maxsize=1)
def _dct_ii():
    """``scipy.fftpack.dct(x, axis=axis)`` (a DCT-II, unnormalised) as a function of
    (x, axis): scipy's pocketfft routine with the arguments scipy.fftpack passes it.

    Importing ``scipy.fftpack`` costs ~0.14 CPU-s in every process that hashes an image
    (each PDF renderer child, the writer of a run): scipy's array-API layer imports it
    and walks numpy's lazy submodules (numpy.f2py, numpy.testing, numpy.ma ...). The
    routine itself is one compiled module, loaded here alone from scipy's install; where
    it is not where this expects it, scipy.fftpack is imported as before."""
    try:
        import importlib.machinery
        import importlib.util
        import os

        import scipy

        name = "scipy.fft._pocketfft.pypocketfft"
        folder = os.path.join(os.path.dirname(scipy.__file__), "fft", "_pocketfft")
        path = next(os.path.join(folder, "pypocketfft" + suffix)
                    for suffix in importlib.machinery.EXTENSION_SUFFIXES
                    if os.path.exists(os.path.join(folder, "pypocketfft" + suffix)))
        loader = importlib.machinery.ExtensionFileLoader(name, path)
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
        loader.exec_module(module)
        routine = module.dct

        def dct(x: np.ndarray, axis: int) -> np.ndarray:
            # scipy.fft's _r2r: float64 input (a converted copy is transformed in place),
            # type 2, norm None -> 0, one worker, orthogonalize None
            data = np.asarray(x, dtype=np.float64)
            return routine(data, 2, (axis,), 0, data if data is not x else None, 1, None)

        return dct
    except Exception:  # noqa: BLE001 - another scipy layout: its public function, as before
        import scipy.fftpack

        return lambda x, axis: scipy.fftpack.dct(x, axis=axis)


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
