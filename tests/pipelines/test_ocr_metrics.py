"""CER/WER and the edit distance behind them; ground truth selection and reading order."""

import random

import pytest

from pipelines.ocr.backends import reading_order
from pipelines.ocr.metrics import (cer, edit_distance, error_counts, ground_truth_lines,
                                   lines_text, rates, wer)


def quadratic_distance(a, b):
    """The textbook table, as the reference the library distance must match."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_edit_distance_matches_the_textbook_table():
    rng = random.Random(7)
    for _ in range(800):
        a = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 70)))
        b = "".join(rng.choice("abcd ") for _ in range(rng.randint(0, 70)))
        assert edit_distance(a, b) == quadratic_distance(a, b), (a, b)
        assert edit_distance(a.split(), b.split()) == quadratic_distance(a.split(), b.split())


def test_edit_distance_known_values():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "") == 3
    assert edit_distance("same", "same") == 0


def test_cer_and_wer():
    assert cer("abcd", "abxd") == pytest.approx(0.25)
    assert wer("the cat sat", "the cat sit") == pytest.approx(1 / 3)
    # Layout whitespace is not a recognition error.
    assert cer("Hello\nworld", "Hello   world ") == 0.0
    assert cer("", "anything") is None
    counts = error_counts("ab cd", "ab")
    assert counts == {"char_edits": 3, "ref_chars": 5, "word_edits": 1, "ref_words": 2}
    assert rates(counts) == {"cer": 0.6, "wer": 0.5}


def test_ground_truth_only_from_trustworthy_text():
    lines = [{"box": [0, 0, 1, 0.1], "text": "x"}]
    assert ground_truth_lines({"pdf": {"lines": lines}}) == ("pdf", lines)
    assert ground_truth_lines({"pdf": {"lines": lines, "needs_ocr": True}}) is None
    assert ground_truth_lines({"web": {"lines": lines}}) == ("web", lines)
    assert ground_truth_lines({"image": {"width": 3}}) is None


def test_reading_order_rows_then_columns():
    # Listed right column first, and with a slightly lower baseline on the right.
    lines = [{"box": [0.55, 0.105, 0.9, 0.145], "text": "B"},
             {"box": [0.1, 0.3, 0.4, 0.34], "text": "C"},
             {"box": [0.1, 0.1, 0.4, 0.14], "text": "A"}]
    ordered = reading_order(lines, box=lambda line: line["box"])
    assert [line["text"] for line in ordered] == ["A", "B", "C"]
    assert lines_text(lines) == "A\nB\nC"
