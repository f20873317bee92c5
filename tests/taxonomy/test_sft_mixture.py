"""The SFT mixture: file validation, bucket choice by taxonomy ancestry, down/up-sampling to
the target shares within the repeat cap, determinism, and the before/after report and plot."""

from __future__ import annotations

from collections import Counter

import pytest

from pipelines.sft.mixture import (DEFAULT_MIXTURE, Candidate, Mixture, MixtureError, bucket_of,
                                  load_mixture, load_tree, mixture_report, plot_mixture, select)
from taxonomy.tree import taxonomy_from_text

PRINTED = "recognition.ocr_transcription.printed_text"
GRAPH = "analysis.data_chart_analysis.graph_interpretation"
THEME = "recognition.global_description.theme"


def _candidates(leaf: str, count: int, family: str = "f", has_image: bool = True,
                cap: int = 6) -> list[Candidate]:
    return [Candidate(family, leaf, has_image, ({"run": "r", "shard": "s", "key": f"{leaf}{i}"},),
                      cap) for i in range(count)]


@pytest.fixture(scope="module")
def tree():
    return load_tree()


def test_default_mixture_is_valid(tree):
    mixture = load_mixture(DEFAULT_MIXTURE, tree)
    assert mixture.weights["text_only"] == pytest.approx(0.479)
    assert mixture.max_repeat >= 1


def test_mixture_errors_name_every_problem(tmp_path, tree):
    path = tmp_path / "bad.yaml"
    path.write_text("weights:\n  recognition.ocr_transcriptoin: 0.5\n  analysis: -1\n"
                    "total: many\nmax_repeat: 0\ncolour: blue\n")
    with pytest.raises(MixtureError) as err:
        load_mixture(str(path), tree)
    message = str(err.value)
    assert "unknown taxonomy node 'recognition.ocr_transcriptoin'" in message
    assert "did you mean 'recognition.ocr_transcription'" in message
    assert "weight of 'analysis' must be a number >= 0" in message
    assert "'total' must be a positive integer" in message
    assert "'max_repeat' must be an integer >= 1" in message
    assert "unknown keys: colour" in message


def test_candidates_go_to_the_most_specific_listed_node(tree):
    buckets = ["recognition", "recognition.ocr_transcription", "text_only", "unlabeled"]
    assert bucket_of(_candidates(PRINTED, 1)[0], buckets, tree) == "recognition.ocr_transcription"
    assert bucket_of(_candidates(THEME, 1)[0], buckets, tree) == "recognition"
    assert bucket_of(_candidates(GRAPH, 1)[0], buckets, tree) is None
    assert bucket_of(_candidates(THEME, 1, has_image=False)[0], buckets, tree) == "text_only"
    assert bucket_of(_candidates("unlabeled", 1)[0], buckets, tree) == "unlabeled"


def test_buckets_follow_parent_links_not_id_prefixes():
    # After a move, an id no longer spells its path: ancestry must come from `parent`.
    moved = taxonomy_from_text(
        "version: 3\nname: t\nmigrations: []\nnodes:\n"
        "- {id: a, name: A, parent: null, description: a}\n"
        "- {id: b, name: B, parent: null, description: b}\n"
        "- {id: a.x, name: X, parent: b, description: moved from a to b}\n"
        "- {id: a.old, name: Old, parent: a, description: retired, deprecated: true,"
        " replaced_by: a.x}\n")
    assert bucket_of(_candidates("a.x", 1)[0], ["a", "b"], moved) == "b"
    assert bucket_of(_candidates("a.old", 1)[0], ["a", "b"], moved) == "b"


