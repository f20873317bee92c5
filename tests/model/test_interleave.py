"""Interleaved image-text samples: each image's token block where its placeholder stands,
per-sample image limits, truncation that never cuts a block, and a real forward/backward."""

from __future__ import annotations

import pytest
import torch

from model.collate import IGNORE_INDEX, SampleEncodeError, VLCollator, model_inputs
from model.tokenizer import IMAGE_TOKEN
from pipelines.core.sample import Sample

from .conftest import conversation_sample, draw_png

COLOURS = ("red", "blue", "green")
RGB = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 128, 0)}
PARTS = ("An article opens.", " Then the first photo is discussed.",
         " The second photo follows.", " The end of the article.")


@pytest.fixture(scope="module")
def processor(tiny_models):
    return tiny_models["tiny"][1]


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def article(colours=COLOURS, parts=PARTS, key="article") -> Sample:
    """A document whose i-th placeholder stands between parts[i] and parts[i + 1]."""
    pngs = [draw_png(c) for c in colours]
    return Sample.create("web", key, image=pngs[0], extra_images=tuple(pngs[1:]),
                         text=IMAGE_TOKEN.join(parts))


def _blocks(ids, image_id):
    """Start index of each run of image tokens (blocks separated by text)."""
    return [i for i, t in enumerate(ids) if t == image_id and (i == 0 or ids[i - 1] != image_id)]


