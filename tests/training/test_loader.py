"""Loader workers: batches made in worker processes, positions that resume exactly, and
positions re-divided when the number of shares changes."""

import pytest
import torch

from model.collate import VLCollator
from training.data import SampleBatches, run_streams
from training.loader import BatchLoader, redivide, redivide_loader_states


def caption_loader(caption_run, tiny_model_dir, workers, rank=0, world_size=1):
    from model.loading import load_model

    _, processor = load_model(tiny_model_dir)
    collator = VLCollator(processor, max_length=96)

    def factory(share, shares):
        stream = run_streams([caption_run], {}, seed=3, rank=share, world_size=shares,
                             shuffle_buffer=4)
        return SampleBatches(stream, 2, collator)

    return BatchLoader(factory, rank=rank, world_size=world_size, workers=workers,
                       skipped=collator.skipped)


def take(loader, n):
    return [loader.next_batch()[0] for _ in range(n)]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_workers_resume_exactly(caption_run, tiny_model_dir):
    whole = caption_loader(caption_run, tiny_model_dir, workers=2)
    expected = take(whole, 9)  # more than one epoch of a share (12 samples / 2 per batch / 2)
    whole.close()

    first = caption_loader(caption_run, tiny_model_dir, workers=2)
    got = take(first, 5)  # stop on an odd batch: worker 1's turn comes next
    state = first.state()
    first.close()
    assert state["next"] == 1 and len(state["shares"]) == 2
    second = caption_loader(caption_run, tiny_model_dir, workers=2)
    second.load_state(state)
    got += take(second, 4)
    second.close()
    assert all(same(a, b) for a, b in zip(got, expected, strict=True))
    # the workers really split the data: their first batches differ
    assert not same(expected[0], expected[1])


def test_no_workers_gives_the_batches_of_before(caption_run, tiny_model_dir):
    """0 workers = one share per rank read on the training thread, as without a loader."""
    from model.loading import load_model

    _, processor = load_model(tiny_model_dir)
    stream = run_streams([caption_run], {}, seed=3, rank=0, world_size=1, shuffle_buffer=4)
    direct = SampleBatches(stream, 2, VLCollator(processor, max_length=96))
    loader = caption_loader(caption_run, tiny_model_dir, workers=0)
    assert all(same(loader.next_batch()[0], direct.next_batch()[0]) for _ in range(4))


def test_a_loader_refuses_another_layout(caption_run, tiny_model_dir):
    two = caption_loader(caption_run, tiny_model_dir, workers=2)
    with pytest.raises(ValueError, match="redivide"):
        two.load_state({"shares": [None], "next": 0})


def test_redivide_keeps_epoch_and_amount_consumed():
    old = [{"stream": {"draws": 10, "streams": [{"epoch": 1, "offset": 4}]}, "carry": [1, 2]},
           {"stream": {"draws": 12, "streams": [{"epoch": 1, "offset": 6}]}, "carry": [3]}]
    one = redivide(old, 1)
    assert one == [{"stream": {"draws": 11, "streams": [{"epoch": 1, "offset": 10,
                                                          "lenient": True}]},
                    "carry": [1, 2]}]
    # a share already in the next epoch counts as far as the most advanced one still in it
    ahead = [{"epoch": 2, "offset": 1}, {"epoch": 1, "offset": 5}, {"epoch": 1, "offset": 3}]
    assert redivide(ahead, 2) == [{"epoch": 1, "offset": (5 + 3 + 5) // 2, "lenient": True}] * 2
    assert redivide(old, 2) == old  # same layout: untouched, exact
    # 1 rank of 2 workers -> 2 ranks of 0 workers: rank 1 takes its slice
    state = redivide_loader_states([{"shares": [ahead[1], ahead[2]]}], 1, 2, 0)
    assert state["shares"] == [ahead[1], ahead[2]][1:] and state["share_count"] == 2


def test_lenient_position_past_a_short_part_moves_to_the_next_epoch(caption_run):
    stream = run_streams([caption_run], {}, seed=0, rank=0, world_size=1, shuffle_buffer=4)
    inner = stream.streams[0]
    inner.load_state({"epoch": 0, "offset": 10_000, "lenient": True})
    next(inner)
    assert inner.state() == {"epoch": 1, "offset": 1}


@pytest.mark.slow
def test_training_with_two_loader_workers_resumes_exactly(tiny_model_dir, caption_run,
                                                          tmp_path):
    from training.loop import train
    from training.parallel import ParallelConfig
    from training.stages import stage_preset

    config = stage_preset(1).replace(max_steps=6, save_every=100, batch_size=2,
                                     shuffle_buffer=8)
    common = dict(model_dir=tiny_model_dir, data=[caption_run], progress=False,
                  parallel=ParallelConfig(loader_workers=2), save_model=False)
    whole = train(config, out=str(tmp_path / "whole"), **common)
    first = train(config, out=str(tmp_path / "split"), stop_after=3, **common)
    second = train(config, out=str(tmp_path / "split"), resume="auto", **common)
    assert second.resumed_from == 3
    assert first.losses + second.losses == whole.losses
