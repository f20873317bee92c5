"""How far OCR text is from ground truth: edit distance, CER, WER, and the ground truth itself.

CER = character edits / reference characters, WER = word edits / reference words, both
after collapsing whitespace (line breaks and spacing are layout, not recognition). The
edit distance is rapidfuzz's Levenshtein (a maintained C++ bit-parallel implementation),
so a whole page (thousands of characters) costs well under a millisecond.

Ground truth for an image sample is its exact text layer (`pipelines.core.text.trusted_text`
at ``EXACT`` trust): the PDF text lines unless the page ``needs_ocr``, or the DOM text lines
of a web screenshot. Both OCR lines and ground-truth lines are put in
the same reading order (by their boxes) before being compared.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

from rapidfuzz.distance import Levenshtein

from pipelines.core.text import EXACT, trusted_text
from pipelines.ocr.backends import reading_order


def edit_distance(reference: Sequence[Hashable], hypothesis: Sequence[Hashable]) -> int:
    """Levenshtein distance (insert, delete, substitute = 1) between two sequences.

    Strings compare by character, lists (of words) by element; rapidfuzz's C++ kernel
    (bit-parallel, like Hyyrö's algorithm) takes both.
    """
    return Levenshtein.distance(reference, hypothesis)


def normalise_text(text: str) -> str:
    """Collapse all whitespace runs to one space and strip the ends."""
    return " ".join(text.split())


def error_counts(reference: str, hypothesis: str) -> dict[str, int]:
    """Character and word edits plus reference lengths, for summing over many samples."""
    ref, hyp = normalise_text(reference), normalise_text(hypothesis)
    ref_words, hyp_words = ref.split(), hyp.split()
    return {"char_edits": edit_distance(ref, hyp), "ref_chars": len(ref),
            "word_edits": edit_distance(ref_words, hyp_words), "ref_words": len(ref_words)}


def rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    """CER and WER from (possibly summed) `error_counts`; None where the reference is empty."""
    return {"cer": counts["char_edits"] / counts["ref_chars"] if counts["ref_chars"] else None,
            "wer": counts["word_edits"] / counts["ref_words"] if counts["ref_words"] else None}


def cer(reference: str, hypothesis: str) -> float | None:
    return rates(error_counts(reference, hypothesis))["cer"]


def wer(reference: str, hypothesis: str) -> float | None:
    return rates(error_counts(reference, hypothesis))["wer"]


def ground_truth_lines(meta: Mapping[str, Any]) -> tuple[str, list[Mapping[str, Any]]] | None:
    """``(origin, lines)`` of the sample's trustworthy text layer, or None if it has none.

    origin is "pdf" or "web" (the meta sub-dict); lines as the stage stored them (boxes
    0..1). Which layer counts is `pipelines.core.text.trusted_text` at ``EXACT`` trust: a
    PDF page flagged ``needs_ocr`` has none.
    """
    layer = trusted_text(meta=meta, minimum=EXACT)
    return (layer.section, list(layer.section_lines)) if layer is not None else None


def lines_text(lines: Sequence[Mapping[str, Any]]) -> str:
    """Text of box-carrying lines in reading order (lines without a box keep their place)."""
    boxed = [line for line in lines if line.get("box") and len(line["box"]) == 4]
    if len(boxed) == len(lines):
        lines = reading_order(list(lines), box=lambda line: line["box"])
    return "\n".join(str(line.get("text", "")) for line in lines)
