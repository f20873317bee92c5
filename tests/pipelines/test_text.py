"""Text layers: origin, trust, pixel boxes, and the one `trusted_text` rule."""

from pipelines.core.sample import Sample
from pipelines.core.text import DOUBTFUL, EXACT, PAIRED, RECOGNISED, text_layers, trusted_text
from pipelines.label.rules import task_rule
from pipelines.ocr.metrics import ground_truth_lines
from pipelines.ocr.stage import ocr_reason
from pipelines.sft.templates import source_text
from tests.pipelines.fixtures import png_bytes

LINES = [{"box": [0.1, 0.2, 0.5, 0.3], "text": "Total revenue grew"}]
OCR = [{"box": [0.1, 0.2, 0.5, 0.3], "text": "Total revenue grew", "confidence": 0.9,
        "low_confidence": False}]


def _sample(**meta) -> Sample:
    return Sample.create("t", repr(sorted(meta)), image=png_bytes(200, 100), meta=meta)


def test_layers_carry_origin_trust_and_boxes_in_image_pixels():
    sample = _sample(pdf={"lines": LINES, "caption": "Figure 1: revenue", "width": 999},
                     ocr={"lines": OCR})
    layers = text_layers(sample)
    assert [(layer.origin, layer.trust) for layer in layers] == [
        ("pdf_text", EXACT), ("ocr", RECOGNISED), ("caption", PAIRED)]
    pdf = layers[0]
    # The image header (200 x 100) wins over a section's own size.
    assert (pdf.width, pdf.height) == (200, 100)
    assert pdf.lines[0].box == (20.0, 20.0, 100.0, 30.0)
    assert pdf.section_lines == tuple(LINES) and pdf.text == "Total revenue grew"


def test_one_rule_decides_for_every_consumer():
    page = _sample(pdf={"lines": LINES})
    scan = _sample(pdf={"lines": LINES, "needs_ocr": True}, ocr={"lines": OCR})
    doubtful = _sample(ocr={"lines": [{**OCR[0], "low_confidence": True}]})
    web = _sample(web={"lines": LINES})

    assert trusted_text(page).origin == "pdf_text"
    assert trusted_text(scan).origin == "ocr"
    assert trusted_text(scan, EXACT) is None
    assert trusted_text(doubtful) is None and trusted_text(doubtful, DOUBTFUL).origin == "ocr"
    # OCR ground truth, OCR policy, SFT answers and labeling rules all follow it.
    assert ground_truth_lines(page.meta) == ("pdf", LINES)
    assert ground_truth_lines(scan.meta) is None
    assert ocr_reason(web) is None and ocr_reason(web, "always") == "measure"
    assert source_text(scan) == ("Total revenue grew", "ocr.lines")
    assert source_text(web) == ("Total revenue grew", "web.lines")
    assert source_text(doubtful) is None
    assert task_rule(page).rule == "pdf_text_layer"
    assert task_rule(scan).rule == "ocr_transcription"
    assert task_rule(web).rule == "web_text_boxes"
    assert task_rule(doubtful) is None


def test_unknown_image_size_keeps_text_without_boxes():
    layer = trusted_text(meta={"ocr": {"lines": OCR}})
    assert layer.text == "Total revenue grew" and layer.lines[0].box is None


def test_image_dimensions_from_headers_only():
    import io

    from PIL import Image

    from pipelines.core.text import image_dimensions

    assert image_dimensions(png_bytes(200, 100)) == (200, 100)
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20)).save(buffer, format="JPEG")
    assert image_dimensions(buffer.getvalue()) == (30, 20)
    assert image_dimensions(b"not an image") is None
