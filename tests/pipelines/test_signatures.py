"""The MinHash signatures the writer computes itself are datasketch's, byte for byte."""

import random
import subprocess
import sys

from datasketch import MinHash

from pipelines.core.signatures import (NUM_PERM, SCHEME, SEED, normalise_text, shingles,
                                       text_minhash)


def _datasketch_signature(text: str) -> bytes:
    signature = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
    signature.update_batch(list(shingles(normalise_text(text).split())))
    return signature.hashvalues.astype("<u4").tobytes()


def test_text_minhash_is_datasketchs_affine32_minhash():
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(300)] + ["été", "日本語", "Straße", "x_y", "42"]
    texts = [" ".join(rng.choice(vocab) for _ in range(n))
             for n in (8, 9, 13, 40, 250, 2500) for _ in range(20)]
    texts.append(" ".join(f"t{i}" for i in range(30_000)))  # over MAX_SHINGLES
    for text in texts:
        assert text_minhash(text) == _datasketch_signature(text)


def test_writing_a_signature_does_not_import_datasketch_or_scipy():
    probe = ("import sys; from pipelines.core.signatures import text_minhash; "
             "text_minhash('one two three four five six seven eight nine'); "
             "print(sorted(m for m in ('datasketch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def _images():
    """Grey and colour images of many sizes: noise, gradients, near-blank pages and
    uniform ones (whose DCT terms tie at the median: the bits follow the rounding)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(11)
    for trial in range(60):
        width, height = int(rng.integers(1, 900)), int(rng.integers(1, 900))
        kind = trial % 5
        if kind == 0:
            pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        elif kind == 1:
            pixels = np.full((height, width), int(rng.integers(0, 256)), dtype=np.uint8)
        elif kind == 2:
            pixels = (np.linspace(0, 255, width)[None, :] * np.ones((height, 1))).astype(np.uint8)
        elif kind == 3:
            pixels = np.full((height, width), 255, dtype=np.uint8)
            pixels[height // 3:height // 3 + 2, :width // 2] = 0
        else:
            yield Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
            continue
        yield Image.fromarray(pixels, "L")


def test_perceptual_hash_is_imagehashs_phash():
    import imagehash

    from pipelines.core.signatures import perceptual_hash

    for image in _images():
        # 3 and 5: bit counts that fill no whole hex digit or byte (the hex's padding)
        for size in (3, 5, 8, 16):
            assert perceptual_hash(image, size) == str(imagehash.phash(image, hash_size=size))
        assert perceptual_hash(image.convert("RGB")) == perceptual_hash(image)


def test_hashing_an_image_does_not_import_scipys_fft_package():
    """scipy.fftpack's import (~0.14 CPU-s: scipy's array-API layer walks numpy's lazy
    submodules) is paid by no process that hashes images."""
    probe = ("import io, sys; from PIL import Image; "
             "from pipelines.core.signatures import image_phash; "
             "buffer = io.BytesIO(); Image.linear_gradient('L').save(buffer, 'PNG'); "
             "assert len(image_phash(buffer.getvalue())) == 16; "
             "print(sorted(m for m in ('scipy.fft', 'scipy.fftpack', 'numpy.f2py') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
