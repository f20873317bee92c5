"""Tokenizers: the trained tiny one, and a 'published-style' one lacking image_token / pad."""

from __future__ import annotations

from model.build import init_model_dir
from model.loading import load_model
from model.tokenizer import (BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN, load_tokenizer,
                             train_tiny_tokenizer)


def test_tiny_tokenizer_round_trips_any_text():
    tokenizer = train_tiny_tokenizer(vocab_size=400)
    assert tokenizer.image_token == IMAGE_TOKEN
    ids = tokenizer.convert_tokens_to_ids([BOS_TOKEN, EOS_TOKEN, tokenizer.pad_token, IMAGE_TOKEN])
    assert ids == [0, 1, 2, 3]  # specials first: stable small ids
    text = "Ünïcode ✓ 数字 42 — never an unknown token"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    assert tokenizer(IMAGE_TOKEN * 2, add_special_tokens=False)["input_ids"] == [3, 3]


def test_published_style_tokenizer_gets_image_token_and_pad(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # Like DeepSeek's published tokenizer: <image_placeholder> in the vocabulary, but no
    # image_token attribute and no pad token.
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(["some text for a tokenizer"] * 10, trainers.BpeTrainer(
        vocab_size=300, special_tokens=[BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS_TOKEN,
                            eos_token=EOS_TOKEN).save_pretrained(str(tmp_path / "tok"))
    tokenizer = load_tokenizer(tmp_path / "tok")
    assert tokenizer.image_token == IMAGE_TOKEN and tokenizer.pad_token == EOS_TOKEN
    out = init_model_dir("tiny-siglip", tmp_path / "model", tokenizer_dir=tmp_path / "tok")
    model, processor = load_model(out)
    assert processor.tokenizer.image_token == IMAGE_TOKEN
    assert model.config.image_token_id == processor.image_token_id == 2
    assert model.config.text_config.vocab_size == len(tokenizer)
