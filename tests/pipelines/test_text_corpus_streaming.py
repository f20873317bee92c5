"""`vlforge text build` hands each document on once its last sample has passed, instead of
holding the whole run's text (`pipelines.text.corpus.run_documents`); the documents are
the same either way. bench/driver_memory.py measures the memory per sample."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from pipelines.core.run_dir import MANIFEST, RunDir
from pipelines.text.corpus import CorpusStats, run_documents
from tests.pipelines.driver_fixtures import example_run


@pytest.fixture()
def run(tmp_path):
    return example_run(str(tmp_path / "run"))


def test_text_documents_are_handed_on_once_their_last_sample_has_passed(run, monkeypatch):
    read: list[str] = []  # the document of each sample read so far, in order
    iter_samples = RunDir.iter_samples

    def counting(self, *args, **kwargs):
        for sample in iter_samples(self, *args, **kwargs):
            read.append(sample.lineage.get("document", ""))
            yield sample

    monkeypatch.setattr(RunDir, "iter_samples", counting)
    handed_on = []
    for document in run_documents(run, None, CorpusStats()):
        # all its samples have been read, and no more than the run up to the last of them
        # (or up to the document before it, which must leave first)
        last = max(i for i, doc in enumerate(read) if doc == document.document)
        assert len(read) == max(last + 1, handed_on[-1][1] if handed_on else 0)
        handed_on.append((document.document, len(read)))
    assert len(read) == 11
    assert handed_on[0][1] < len(read)  # not the whole run's text before the first
    first_seen = list(dict.fromkeys(doc for doc in read if doc))
    assert [doc for doc, _ in handed_on] == first_seen
    parts = {doc: d.parts for doc, d in ((d.document, d) for d in
                                        run_documents(run, None, CorpusStats()))}
    assert parts == {"d0": 2, "d1": 3, "d2": 2, "d3": 1, "d4": 1}  # a figure is no page


def test_text_documents_are_the_same_streamed_or_held(run):
    """A run without the manifest's document column is read the old way (held whole):
    both give the same documents, in the same order, and the same stats."""
    streamed_stats, held_stats = CorpusStats(), CorpusStats()
    streamed = [d.to_json() for d in run_documents(run, None, streamed_stats)]
    path = run.path(MANIFEST)
    table = pq.read_table(path).drop_columns(["document"])
    pq.write_table(table, path)
    assert run.document_counts() is None
    held = [d.to_json() for d in run_documents(run, None, held_stats)]
    assert streamed == held and streamed_stats == held_stats
    d1 = next(d["text"] for d in streamed if d["document"] == "d1")
    assert d1.index("d1 page 0") < d1.index("d1 page 1") < d1.index("d1 page 2")
