"""Batch sources read by data-loader workers, with an exact position to resume from.

A rank's data is cut into `shares`: with N workers, worker w of rank r reads share
``r * N + w`` of ``world_size * N`` (the streams split by share exactly as they split by
rank without workers), so decoding, image preprocessing and collation run in the workers.
Every batch comes back with its share's position *after* it, and torch's DataLoader hands
out the workers' batches in strict rotation, so the position of what the training loop has
consumed is ``{"shares": [state of each share], "next": share due next}`` — prefetched
batches not yet consumed are simply produced again after a resume. With 0 workers there
is one share per rank, read on the training thread: the same batches as before workers.

When the number of shares changes (another world size or worker count), `redivide` maps
the old positions onto the new shares; see its docstring for what is kept.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable, Iterator, Sequence

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

log = logging.getLogger(__name__)

# share index, share count -> a batch source with next_batch(), state(), load_state()
SourceFactory = Callable[[int, int], Any]


class ShareDataset(IterableDataset):
    """Batches of this rank's shares, one share per worker, yielded with their positions."""

    def __init__(self, factory: SourceFactory, *, rank: int, world_size: int, workers: int,
                 states: Sequence[Any | None], first: int = 0):
        self.factory, self.rank, self.world_size = factory, rank, world_size
        self.workers, self.states, self.first = workers, list(states), first

    def __iter__(self) -> Iterator[tuple[dict, int, dict, int, Any]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        # DataLoader starts its rotation at worker 0: shift so it starts at share `first`
        share = (worker + self.first) % self.workers
        source = self.factory(self.rank * self.workers + share, self.world_size * self.workers)
        if self.states[share] is not None:
            source.load_state(self.states[share])
        skipped = _skip_counter(source)
        while True:
            before = Counter(skipped)
            batch, count = source.next_batch()
            yield batch, count, dict(Counter(skipped) - before), share, source.state()


def _skip_counter(source: Any) -> Counter:
    collator = getattr(source, "collator", None)
    return getattr(collator, "skipped", Counter())


class BatchLoader:
    """`next_batch()` / `state()` / `load_state()` over a source factory, with or without workers.

    skipped: where the workers' counts of unencodable samples are added (the main
    collator's `skipped`), so a run reports them as it did on one thread.
    """

    def __init__(self, factory: SourceFactory, *, rank: int, world_size: int, workers: int = 0,
                 skipped: Counter | None = None):
        self.factory, self.rank, self.world_size = factory, rank, world_size
        self.workers = workers
        self.skipped = skipped if skipped is not None else Counter()
        self.shares: list[Any | None] = [None] * max(1, workers)
        self.next_share = 0
        self._source: Any = None
        self._iterator: Iterator | None = None

    @property
    def share_count(self) -> int:
        """Shares across all ranks (world size x max(1, workers))."""
        return self.world_size * max(1, self.workers)

    def next_batch(self) -> tuple[dict, int]:
        """(batch, number of samples in it)."""
        if self.workers == 0:
            if self._source is None:
                self._source = self.factory(self.rank, self.world_size)
                if self.shares[0] is not None:
                    self._source.load_state(self.shares[0])
            return self._source.next_batch()
        if self._iterator is None:
            self._iterator = iter(self._loader())
        batch, count, skipped, share, state = next(self._iterator)
        self.skipped.update(skipped)
        self.shares[share] = state
        self.next_share = (share + 1) % self.workers
        return batch, count

    def _loader(self) -> DataLoader:
        dataset = ShareDataset(self.factory, rank=self.rank, world_size=self.world_size,
                               workers=self.workers, states=self.shares, first=self.next_share)
        # fork: workers inherit the tokenizer/processor instead of unpickling them
        return DataLoader(dataset, batch_size=None, num_workers=self.workers,
                          prefetch_factor=2, multiprocessing_context="fork")

    def state(self) -> dict[str, Any]:
        """This rank's position: each share's stream state and the share due next."""
        shares = list(self.shares)
        if self.workers == 0 and self._source is not None:
            shares = [self._source.state()]
        return {"shares": shares, "next": self.next_share, "share_count": self.share_count}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from `state()` of the same rank (same world size and workers)."""
        if len(state["shares"]) != len(self.shares):
            raise ValueError(f"loader state has {len(state['shares'])} shares, this loader "
                             f"{len(self.shares)}: use redivide() for a changed layout")
        self.close()
        self.shares = list(state["shares"])
        self.next_share = int(state["next"])

    def close(self) -> None:
        """Stop the workers (a new iteration restarts them from the current position)."""
        if self._source is not None:
            self.shares[0] = self._source.state()
        self._iterator, self._source = None, None


def redivide(states: Sequence[Any], count: int) -> list[Any]:
    """Positions for `count` shares from the positions of ``len(states)`` old shares.

    Same count: unchanged (exact resume). Otherwise each stream keeps its epoch and the
    amount of it already consumed, re-split evenly; which items those were cannot be kept,
    because the split of an epoch's items depends on the share count:
      - an epoch stream (``{"epoch", "offset"}``) resumes at the least advanced old share's
        epoch; shares already in a later epoch count as far as the most advanced share still
        in it; each new share skips ``consumed // count`` items of its part of the epoch (and
        moves on to the next epoch should its part be shorter);
      - the mixing position (``draws``) is averaged (every share draws the same sequence);
      - the packed-text leftover (``carry``) of old share i goes to new share i, if any.
    """
    if not states:
        return [None] * count
    if len(states) == count:
        return list(states)
    return [_redivide_one(list(states), index, count) for index in range(count)]


def _redivide_one(states: list[Any], index: int, count: int) -> Any:
    first = states[0]
    if first is None:
        return None
    if isinstance(first, dict) and {"epoch", "offset"} <= set(first):
        epoch = min(int(s["epoch"]) for s in states)
        current = [int(s["offset"]) for s in states if int(s["epoch"]) == epoch]
        ahead = sum(1 for s in states if int(s["epoch"]) > epoch)
        consumed = sum(current) + ahead * max(current)
        return {"epoch": epoch, "offset": consumed // count, "lenient": True}
    if isinstance(first, dict):
        out = {}
        for key in first:
            if key == "carry":
                out[key] = list(states[index][key]) if index < len(states) else []
            elif key == "draws":
                out[key] = round(sum(int(s[key]) for s in states) / len(states))
            else:
                out[key] = _redivide_one([s[key] for s in states], index, count)
        return out
    if isinstance(first, list):
        return [_redivide_one([s[i] for s in states], index, count) for i in range(len(first))]
    return first


def redivide_loader_states(rank_states: Sequence[dict[str, Any]], rank: int, world_size: int,
                           workers: int) -> dict[str, Any]:
    """This rank's loader state from every old rank's `BatchLoader.state()`.

    Old shares are numbered ``old_rank * old_workers + worker`` (as the streams split them);
    the new rank takes its slice of the redivided list.
    """
    old = [share for state in rank_states for share in state["shares"]]
    per_rank = max(1, workers)
    new = redivide(old, world_size * per_rank)
    mine = new[rank * per_rank:(rank + 1) * per_rank]
    return {"shares": mine, "next": 0, "share_count": world_size * per_rank}

