"""The data layer: finished runs only, deterministic streams, rank splits, exact positions."""

import itertools

import pytest

from pipelines.core.run_dir import RunDirError
from training.data import (PackedTextBatches, ShardSampleStream, TextDocumentStream,
                           read_documents, run_shards, run_streams)
from training.modality import step_modality
from training.stages import stage_preset


def keys(stream, n):
    return [s.key for s in itertools.islice(stream, n)]


def test_unfinished_run_is_refused(unfinished_run):
    with pytest.raises(RunDirError, match="_SUCCESS"):
        run_shards([unfinished_run])


def test_stream_is_deterministic_and_reshuffles_each_epoch(caption_run):
    shards = run_shards([caption_run])
    assert len(shards) == 3  # 24 samples, 8 per shard
    a = keys(ShardSampleStream(shards, seed=1, shuffle_buffer=8), 48)
    b = keys(ShardSampleStream(shards, seed=1, shuffle_buffer=8), 48)
    assert a == b
    assert sorted(a[:24]) == sorted(a[24:])  # each epoch: every sample exactly once
    assert a[:24] != a[24:]  # ... in a new order
    assert keys(ShardSampleStream(shards, seed=2, shuffle_buffer=8), 24) != a[:24]


@pytest.mark.parametrize("world_size", [2, 4])
def test_ranks_split_the_data_without_overlap(caption_run, world_size):
    shards = run_shards([caption_run])  # 3 shards: 2 ranks split shards, 4 split samples
    per_rank = []
    for rank in range(world_size):
        stream = ShardSampleStream(shards, seed=0, rank=rank, world_size=world_size)
        seen = []
        for sample in stream:
            if stream.epoch > 0:
                break
            seen.append(sample.key)
        per_rank.append(seen)
    flat = [k for part in per_rank for k in part]
    assert len(flat) == len(set(flat)) == 24
    assert all(per_rank)


def test_position_resumes_exactly_mid_epoch_and_across_epochs(caption_run):
    shards = run_shards([caption_run])
    for cut in (5, 30):
        stream = ShardSampleStream(shards, seed=3, shuffle_buffer=6)
        keys(stream, cut)
        state = stream.state()
        expected = keys(stream, 20)
        resumed = ShardSampleStream(shards, seed=3, shuffle_buffer=6)
        resumed.load_state(state)
        assert keys(resumed, 20) == expected


def test_mixture_weights_runs(caption_run, sft_run):
    mixed = run_streams([caption_run, sft_run], {"sft": 3.0}, seed=0, rank=0, world_size=1,
                        shuffle_buffer=4)
    sources = [s.source for s in itertools.islice(mixed, 400)]
    assert 0.68 < sources.count("sft") / 400 < 0.82  # 3:1


def test_text_documents_and_packing_resume(text_file, dialogue_file, tiny_model_dir):
    from model.loading import load_model

    docs = list(read_documents(text_file))
    assert len(docs) == 18 and all("text" in d for d in docs)
    assert "conversation" in next(read_documents(dialogue_file))
    _, processor = load_model(tiny_model_dir)
    stream = TextDocumentStream([text_file], seed=0, shuffle_buffer=4)
    packed = PackedTextBatches(stream, processor.tokenizer, seq_len=32, batch_size=3)
    batch, count = packed.next_batch()
    assert batch["input_ids"].shape == (3, 32) and count == 3
    assert bool(batch["attention_mask"].all())  # no padding wasted
    state = packed.state()
    assert state["carry"]  # a document straddles the row boundary
    expected = [packed.next_batch()[0]["input_ids"] for _ in range(3)]
    again = PackedTextBatches(TextDocumentStream([text_file], seed=0, shuffle_buffer=4),
                              processor.tokenizer, seq_len=32, batch_size=3)
    again.load_state(state)
    for want in expected:
        assert again.next_batch()[0]["input_ids"].equal(want)


def test_modality_mix_follows_the_ratio_schedule():
    config = stage_preset(2).replace(language_ratio_warmup_steps=200, max_steps=2000, seed=5)
    picks = [step_modality(config, s, has_language=True, has_multimodal=True)
             for s in range(2000)]
    early = picks[:20].count("language") / 20
    late = picks[400:].count("language") / 1600
    assert early >= 0.9
    assert abs(late - 0.7) < 0.04
    assert step_modality(config, 0, has_language=False, has_multimodal=True) == "multimodal"


def test_images_pipeline_run_streams_and_unusable_samples_are_counted(tmp_path, tiny_model_dir):
    """A run made by the real images pipeline (Beam DirectRunner) feeds the data layer;
    its image-only samples have nothing to learn, so they are skipped and counted, and a
    stream with nothing usable stops with an error instead of spinning."""
    from model.collate import VLCollator
    from model.loading import load_model
    from pipelines.images.pipeline import image_refs
    from pipelines.core.runner import run_pipeline
    from training.data import DataError, SampleBatches
    from tests.training.conftest import draw_png

    paths = []
    for color in ("red", "blue", "green"):
        path = tmp_path / f"{color}.png"
        path.write_bytes(draw_png(color, "circle"))
        paths.append(str(path))
    out = str(tmp_path / "images-run")
    stats = run_pipeline("images", image_refs(paths), {}, out)
    assert stats["written"] == 3
    stream = ShardSampleStream(run_shards([out]), seed=0)
    assert {s.meta["image"]["path"] for s in itertools.islice(stream, 3)} == set(paths)

    _, processor = load_model(tiny_model_dir)
    collator = VLCollator(processor)
    batches = SampleBatches(stream, 2, collator)
    batches.max_consecutive_skips = 5
    with pytest.raises(DataError, match="could not be encoded"):
        batches.next_batch()
    assert collator.skipped["no_text"] == 5
