"""Tokenizers for the model: DeepSeek's special tokens, and a tiny BPE trained from local text.

No hub download is possible here, so the tiny presets train their own byte-level BPE
tokenizer with the `tokenizers` library (byte-level: any text encodes, nothing is unknown).
Larger presets load the published DeepSeek tokenizer from a local directory. Either way the
result is a transformers tokenizer carrying DeepSeek's special tokens, with the
``image_token`` attribute the DeepSeek-VL processors read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"
PAD_TOKEN = "<｜▁pad▁｜>"
IMAGE_TOKEN = "<image_placeholder>"
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, IMAGE_TOKEN)

DEFAULT_CORPUS = Path(__file__).with_name("tokenizer_corpus.txt")


def _corpus_lines(paths: Iterable[str | Path]) -> Iterable[str]:
    for path in paths:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        # The bundled corpus writes newlines inside an example as a literal "\n".
        for line in text.replace("\\n", "\n").splitlines():
            if line.strip():
                yield line


def train_tiny_tokenizer(corpus: Iterable[str | Path] | None = None, vocab_size: int = 1024):
    """A byte-level BPE tokenizer trained on `corpus` files (default: the bundled text).

    Special tokens come first (ids 0..3), so the image token id is small and stable.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    paths = list(corpus) if corpus else [DEFAULT_CORPUS]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(_corpus_lines(paths), trainer)
    log.info("trained a %d-entry BPE tokenizer on %s", backend.get_vocab_size(), paths)
    return wrap_tokenizer(backend)


def wrap_tokenizer(backend):
    """A transformers fast tokenizer around a `tokenizers.Tokenizer` with DeepSeek's specials."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN, extra_special_tokens={"image_token": IMAGE_TOKEN})


def load_tokenizer(directory: str | Path):
    """A tokenizer from a local directory, made ready for the DeepSeek-VL processor.

    Published DeepSeek tokenizers have no ``image_token`` attribute and no pad token: both
    are set here (``<image_placeholder>`` is already in their vocabulary at 100015; one that
    lacks it gets it added, with a warning), the pad token falling back to end-of-sentence
    as transformers' converter does.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    extra: dict = {}
    if getattr(tokenizer, "image_token", None) is None:
        if IMAGE_TOKEN not in tokenizer.get_vocab():
            log.warning("%s has no %s token: it is added, so the embedding must grow",
                        directory, IMAGE_TOKEN)
        extra["extra_special_tokens"] = {"image_token": IMAGE_TOKEN}
    if tokenizer.pad_token is None:
        extra["pad_token"] = tokenizer.eos_token or EOS_TOKEN
    if extra:  # named special tokens are set at load time, as transformers' converter does
        tokenizer = AutoTokenizer.from_pretrained(str(directory), **extra)
    return tokenizer
