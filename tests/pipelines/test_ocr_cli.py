"""`vlforge ocr` on images and PDF pages, and `vlforge ocr-eval` on a run directory."""

import json

import pymupdf
import pytest

from pipelines.cli import main as vlforge
from pipelines.ocr.metrics import cer
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from pipelines.core.shards import ShardWriter
from tests.pipelines.ocr_fixtures import pdf_page, text_image

LINES = ["Shipping label 90210", "Fragile: handle with care"]


def run_json(capsys, *argv):
    code = vlforge(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def test_ocr_image_json(tmp_path, capsys):
    path = tmp_path / "label.png"
    path.write_bytes(text_image(LINES))
    code, report, _ = run_json(capsys, "ocr", str(path), "--json")
    assert code == 0 and report["backend"] == "rapidocr"
    [result] = report["results"]
    assert result["file"] == str(path) and result["page"] is None
    assert cer("\n".join(LINES), result["text"]) <= 0.05
    assert all(0 <= v <= 1 for line in result["lines"] for v in line["box"])


def test_ocr_pdf_pages_and_bad_files(tmp_path, capsys):
    document = pymupdf.open()
    for words in (["first page text"], ["second page text"]):
        page = document.new_page(width=300, height=120)
        page.insert_text((20, 50), words[0], fontsize=14)
    document.save(tmp_path / "two.pdf")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    code, report, err = run_json(capsys, "ocr", str(tmp_path / "two.pdf"),
                                 str(tmp_path / "bad.png"), "--backend", "tesseract",
                                 "--pages", "2", "--json")
    assert code == 1  # one file failed, the other was still read
    good, bad = report["results"]
    assert (good["page"], good["text"]) == (1, "second page text")
    assert bad["file"].endswith("bad.png") and "error" in bad and "bad.png" in err


def test_ocr_plain_output_and_unavailable_backend(tmp_path, capsys):
    path = tmp_path / "label.png"
    path.write_bytes(text_image(LINES[:1]))
    assert vlforge(["ocr", str(path), "--backend", "tesseract"]) == 0
    out = capsys.readouterr().out
    assert "Shipping label 90210" in out and "1 lines" in out
    assert vlforge(["ocr", str(path), "--backend", "paddleocr"]) == 1
    assert "paddleocr backend cannot run" in capsys.readouterr().err


def write_run(out, samples):
    """A finished run directory holding `samples`, as a pipeline would leave it."""
    run = RunDir(str(out))
    refs = [input_ref("pdf", s.locator, path=s.locator) for s in samples]
    [task] = run.plan("pdf", refs, {}, task_size=len(refs))
    writer = ShardWriter(run.url, prefix=f"pdf-{task.task_id}")
    for sample, ref in zip(samples, refs):
        lineage = {**sample.lineage, "input_id": ref["input_id"], "item_id": ref["item_id"],
                   "input_ref": ref, "task": task.task_id}
        writer.write(sample.replace(meta={**sample.meta, "lineage": lineage}))
    run.write_task(task.task_id, writer.close(), writer.rows, [])
    run.finalize()


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ocr-eval") / "run"
    samples = []
    for index, lines in enumerate([["Alpha beta gamma 123"], ["Delta epsilon 4.56"]]):
        png, text_lines = pdf_page(lines)
        samples.append(Sample.create("pdf", f"sha256:x#page={index}", image=png,
                                     text=lines[0], meta={"pdf": {"page": index,
                                                                  "lines": text_lines}}))
    scanned, _ = pdf_page(["no ground truth"])
    samples.append(Sample.create("pdf", "sha256:x#page=2", image=scanned,
                                 meta={"pdf": {"page": 2, "lines": [], "needs_ocr": True}}))
    samples.append(Sample.create("web", "https://example.test/", image=text_image(["Web page"]),
                                 meta={"web": {"lines": [{"box": [0, 0, 1, 1],
                                                          "text": "Web page"}]},
                                       "ocr": {"backend": "rapidocr", "char_edits": 1,
                                               "ref_chars": 8, "word_edits": 1,
                                               "ref_words": 2}}))
    write_run(out, samples)
    return out


def test_ocr_eval_reports_cer_and_wer_per_backend(eval_run, capsys):
    code, report, _ = run_json(capsys, "ocr-eval", str(eval_run), "--json", "--details")
    assert code == 0
    assert report["samples"] == 3  # the needs_ocr page has no ground truth
    assert set(report["backends"]) == {"rapidocr", "tesseract"}
    for summary in report["backends"].values():
        assert summary["samples"] == 3 and summary["errors"] == 0
        assert summary["by_origin"] == {"pdf": 2, "web": 1}
        assert 0 <= summary["cer"] <= 0.05 and summary["wer"] <= 0.2
        assert summary["pages_per_s"] > 0
    assert len(report["details"]["tesseract"]) == 3
    # What the run itself stored (policy "always") is summarised without re-running.
    assert report["stored"]["stored:rapidocr"]["cer"] == pytest.approx(1 / 8)


def test_ocr_eval_plain_table_and_unavailable_backend(eval_run, capsys):
    code = vlforge(["ocr-eval", str(eval_run), "--backend", "tesseract",
                    "--backend", "paddleocr", "--limit", "1"])
    out = capsys.readouterr().out
    assert code == 1  # paddleocr could not run, but tesseract was still reported
    assert "tesseract" in out and "unavailable" in out and "samples with ground truth: 1" in out


def test_ocr_eval_refuses_an_unfinished_run(tmp_path, capsys):
    assert vlforge(["ocr-eval", str(tmp_path / "nothing")]) == 1
    assert "no such run directory" in capsys.readouterr().err