def test_three_images_go_where_their_placeholders_stand(processor):
    tok, n, image = processor.tokenizer, processor.num_image_tokens, processor.image_token_id
    assert processor.image_token == IMAGE_TOKEN
    encoded = VLCollator(processor).encode(article())

    pieces = [([tok.bos_token_id], False)]
    for index, part in enumerate(PARTS):
        if index:
            pieces.append(([image] * n, False))
        pieces.append((_ids(tok, part), True))
    pieces.append(([tok.eos_token_id], True))
    assert encoded.input_ids == [i for ids, _ in pieces for i in ids]
    # Labels: every text token and eos trained, bos and every image token masked.
    assert encoded.labels == [i if trained else IGNORE_INDEX for ids, trained in pieces for i in ids]
    starts = _blocks(encoded.input_ids, image)
    assert len(starts) == 3 and encoded.input_ids.count(image) == 3 * n
    assert tok.decode(encoded.input_ids[1:starts[0]]) == PARTS[0]
    assert tok.decode(encoded.input_ids[starts[0] + n:starts[1]]) == PARTS[1]
    assert tok.decode(encoded.input_ids[starts[2] + n:-1]) == PARTS[3]
    # The i-th block belongs to the i-th image: the images stay in placeholder order.
    centres = [im.getpixel((im.width // 2, im.height // 2)) for im in encoded.images]
    assert centres == [RGB[c] for c in COLOURS]
    # Same expansion as transformers' own DeepseekVLHybridProcessor.
    reference = processor(text=[article().text], images=encoded.images, return_tensors="pt")
    assert reference["input_ids"][0].tolist() == encoded.input_ids[1:-1]


def test_batch_stacks_images_in_placeholder_order(processor):
    collate = VLCollator(processor)
    batch = collate([article(), Sample.create("text", "t", text="just text"),
                     article(("green", "red"), PARTS[:3], key="two")])
    assert batch["image_sample_index"].tolist() == [0, 0, 0, 2, 2]
    assert batch["pixel_values"].shape[0] == 5
    # Row 2's first image is green: compare with row 0's third (also green).
    assert torch.equal(batch["pixel_values"][3], batch["pixel_values"][2])
    image = processor.image_token_id
    assert int((batch["input_ids"] == image).sum()) == 5 * processor.num_image_tokens


def test_images_without_placeholders_still_go_first(processor):
    n, image = processor.num_image_tokens, processor.image_token_id
    sample = Sample.create("images", "p", image=draw_png(), extra_images=(draw_png("blue"),),
                           text="two boxes")
    encoded = VLCollator(processor).encode(sample)
    assert encoded.input_ids[1:1 + 2 * n] == [image] * (2 * n)
    assert image not in encoded.input_ids[1 + 2 * n:]


def test_placeholder_count_must_match_images(processor):
    collate = VLCollator(processor)
    wrong = Sample.create("web", "w", image=draw_png(), text=f"a {IMAGE_TOKEN} b {IMAGE_TOKEN} c")
    batch = collate([wrong, Sample.create("text", "ok", text="fine")])
    assert batch["input_ids"].shape[0] == 1
    assert collate.skipped == {"placeholder_mismatch": 1}
    with pytest.raises(SampleEncodeError):
        VLCollator(processor).encode(Sample.create("text", "t", text=f"no image {IMAGE_TOKEN}"))


@pytest.mark.parametrize("where", ["inside", "before"])
def test_truncation_drops_the_trailing_image_and_counts_it(processor, where):
    n, image = processor.num_image_tokens, processor.image_token_id
    full = VLCollator(processor, max_length=None).encode(article())
    third = _blocks(full.input_ids, image)[2]
    # The limit falls in the middle of the third block, or in the text just before it.
    limit = third + n // 2 if where == "inside" else third - 2
    collate = VLCollator(processor, max_length=limit)
    cut = collate.encode(article())
    keep = third if where == "inside" else limit
    assert cut.input_ids == full.input_ids[:keep] and cut.labels == full.labels[:keep]
    assert len(cut.images) == 2 and cut.input_ids.count(image) == 2 * n
    assert collate.skipped == {"image_truncated": 1}
    batch = collate.pad([cut])  # images and blocks still agree
    assert batch["pixel_values"].shape[0] == 2
    # A limit inside the first block: the text before it survives, every image is dropped.
    first = _blocks(full.input_ids, image)[0]
    tiny = VLCollator(processor, max_length=first + 3)
    only_text = tiny.encode(article())
    assert not only_text.images and image not in only_text.input_ids
    assert tiny.skipped == {"image_truncated": 3}


def test_images_over_the_limit_are_dropped_with_their_placeholders(processor):
    tok, n, image = processor.tokenizer, processor.num_image_tokens, processor.image_token_id
    collate = VLCollator(processor, max_images=2)
    encoded = collate.encode(article())
    assert len(encoded.images) == 2 and len(_blocks(encoded.input_ids, image)) == 2
    assert collate.skipped == {"image_over_limit": 1}
    # The text of the dropped image's surroundings stays, joined where its placeholder was.
    after = encoded.input_ids[_blocks(encoded.input_ids, image)[1] + n:-1]
    assert after == _ids(tok, PARTS[2]) + _ids(tok, PARTS[3])
    # A conversation over the limit is skipped: its questions ask about every image.
    with pytest.raises(SampleEncodeError, match="too_many_images"):
        collate.encode(conversation_sample(images=3))
    assert VLCollator(processor).max_images == 6 and VLCollator(processor).max_length == 4096


@pytest.mark.slow
def test_forward_backward_with_several_images_per_sample(tiny_models):
    model, processor = tiny_models["tiny"]
    n, image = processor.num_image_tokens, processor.image_token_id
    collate = VLCollator(processor, on_error="raise")
    samples = [article(), article(("green", "red"), PARTS[:3], key="two")]
    batch = collate(samples)
    model.train()
    model.zero_grad()
    out = model(**model_inputs(batch))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for name, p in model.named_parameters() if "aligner" in name and p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    model.zero_grad()

    # Placement is real: changing the second image of row 0 changes nothing before its
    # block (causal attention) and changes the logits after it.
    model.eval()
    changed = article(("red", "yellow", "green"))
    with torch.no_grad():
        a = model(**model_inputs(collate([samples[0]]), with_labels=False)).logits[0]
        b = model(**model_inputs(collate([changed]), with_labels=False)).logits[0]
    second = _blocks(collate.encode(samples[0]).input_ids, image)[1]
    assert torch.allclose(a[:second], b[:second], atol=1e-5)
    assert not torch.allclose(a[second + n:], b[second + n:], atol=1e-4)


def test_real_size_blocks_are_576_tokens(processor):
    # The 7B preset's processor around the tiny tokenizer: each placeholder becomes a
    # 576-token block (24x24 SigLIP patches), three of them at the placeholders' places.
    from model.processor import build_processor

    big = build_processor("7b", processor.tokenizer)
    assert big.num_image_tokens == 576
    collate = VLCollator(big, max_length=None)
    encoded = collate.encode(article())
    image = big.image_token_id
    starts = _blocks(encoded.input_ids, image)
    assert len(starts) == 3 and encoded.input_ids.count(image) == 3 * 576
    for start in starts:
        assert encoded.input_ids[start:start + 576] == [image] * 576
        assert encoded.input_ids[start + 576] != image
    tok = big.tokenizer
    assert tok.decode(encoded.input_ids[starts[0] + 576:starts[1]]) == PARTS[1]
    # The paper-like limit (4096 tokens) holds these three blocks and all the text.
    assert len(VLCollator(big).encode(article()).images) == 3
