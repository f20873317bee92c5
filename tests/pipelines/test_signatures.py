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
