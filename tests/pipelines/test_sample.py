import json

import pytest

from pipelines.core.outcome import Outcome
from pipelines.core.sample import Sample, image_extension, stable_key
from tests.pipelines.fixtures import png_bytes


def test_round_trip_keeps_every_field():
    sample = Sample.create(
        "pdf", "sha256:abc#page=3", lineage={"input_id": "in1", "task": "t00000"},
        image=png_bytes(seed=1), extra_images=(png_bytes(seed=2), png_bytes(seed=3)),
        text="hello", markdown="# hello", html="<p>hello</p>",
        meta={"pdf": {"page": 3, "lines": [{"box": [0.1, 0.2, 0.3, 0.4], "text": "hello"}]}})
    group = sample.to_wds()
    assert set(group) == {"__key__", "png", "1.png", "2.png", "txt", "md", "html", "json"}
    back = Sample.from_wds(group)
    assert back == sample
    assert back.images == (png_bytes(seed=1), png_bytes(seed=2), png_bytes(seed=3))


def test_text_only_sample_round_trips():
    sample = Sample.create("text", "corpus#1", text="just words")
    group = sample.to_wds()
    assert "png" not in group
    assert Sample.from_wds(group) == sample


def test_keys_are_stable_and_dot_free():
    assert stable_key("web", "http://a.example/x") == stable_key("web", "http://a.example/x")
    assert stable_key("web", "http://a.example/x") != stable_key("pdf", "http://a.example/x")
    assert "." not in stable_key("web", "http://a.example/x.html")


def test_stages_never_mutate():
    sample = Sample.create("test", "x", text="a")
    labeled = sample.with_meta("taxonomy", {"leaf": "recognition"})
    assert "taxonomy" not in sample.meta
    assert labeled.meta["taxonomy"] == {"leaf": "recognition"}
    with pytest.raises(Exception):
        sample.text = "b"


def test_derived_sample_points_at_its_parent():
    page = Sample.create("pdf", "doc#page=1", lineage={"input_id": "in", "task": "t00001"})
    figure = page.derive("doc#page=1/figure=0", image=png_bytes())
    assert figure.lineage["derived_from"] == page.key
    assert figure.lineage["input_id"] == "in" and figure.lineage["task"] == "t00001"
    assert figure.key != page.key


def test_image_extension_from_magic_bytes():
    assert image_extension(png_bytes()) == "png"
    assert image_extension(b"\xff\xd8\xff\xe0rest") == "jpg"
    assert image_extension(b"nonsense") == "bin"


def test_outcome_row_round_trip_and_kind_check():
    sample = Sample.create("web", "http://x", lineage={
        "input_id": "i", "task": "t00002", "input_ref": {"url": "http://x"}})
    error = Outcome.error(sample, "ScreenshotPages", TimeoutError("navigation timed out"))
    assert error.reason == "TimeoutError" and "navigation timed out" in error.message
    assert error.input_ref == {"url": "http://x"} and error.task == "t00002"
    assert Outcome.from_row(error.to_row()) == error
    assert json.loads(error.to_row()["input_ref"]) == {"url": "http://x"}
    with pytest.raises(ValueError):
        Outcome(kind="lost", stage="x", reason="y")


def test_a_verdict_is_tied_to_its_item_by_the_stage_that_receives_it():
    import pickle

    from pipelines.pdf.render import DocumentRejected
    from pipelines.web.policy import refuse, scheme_refusal

    verdict = Outcome.of("dropped", "robots_disallowed", "robots.txt says no")
    assert pickle.loads(pickle.dumps(verdict)) == verdict  # crosses the renderer's pipe
    sample = Sample.create("web", "http://x", lineage={
        "input_id": "i", "task": "t00003", "input_ref": {"url": "http://x"}})
    out = verdict.about(sample, "ScreenshotPages")
    assert (out.kind, out.reason, out.message, out.stage) == (
        "dropped", "robots_disallowed", "robots.txt says no", "ScreenshotPages")
    assert (out.key, out.item_id, out.task, out.input_ref) == (
        sample.key, sample.key, "t00003", {"url": "http://x"})
    # The crawl policy and the PDF renderer answer with the same type.
    assert isinstance(scheme_refusal("file:///etc/passwd"), Outcome)
    assert refuse("dns_failure", "no such host", "error").kind == "error"
    assert DocumentRejected("dropped", "encrypted", "needs a password").outcome == \
        Outcome.of("dropped", "encrypted", "needs a password")


def test_images_enter_as_png_whatever_their_format(tmp_path):
    """One image member (png) for every run: see pipelines.core.schema."""
    import io

    from PIL import Image

    from pipelines.core.sample import as_png
    from pipelines.sft.pipeline import convert_record

    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 10, 10)).save(buffer, format="JPEG")
    jpeg = buffer.getvalue()
    png = as_png(jpeg)
    assert image_extension(png) == "png" and Image.open(io.BytesIO(png)).size == (30, 20)
    assert as_png(png) is png  # PNG passes through untouched
    (tmp_path / "photo.jpg").write_bytes(jpeg)
    images, _ = convert_record({"image": "photo.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "Red."}]},
        str(tmp_path))
    assert image_extension(images[0]) == "png"


def test_every_header_has_every_field_typed_and_nothing_null():
    from pipelines.core.schema import FIELD_NAMES, check_header

    text_only = json.loads(Sample.create("text", "corpus#2", text="words").to_wds()["json"])
    page = json.loads(Sample.create("pdf", "doc#page=0", image=png_bytes(), meta={
        "pdf": {"lines": [{"box": [0, 0, 0.5, 0.5], "text": "hi"}]},
        "taxonomy": {"leaf": "recognition", "confidence": 1, "version": 3}}).to_wds()["json"])
    for header in (text_only, page):
        assert check_header(header) == [] and set(header) == set(FIELD_NAMES)
    assert page["taxonomy_confidence"] == 1.0 and page["taxonomy_version"] == "3"
    assert page["trusted_origin"] == "pdf_text" and page["width"] == 64
    assert text_only["width"] == 0 and text_only["images"] == "[]"
    assert check_header({**page, "taxonomy_leaf": None, "extra": 1}) == [
        "unexpected key 'extra'", "taxonomy_leaf: expected str, got NoneType"]


def test_meta_json_is_python_json_text_and_a_cycle_still_fails():
    """The meta member is `json.dumps` text (sorted keys, compact, Python's float repr,
    non-ASCII kept) without its cycle check: a cycle must still fail, not write."""
    from pipelines.core import schema

    meta = {"pdf": {"b": [1e-05, 0.1, 2.5e-07, 1.0, float("nan")], "a": "é", "c": (1, 2)}}
    assert schema.dumps(meta) == json.dumps(meta, ensure_ascii=False, sort_keys=True,
                                            separators=(",", ":"))
    looped: dict = {"pdf": {}}
    looped["pdf"]["self"] = looped
    with pytest.raises((ValueError, RecursionError)):
        Sample.create("pdf", "loop", meta=looped).to_wds()
