"""`vlforge text build`: documents (not pages) from real runs, cleaned and de-duplicated,
in the format the trainer's --text reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pymupdf
import pytest

from pipelines.cli import main as vlforge
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import run_pipeline
from pipelines.pdf.pipeline import pdf_refs
from pipelines.text.corpus import clean_text, normalised_hash
from training.data import TextDocumentStream, read_documents

CONFIG = {"ocr": None, "charts": False, "label": False}


def write_pdf(path: str, pages: list[str]) -> None:
    doc = pymupdf.open()
    # a different file (bytes) with the same text: the pdf stage drops byte-identical files
    # itself, and the corpus's own de-duplication is what is tested here
    doc.set_metadata({"title": os.path.basename(path)})
    for text in pages:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 540, 760), text, fontsize=11)
    doc.save(path)


def paragraph(topic: str, n: int = 40) -> str:
    return " ".join(f"{topic} sentence {i} talks about {topic} matters." for i in range(n))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real PDF runs: multi-page books, an exact copy, a case/punctuation variant."""
    base = tmp_path_factory.mktemp("text")
    # the copies sit in the second run: within a run the pdf stage itself drops
    # duplicate files and near-duplicate pages; across runs only the corpus can
    first = [os.path.join(base, name) for name in ("book_a.pdf", "book_b.pdf")]
    write_pdf(first[0], [f"Alpha page one. {paragraph('alpha')}",
                         f"Alpha page two. {paragraph('beta')}",
                         f"Alpha page three. {paragraph('gamma')}"])
    write_pdf(first[1], [f"Bravo only page. {paragraph('delta')}"])
    second = [os.path.join(base, name) for name in ("copy_a.pdf", "variant_b.pdf", "short.pdf")]
    write_pdf(second[0], [f"Alpha page one. {paragraph('alpha')}",  # an exact copy of book_a
                          f"Alpha page two. {paragraph('beta')}",
                          f"Alpha page three. {paragraph('gamma')}"])
    write_pdf(second[1], [f"BRAVO ONLY PAGE {paragraph('delta').upper().replace('.', ';')}"])
    write_pdf(second[2], ["Too short."])
    urls = []
    for name, paths in (("run1", first), ("run2", second)):
        out = str(base / name)
        # one PDF a task: the pdf stage drops near-duplicate pages within a task, and the
        # copies must reach the corpus for its own de-duplication to be tested
        run_pipeline("pdf", pdf_refs(paths), CONFIG, out, task_size=1)
        urls.append(out)
    return urls


@pytest.mark.slow
def test_text_build_has_no_duplicate_documents(runs, tmp_path, capsys):
    out = str(tmp_path / "corpus.jsonl")
    assert vlforge(["text", "build", *runs, "--out", out, "--split", "all", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    docs = list(read_documents(out))  # the trainer's own reader
    texts = [d["text"] for d in docs]
    assert len(texts) == len(set(texts))
    assert len({normalised_hash(t) for t in texts}) == len(texts)
    assert len(docs) == 2  # book_a (3 pages joined) and book_b
    dropped = dict(stats["dropped"])
    assert dropped.pop("duplicate_exact") == 1 and dropped.pop("duplicate_normalised") == 1
    # "Too short." is short either way; a page that little text is also flagged for OCR
    assert dropped in ({"too_short": 1}, {"empty": 1})
    book_a = next(t for t in texts if "Alpha page one" in t)
    assert book_a.index("Alpha page one") < book_a.index("Alpha page two") \
        < book_a.index("Alpha page three")  # pages joined in order, one document
    rows = [json.loads(line) for line in Path(out).read_text(encoding="utf-8").splitlines()]
    assert {r["parts"] for r in rows} == {1, 3}
    assert os.path.exists(out + ".stats.json")
    stream = TextDocumentStream([out])
    assert {next(stream).text for _ in range(2)} == set(texts)


@pytest.mark.slow
def test_text_build_reads_train_split_by_default(runs, tmp_path):
    out = str(tmp_path / "corpus.jsonl")
    assert vlforge(["text", "build", *runs, "--out", out]) == 0
    held_out = set()
    for url in runs:
        manifest = RunDir(url).manifest().to_pylist()
        held_out |= {row["document"] for row in manifest if row["split"] == "validation"}
    assert held_out  # each run holds out at least one of its documents
    rows = [json.loads(line) for line in Path(out).read_text(encoding="utf-8").splitlines()]
    assert rows and not {row["document"] for row in rows} & held_out
    plain = str(tmp_path / "corpus.txt")  # the plain format keeps documents apart
    assert vlforge(["text", "build", *runs, "--out", plain]) == 0
    assert [d["text"].replace("\n", " ") for d in read_documents(plain)] == \
        [r["text"].replace("\n\n", " ").replace("\n", " ") for r in rows]


def test_clean_text_and_hashes():
    assert clean_text("a\u200b b\t\tc\r\n\n\n\n d  ") == "a b c\n\nd"
    assert normalised_hash("Hello, World!") == normalised_hash("hello   world")
    assert normalised_hash("hello world") != normalised_hash("hello there")


def test_page_text_takes_trusted_ocr_when_the_text_layer_is_doubtful():
    from pipelines.core.sample import Sample
    from pipelines.text.corpus import page_text

    ocr = {"lines": [{"text": "Recognised line one", "box": [0, 0, 1, 0.1]},
                     {"text": "and line two", "box": [0, 0.2, 1, 0.3]}]}
    doubtful = Sample.create("pdf", "sha256:y#page=0", text="gArBlEd",
                             meta={"pdf": {"needs_ocr": True, "lines": []}, "ocr": ocr})
    assert page_text(doubtful) == "Recognised line one\nand line two"
    unsure = Sample.create("pdf", "sha256:y#page=1", text="gArBlEd",
                           meta={"pdf": {"needs_ocr": True},
                                 "ocr": {"lines": [{**ocr["lines"][0], "low_confidence": True}]}})
    assert page_text(unsure) == ""  # no trustworthy text: the page adds nothing
    exact = Sample.create("pdf", "sha256:y#page=2", text="The text layer.",
                          meta={"pdf": {"needs_ocr": False}})
    assert page_text(exact) == "The text layer."
