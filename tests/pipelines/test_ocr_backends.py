"""Each OCR backend that runs here reads rendered text; paddleocr explains why it cannot."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from pipelines.ocr.backends import (OcrBackendUnavailable, backend_options, lines_result,
                                    load_backend, parse_options)
from pipelines.ocr.metrics import cer
from tests.pipelines.ocr_fixtures import text_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINES = ["Invoice 4711 due 2026-03-01", "Total amount: 123.45 EUR"]


@pytest.fixture(scope="module")
def page_png():
    return text_image(LINES)


@pytest.mark.parametrize("name", ["rapidocr", "tesseract"])
def test_backend_reads_rendered_text(name, page_png):
    engine = load_backend(name)
    lines = engine.read(page_png)
    assert [line.text for line in lines] and len(lines) == 2, lines
    assert cer("\n".join(LINES), "\n".join(line.text for line in lines)) <= 0.05
    for line in lines:
        x0, y0, x1, y1 = line.box
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert 0.5 < line.confidence <= 1.0
    # Reading order: the first line is above the second.
    assert lines[0].box[3] <= lines[1].box[1] + 0.05
    assert engine.describe()["backend"] == name


def test_blank_image_gives_no_lines():
    from PIL import Image

    assert load_backend("tesseract").read(Image.new("RGB", (120, 60), "white")) == []


def test_low_confidence_lines_are_marked_and_kept_out_of_the_text(page_png):
    lines = load_backend("tesseract").read(page_png)
    result = lines_result(lines, low_confidence=1.01)  # nothing is that sure
    assert result["low_confidence_lines"] == len(lines) == len(result["lines"])
    assert all(row["low_confidence"] for row in result["lines"]) and result["text"] == ""
    result = lines_result(lines, low_confidence=0.0)
    assert not any(row["low_confidence"] for row in result["lines"])
    assert result["text"].splitlines() == [line.text for line in lines]


def test_paddleocr_without_models_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("VLFORGE_PADDLEOCR_DET_DIR", raising=False)
    monkeypatch.delenv("VLFORGE_PADDLEOCR_REC_DIR", raising=False)
    with pytest.raises(OcrBackendUnavailable) as info:
        load_backend("paddleocr")
    message = str(info.value)
    assert "det_model_dir" in message and "VLFORGE_PADDLEOCR_REC_DIR" in message
    assert "never downloads" in message and "rapidocr" in message
    monkeypatch.setenv("VLFORGE_PADDLEOCR_DET_DIR", str(tmp_path / "missing-det"))
    monkeypatch.setenv("VLFORGE_PADDLEOCR_REC_DIR", str(tmp_path))
    with pytest.raises(OcrBackendUnavailable, match="missing-det' does not exist"):
        load_backend("paddleocr")


def test_unknown_backend_and_options():
    with pytest.raises(ValueError, match="unknown OCR backend"):
        load_backend("easyocr")
    assert parse_options(["lang=deu", "psm=6", "x=0.5", "flag=true"]) == {
        "lang": "deu", "psm": 6, "x": 0.5, "flag": True}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["novalue"])
    options = {"tesseract.psm": 6, "rapidocr.threads": 1, "Det.box_thresh": 0.6}
    assert backend_options("tesseract", options) == {"psm": 6, "Det.box_thresh": 0.6}
    assert backend_options("rapidocr", options) == {"threads": 1, "Det.box_thresh": 0.6}
    with pytest.raises(ValueError, match="rapidocr: unknown option"):
        load_backend("rapidocr", psm=6)
    with pytest.raises(ValueError, match="tesseract: unknown option"):
        load_backend("tesseract", threads=2)


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs `unshare -n` (root) to cut the network")
def test_rapidocr_needs_no_network(tmp_path):
    """The default backend loads and reads with no network namespace at all (no download)."""
    (tmp_path / "page.png").write_bytes(text_image(["Offline 2026"]))
    script = textwrap.dedent(f"""
        from pipelines.ocr.backends import load_backend
        png = open({str(tmp_path / 'page.png')!r}, "rb").read()
        print(" ".join(line.text for line in load_backend("rapidocr").read(png)))
    """)
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Offline 2026"
