"""Image placeholders never reach the language share: the text corpus drops them and the
trainer's language-only documents (packed or not) hold no image token."""

from __future__ import annotations

import json

from model.collate import VLCollator
from model.processor import build_processor
from model.tokenizer import train_tiny_tokenizer
from pipelines.core.text import IMAGE_PLACEHOLDER
from pipelines.text.corpus import clean_text
from training.data import PackedTextBatches, SampleBatches, TextDocumentStream

LEAKY = (f"The keeper wrote {IMAGE_PLACEHOLDER} about the lamp.\n\n{IMAGE_PLACEHOLDER}\n\n"
         "The ships passed by.")


def test_clean_text_removes_placeholders():
    assert clean_text(LEAKY) == "The keeper wrote about the lamp.\n\nThe ships passed by."


def test_language_only_documents_hold_no_image_token(tmp_path):
    path = tmp_path / "leaky.jsonl"
    rows = [{"text": LEAKY},
            {"conversation": [{"role": "user", "content": f"{IMAGE_PLACEHOLDER} Hello?"},
                              {"role": "assistant", "content": "Hi."}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    docs = list(TextDocumentStream([str(path)], shuffle_buffer=1).epoch_items(0))
    assert docs[0].text == "The keeper wrote about the lamp.\n\nThe ships passed by."
    assert docs[1].meta["sft"]["conversation"][0]["content"] == "Hello?"

    processor = build_processor("tiny", train_tiny_tokenizer())
    image = processor.image_token_id
    packed = PackedTextBatches(TextDocumentStream([str(path)], shuffle_buffer=1),
                               processor.tokenizer, seq_len=16, batch_size=4)
    batch, _ = packed.next_batch()
    assert image not in batch["input_ids"].flatten().tolist()
    # Unpacked, the collator takes the document instead of rejecting it for a placeholder
    # it has no image for.
    collator = VLCollator(processor)
    unpacked = SampleBatches(TextDocumentStream([str(path)], shuffle_buffer=1), 2, collator)
    batch, count = unpacked.next_batch()
    assert count == 2 and not collator.skipped
    assert image not in batch["input_ids"].flatten().tolist()