def test_sampling_down_and_up_to_the_target_shares(tree):
    candidates = _candidates(PRINTED, 100) + _candidates(GRAPH, 10)
    mixture = Mixture("t", {"recognition.ocr_transcription": 1, "analysis": 1}, total=60,
                      max_repeat=3)
    selection = select(candidates, mixture, tree)
    by_bucket = {b: r["selected"] for b, r in selection.buckets.items()}
    assert by_bucket == {"recognition.ocr_transcription": 30, "analysis": 30}
    graph = [(c.uid, v) for c, v in selection.chosen
             if c.leaf == GRAPH]
    assert Counter(v for _, v in graph) == {0: 10, 1: 10, 2: 10}  # each repeated 3x, new phrasing
    assert len(set(graph)) == 30
    printed = [c.uid for c, v in selection.chosen if c.leaf == PRINTED]
    assert len(set(printed)) == 30  # down-sampled without repeats


def test_up_sampling_stops_at_the_caps_and_reports_the_shortfall(tree):
    candidates = (_candidates(PRINTED, 100) + _candidates(GRAPH, 10, cap=6)
                  + _candidates("conversion.image_to_code.ui_to_code", 4, cap=1))
    mixture = Mixture("t", {"recognition": 1, "analysis": 1, "conversion": 1}, total=90,
                      max_repeat=2)
    selection = select(candidates, mixture, tree)
    assert selection.buckets["analysis"]["selected"] == 20
    assert selection.buckets["analysis"]["shortfall"] == 10
    assert selection.buckets["conversion"]["selected"] == 4  # one phrasing only: no repeats
    assert selection.buckets["recognition"]["selected"] == 30


def test_weights_renormalise_over_buckets_with_candidates(tree):
    candidates = _candidates(PRINTED, 40) + _candidates(GRAPH, 40)
    mixture = Mixture("t", {"text_only": 0.5, "recognition": 0.25, "analysis": 0.25})
    selection = select(candidates, mixture, tree)
    assert selection.total_target == 80
    assert selection.buckets["text_only"]["target"] == 0
    assert selection.buckets["recognition"]["selected"] == 40
    assert selection.not_in_mixture == 0


def test_selection_is_deterministic_and_seeded(tree):
    candidates = _candidates(PRINTED, 50)
    mixture = Mixture("t", {"recognition": 1}, total=10)
    first = [c.uid for c, _ in select(candidates, mixture, tree).chosen]
    assert first == [c.uid for c, _ in select(candidates, mixture, tree).chosen]
    other = Mixture("t", {"recognition": 1}, total=10, seed=7)
    assert first != [c.uid for c, _ in select(candidates, other, tree).chosen]


def test_report_and_plot(tmp_path, tree):
    candidates = _candidates(PRINTED, 30) + _candidates(GRAPH, 5) + _candidates(THEME, 3)
    mixture = Mixture("t", {"recognition.ocr_transcription": 1, "analysis": 1}, total=20)
    selection = select(candidates, mixture, tree)
    report = mixture_report(selection, mixture, {PRINTED: 10, GRAPH: 9})
    assert report["before_by_leaf"] == {GRAPH: 5, PRINTED: 30, THEME: 3}
    assert report["after_by_leaf"] == {GRAPH: 10, PRINTED: 10}
    assert report["not_in_mixture"] == 3
    assert report["written"] == 19
    path = tmp_path / "mix.png"
    plot_mixture(report, str(path))
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_proportional_total_keeps_the_shares_exact(tree):
    candidates = (_candidates(PRINTED, 100) + _candidates(GRAPH, 10, cap=6)
                  + _candidates(THEME, 5, has_image=False))
    mixture = Mixture("t", {"recognition": 2, "analysis": 1, "text_only": 1},
                      total="proportional", max_repeat=2)
    selection = select(candidates, mixture, tree)
    # text-only: 5 candidates x 2 repeats = 10 at a quarter share -> 40 in all.
    assert selection.total_target == 40
    got = {b: r["selected"] for b, r in selection.buckets.items()}
    assert got == {"recognition": 20, "analysis": 10, "text_only": 10}
    assert all(r["shortfall"] == 0 for r in selection.buckets.values())
