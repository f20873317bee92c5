"""Collator: chat format, answer-only labels token by token, images, padding, bad input."""

from __future__ import annotations

import pytest
import torch

from model.collate import IGNORE_INDEX, SampleEncodeError, VLCollator, model_inputs
from pipelines.core.sample import Sample

from .conftest import conversation_sample, draw_png


@pytest.fixture(scope="module")
def processor(tiny_models):
    return tiny_models["tiny"][1]


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_conversation_labels_token_by_token(processor):
    tok = processor.tokenizer
    n = processor.num_image_tokens
    image = processor.image_token_id
    collate = VLCollator(processor)
    encoded = collate.encode(conversation_sample(images=1, turns=2, system="Be brief."))

    # Build the expected sequence piece by piece: (ids, trained?)
    pieces = [([tok.bos_token_id], False),
              (_ids(tok, "Be brief.\n\n"), False),
              (_ids(tok, "User: ") + [image] * n + _ids(tok, " What colour is it?\n\n"), False),
              (_ids(tok, "Assistant:"), False),
              (_ids(tok, " Red, answer 0."), True), ([tok.eos_token_id], True),
              (_ids(tok, "User: Sure?\n\n"), False),
              (_ids(tok, "Assistant:"), False),
              (_ids(tok, " Red, answer 1."), True), ([tok.eos_token_id], True)]
    expected_ids = [i for ids, _ in pieces for i in ids]
    expected_labels = [i if trained else IGNORE_INDEX for ids, trained in pieces for i in ids]
    assert encoded.input_ids == expected_ids
    assert encoded.labels == expected_labels
    assert encoded.input_ids.count(image) == n and len(encoded.images) == 1
    # What the loss sees decodes to exactly the two answers and their end tokens.
    trained = [i for i, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX]
    assert tok.decode(trained) == " Red, answer 0.<｜end▁of▁sentence｜> Red, answer 1.<｜end▁of▁sentence｜>"


def test_default_system_prompt_is_masked_and_optional(processor):
    with_default = VLCollator(processor).encode(conversation_sample(images=0))
    without = VLCollator(processor, system_prompt=None).encode(conversation_sample(images=0))
    assert len(with_default.input_ids) > len(without.input_ids)
    extra = len(with_default.input_ids) - len(without.input_ids)
    assert with_default.labels[1:1 + extra] == [IGNORE_INDEX] * extra
    assert with_default.input_ids[1 + extra:] == without.input_ids[1:]


def test_pair_and_text_only_samples(processor):
    tok = processor.tokenizer
    n = processor.num_image_tokens
    collate = VLCollator(processor)
    pair = collate.encode(Sample.create("images", "p", image=draw_png(), text="a red box"))
    assert pair.kind == "pair"
    assert pair.input_ids == [tok.bos_token_id] + [processor.image_token_id] * n \
        + _ids(tok, "a red box") + [tok.eos_token_id]
    assert pair.labels == [IGNORE_INDEX] * (1 + n) + _ids(tok, "a red box") + [tok.eos_token_id]
    text = collate.encode(Sample.create("text", "t", markdown="# Title"))
    assert text.kind == "text" and not text.images
    assert text.labels == [IGNORE_INDEX] + _ids(tok, "# Title") + [tok.eos_token_id]


def test_batch_of_mixed_samples_pads_and_orders_images(processor):
    collate = VLCollator(processor)
    samples = [conversation_sample(images=3), Sample.create("text", "t", text="hello"),
               Sample.create("images", "p", image=draw_png("green", (20, 60)), text="green")]
    batch = collate(samples)
    b, t = batch["input_ids"].shape
    assert b == 3
    assert batch["pixel_values"].shape == (4, 3, 32, 32)
    assert batch["high_res_pixel_values"].shape == (4, 3, 64, 64)
    assert batch["image_sample_index"].tolist() == [0, 0, 0, 2]
    # Right padding: pad ids, attention 0 and labels -100 after each sequence.
    for row in range(b):
        length = int(batch["attention_mask"][row].sum())
        assert (batch["input_ids"][row, length:] == collate.pad_id).all()
        assert (batch["labels"][row, length:] == IGNORE_INDEX).all()
        assert batch["attention_mask"][row, :length].all()
    assert set(model_inputs(batch)) == {"input_ids", "attention_mask", "labels", "pixel_values",
                                        "high_res_pixel_values"}
    left = VLCollator(processor, padding_side="left")(samples)
    assert left["attention_mask"][:, -1].all() and not left["attention_mask"][1, 0]


