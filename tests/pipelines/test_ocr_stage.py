"""The OcrImages stage: which samples get OCR (policy), what it stores, how it fills text."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

from pipelines.ocr.stage import OcrImagesFn, ocr_reason
from pipelines.ocr.metrics import cer
from pipelines.core.outcome import Outcome
from pipelines.post_stages import post_stages
from pipelines.core.sample import Sample
from tests.pipelines.ocr_fixtures import pdf_page_sample, text_image

PAGE = ["Quarterly report 2026", "Revenue grew by 12.5%"]


def image_file_sample(lines=("Photo caption 42",)):
    return Sample.create("images", "file:///tmp/photo.png", image=text_image(list(lines)),
                         meta={"image": {"width": 1, "height": 1, "format": "PNG"}})


def test_policy_selects_samples_without_trustworthy_text():
    text_layer = pdf_page_sample(PAGE)
    scanned = pdf_page_sample(PAGE, needs_ocr=True)
    figure = pdf_page_sample(PAGE, kind="figure")
    photo = image_file_sample()
    bare = Sample.create("web", "https://x/img", image=text_image(["x"]))
    captioned = Sample.create("sft", "sft://1", image=text_image(["x"]), text="a caption")
    text_only = Sample.create("sft", "sft://2", text="no image here")
    web_shot = Sample.create("web", "https://x/", image=text_image(["x"]),
                             meta={"web": {"lines": [{"box": [0, 0, 1, 1], "text": "x"}]},
                                   "image": {"width": 10, "height": 10}})
    missing = {name: ocr_reason(s, "missing") for name, s in [
        ("text_layer", text_layer), ("scanned", scanned), ("figure", figure), ("photo", photo),
        ("bare", bare), ("captioned", captioned), ("text_only", text_only),
        ("web_shot", web_shot)]}
    assert missing == {"text_layer": None, "scanned": "needs_ocr", "figure": "figure",
                       "photo": "image_file", "bare": "no_text", "captioned": None,
                       "text_only": None, "web_shot": None}
    assert ocr_reason(text_layer, "always") == "measure"
    assert ocr_reason(web_shot, "always") == "measure"
    assert ocr_reason(captioned, "always") == "always"
    assert ocr_reason(text_only, "always") is None
    with pytest.raises(ValueError, match="policy"):
        ocr_reason(photo, "sometimes")
    with pytest.raises(ValueError, match="policy"):
        OcrImagesFn(policy="sometimes")


def test_missing_policy_ocrs_only_where_text_is_missing():
    text_layer = pdf_page_sample(PAGE, index=0)
    scanned = pdf_page_sample(PAGE, index=1, needs_ocr=True)
    text_only = Sample.create("sft", "sft://2", text="no image here")
    failed = Outcome.dropped(text_only, "Earlier", "blank_page")
    out = OcrImagesFn("rapidocr", "missing").run_local([text_layer, scanned, text_only, failed])
    assert len(out) == 4
    assert out[0] == text_layer and out[2] == text_only and out[3] == failed  # untouched
    ocr = out[1].meta["ocr"]
    assert ocr["backend"] == "rapidocr" and ocr["reason"] == "needs_ocr"
    assert cer("\n".join(PAGE), ocr["text"]) <= 0.05
    assert all(set(line) == {"box", "text", "confidence", "low_confidence"}
               for line in ocr["lines"])
    assert "cer" not in ocr  # a scanned page has no ground truth to measure against
    assert out[1].text == ocr["text"]  # the empty page text is filled in


def test_always_policy_measures_against_the_text_layer():
    page = pdf_page_sample(PAGE)
    photo = image_file_sample()
    out = OcrImagesFn("tesseract", "always").run_local([page, photo])
    ocr = out[0].meta["ocr"]
    assert ocr["reason"] == "measure" and ocr["ground_truth"] == "pdf"
    assert 0 <= ocr["cer"] <= 0.05 and ocr["wer"] <= 0.25
    assert ocr["ref_chars"] == len(" ".join(" ".join(PAGE).split()))
    assert out[0].text == page.text  # ground truth text is never overwritten
    assert out[1].meta["ocr"]["reason"] == "image_file" and "cer" not in out[1].meta["ocr"]
    assert out[1].text is None  # only needs_ocr pages get their text filled


def test_low_confidence_page_text_is_not_filled():
    scanned = pdf_page_sample(PAGE, needs_ocr=True)
    [out] = OcrImagesFn("tesseract", low_confidence=1.01).run_local([scanned])
    assert out.meta["ocr"]["low_confidence_lines"] == len(out.meta["ocr"]["lines"]) > 0
    assert out.meta["ocr"]["text"] == "" and not out.text


def test_undecodable_image_keeps_the_sample_with_an_error():
    broken = Sample.create("images", "file:///broken.png", image=b"\x89PNG broken")
    [out] = OcrImagesFn("tesseract").run_local([broken])
    assert isinstance(out, Sample) and out.image == broken.image
    assert "UnidentifiedImageError" in out.meta["ocr"]["error"]


def test_post_stages_builds_the_stage():
    [stage] = post_stages({"ocr": "tesseract", "ocr_policy": "always"})
    assert isinstance(stage, OcrImagesFn)
    assert (stage.backend, stage.policy) == ("tesseract", "always")


def test_stage_runs_in_a_beam_pipeline():
    """Pickled to a worker, models opened in setup, records out the other side."""
    scanned = pdf_page_sample(PAGE, needs_ocr=True)
    text_only = Sample.create("sft", "sft://2", text="no image here")

    def check(records):
        by_key = {r.key: r for r in records}
        assert len(records) == 2
        assert "ocr" not in by_key[text_only.key].meta
        assert cer("\n".join(PAGE), by_key[scanned.key].meta["ocr"]["text"]) <= 0.05

    with BeamTestPipeline() as p:
        out = p | beam.Create([scanned, text_only]) | beam.ParDo(OcrImagesFn("tesseract"))
        assert_that(out, check)


def _png(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_one_colour_image_gets_the_engines_empty_answer_without_the_engine():
    from PIL import Image

    from pipelines.ocr.backends import load_backend
    from pipelines.ocr.stage import is_blank_image

    white = _png(Image.new("RGB", (1024, 1024), "white"))
    tile = Sample.create("web", "https://x/#tile=1", image=white)  # no text: "no_text"
    words = Sample.create("web", "https://x/#tile=2", image=text_image(["Blank no more"]))
    stage = OcrImagesFn("rapidocr", "missing")
    blank_out, words_out = stage.run_local([tile, words])
    ocr = blank_out.meta["ocr"]
    assert ocr["blank"] is True and ocr["reason"] == "no_text"
    # What the engine itself answers for that image: the skip changes nothing but cost.
    assert load_backend("rapidocr").read(white) == []
    assert ocr["lines"] == [] and ocr["text"] == "" and ocr["low_confidence_lines"] == 0
    assert "blank" not in words_out.meta["ocr"] and "Blank" in words_out.meta["ocr"]["text"]
    # One pixel off, or text only in the alpha band, is not blank.
    dot = Image.new("RGB", (64, 64), "white")
    dot.putpixel((5, 5), (0, 0, 0))
    ghost = Image.new("RGBA", (64, 64), (255, 255, 255, 0))
    ghost.putpixel((5, 5), (255, 255, 255, 255))
    assert not is_blank_image(_png(dot)) and not is_blank_image(_png(ghost))
    assert is_blank_image(_png(Image.new("L", (8, 8), 7)))
    assert not is_blank_image(b"not an image")