def test_each_branch_normalisation(processor):
    # A pure white image: SigLIP (mean/std 0.5) maps 1.0 to 1.0; SAM (CLIP stats) to (1-m)/s.
    from PIL import Image
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 255, 255)).save(buffer, "PNG")
    batch = VLCollator(processor)([Sample.create("images", "w", image=buffer.getvalue(), text="white")])
    assert torch.allclose(batch["pixel_values"], torch.ones(1), atol=1e-3)
    expected = (1 - 0.48145466) / 0.26862954
    assert torch.allclose(batch["high_res_pixel_values"][0, 0], torch.tensor(expected), atol=1e-3)
    # A wide image is padded to square with SAM's mean colour (normalises to ~0); the
    # low-res image is resized from that padded square, so its top row is uniform too.
    wide = VLCollator(processor)([Sample.create("images", "x", image=draw_png("red", (64, 16)),
                                                 text="wide")])
    assert wide["high_res_pixel_values"][0, :, 0, :].abs().max() < 0.02  # top row is padding
    top = wide["pixel_values"][0, :, 0, :]
    assert (top - top[:, :1]).abs().max() < 1e-4


def test_bad_samples_are_skipped_with_reasons(processor):
    collate = VLCollator(processor)
    good = Sample.create("text", "ok", text="fine")
    bad_image = Sample.create("images", "b", image=b"not a png", text="x")
    no_text = Sample.create("images", "n", image=draw_png())
    mismatch = Sample.create("sft", "m", image=draw_png(), meta={"sft": {"conversation": [
        {"role": "user", "content": "<image_placeholder><image_placeholder> two?"},
        {"role": "assistant", "content": "no"}]}})
    in_answer = Sample.create("sft", "a", meta={"sft": {"conversation": [
        {"role": "user", "content": "draw"},
        {"role": "assistant", "content": "<image_placeholder>"}]}})
    batch = collate([bad_image, good, no_text, mismatch, in_answer])
    assert batch["input_ids"].shape[0] == 1
    assert collate.skipped == {"bad_image": 1, "no_text": 1, "placeholder_mismatch": 1,
                               "placeholder_outside_user_turn": 1}
    assert collate([bad_image]) is None
    with pytest.raises(SampleEncodeError):
        VLCollator(processor, on_error="raise")([mismatch])


def test_images_without_placeholder_go_first_in_first_user_turn(processor):
    sample = Sample.create("sft", "np", image=draw_png(), meta={"sft": {"conversation": [
        {"role": "user", "content": "What is it?"}, {"role": "assistant", "content": "A box."}]}})
    encoded = VLCollator(processor, system_prompt=None).encode(sample)
    first_image = encoded.input_ids.index(processor.image_token_id)
    assert processor.tokenizer.decode(encoded.input_ids[1:first_image]) == "User: "


def test_truncation_drops_cut_images_and_keeps_whole_ones(processor):
    n = processor.num_image_tokens
    sample = Sample.create("images", "two", image=draw_png(), extra_images=(draw_png("blue"),),
                           text="two boxes side by side")
    # bos + first image + half of the second image: the half image is dropped entirely.
    collate = VLCollator(processor, max_length=1 + n + n // 2)
    with pytest.raises(SampleEncodeError):  # nothing left to learn: only prompt tokens remain
        collate.encode(sample)
    sft = conversation_sample(images=1)
    full = VLCollator(processor).encode(sft)
    cut = VLCollator(processor, max_length=len(full.input_ids) - 1).encode(sft)
    assert len(cut.input_ids) == len(full.input_ids) - 1 and len(cut.images) == 1


def test_expansion_and_pixels_agree_with_transformers_processor(processor):
    # The collator builds ids itself (to mask labels turn by turn); it must expand
    # placeholders and preprocess images exactly as transformers' own processor call does.
    from PIL import Image

    image = Image.new("RGB", (40, 30), (200, 20, 20))
    text = "<image_placeholder> what is it?"
    reference = processor(text=[text], images=[image], return_tensors="pt")
    collate = VLCollator(processor)
    ids, placeholders = collate._segment_ids(text)
    assert placeholders == 1 and reference["input_ids"][0].tolist() == ids
    batch = collate.pad([collate.encode_prompt([{"role": "user", "content": text}], [image])])
    assert torch.equal(batch["pixel_values"], reference["pixel_values"])
    assert torch.equal(batch["high_res_pixel_values"], reference["high_res_pixel_values"])
