"""Captions of image files: sidecar NAME.txt / NAME.json, caption tables (CSV, parquet),
the caption quality rule, and real `vlforge images` runs that turn them into pairs."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines.cli import main as vlforge
from pipelines.core.caption_quality import caption_problem
from pipelines.core.run_dir import RunDir
from pipelines.core.text import IMAGE_PLACEHOLDER, PAIRED, text_layers, trusted_text
from pipelines.images.captions import CaptionTable, read_caption_table, sidecar_caption


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("   \n ", "empty"), ("--", "empty"), (None, "empty"),
    ("IMG_1234.jpg", "file_name"), ("DSC0001", "file_name"), ("dscn 4521", "file_name"),
    ("IMG_20240101_120000", "file_name"), ("photos/cat-01.PNG", "file_name"),
    ("PXL_20231231_101010.jpg", "file_name"), ("0001", "file_name"),
    ("9f86d081884c7d65", "file_name"),
    ("image", "boilerplate"), ("Photo", "boilerplate"), ("untitled", "boilerplate"),
    ("Click here!", "boilerplate"), ("click to enlarge", "boilerplate"),
    ("Image 3", "boilerplate"), ("thumbnail", "boilerplate"), ("N/A", "boilerplate"),
    ("A red square on a white background.", None), ("Sunset over the harbour", None),
    ("Photo of a dog catching a frisbee", None), ("Figure 2: loss against steps", None),
    ("IMG", "boilerplate"), ("image_0003", "file_name"),
])
def test_caption_quality_rule(text, reason):
    assert caption_problem(text) == reason


def test_caption_table_lookups():
    table = CaptionTable()
    table.add("exact", "/data/a.jpg")
    table.add("by url name", "https://example.com/pics/b.jpg?size=large")
    table.add("by key", key="000000003")
    table.add("one c", "https://x.org/c.jpg")
    table.add("another c", "https://y.org/c.jpg")  # two rows named c.jpg: name is ambiguous
    assert table.lookup("file:///data/a.jpg") == "exact"
    assert table.lookup("/elsewhere/b.jpg") == "by url name"
    assert table.lookup("/shards/00000/000000003.jpg") == "by key"
    assert table.lookup("https://x.org/c.jpg") == "one c"
    assert table.lookup("/local/c.jpg") is None
    assert table.lookup("/data/unknown.jpg") is None


def test_one_placeholder_convention():
    from model.tokenizer import IMAGE_TOKEN as model_token
    from pipelines.sft.templates import IMAGE_TOKEN as sft_token

    assert IMAGE_PLACEHOLDER == model_token == sft_token == "<image_placeholder>"


def _image(path, colour, fmt="JPEG"):
    Image.new("RGB", (48, 40), colour).save(path, fmt)
    return str(path)


@pytest.fixture()
def photos(tmp_path):
    """A folder laid out like img2dataset's files output and hand-made datasets."""
    folder = tmp_path / "photos"
    folder.mkdir()
    _image(folder / "a.jpg", "red")
    (folder / "a.txt").write_text("A red square\non a white background.\n")
    _image(folder / "b.png", "blue", "PNG")
    (folder / "b.json").write_text(json.dumps({"caption": "A blue square", "url": "https://e/b"}))
    _image(folder / "c.jpg", "green")
    (folder / "c.json").write_text(json.dumps({"text": "A green square", "key": "c"}))
    for name, junk in (("d", "IMG_1234.jpg"), ("e", "   "), ("f", "Click here")):
        _image(folder / f"{name}.jpg", "gray")
        (folder / f"{name}.txt").write_text(junk)
    _image(folder / "g.jpg", "yellow")  # no sidecar
    _image(folder / "h.jpg", "purple")
    (folder / "h.json").write_text(json.dumps({"status": "success"}))  # no caption field
    return folder


def _run(tmp_path, name, *args, capsys=None):
    out = tmp_path / name
    assert vlforge(["images", *map(str, args), "--out", str(out), "--json"]) == 0
    if capsys is not None:
        _run.summary = json.loads(capsys.readouterr().out)
    samples = {s.meta["image"]["path"].rsplit("/", 1)[-1]: s for s in RunDir(str(out)).iter_samples()}
    return samples


def test_sidecar_readers(photos):
    assert sidecar_caption(str(photos / "a.jpg")) == ("A red square\non a white background.\n", "txt")
    assert sidecar_caption(f"file://{photos / 'b.png'}") == ("A blue square", "json")
    assert sidecar_caption(str(photos / "c.jpg")) == ("A green square", "json")
    assert sidecar_caption(str(photos / "g.jpg")) is None
    assert sidecar_caption(str(photos / "h.jpg")) is None


@pytest.mark.slow
def test_images_run_reads_sidecar_captions(photos, tmp_path, capsys):
    samples = _run(tmp_path, "run", photos, capsys=capsys)
    assert len(samples) == 8  # every image is written, captioned or not
    assert _run.summary["written"] == 8 and _run.summary["dropped"] == 0
    assert _run.summary["captions"] == {
        "dropped:boilerplate": 1, "dropped:empty": 1, "dropped:file_name": 1,
        "from:json": 2, "from:txt": 1, "none": 2}
    assert samples["a.jpg"].text == "A red square on a white background."
    assert samples["b.png"].text == "A blue square"
    assert samples["c.jpg"].text == "A green square"
    sources = {name: s.meta["image"].get("caption_source") for name, s in samples.items()}
    assert sources == {"a.jpg": "txt", "b.png": "json", "c.jpg": "json", "d.jpg": "txt",
                       "e.jpg": "txt", "f.jpg": "txt", "g.jpg": None, "h.jpg": None}
    dropped = {name: s.meta["image"].get("caption_dropped") for name, s in samples.items()
               if s.meta["image"].get("caption_dropped")}
    assert dropped == {"d.jpg": "file_name", "e.jpg": "empty", "f.jpg": "boilerplate"}
    for name in ("d.jpg", "e.jpg", "f.jpg", "g.jpg", "h.jpg"):
        assert not samples[name].text and "caption" not in samples[name].meta["image"]
    # The caption is a text layer of its own origin, paired trust, read from meta["image"].
    layer = trusted_text(samples["a.jpg"], PAIRED)
    assert (layer.origin, layer.trust, layer.section) == ("caption", PAIRED, "image")
    assert layer.text == "A red square on a white background."
    assert text_layers(samples["g.jpg"]) == []

    # --no-sidecar-captions: plain images again.
    plain = _run(tmp_path, "plain", photos, "--no-sidecar-captions")
    assert not any(s.text for s in plain.values())


@pytest.mark.slow
def test_images_run_reads_caption_tables(photos, tmp_path):
    table = tmp_path / "captions.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "caption"])
        writer.writerow([str(photos / "g.jpg"), "A yellow square"])  # no sidecar: table only
        writer.writerow([str(photos / "a.jpg"), "The table wins over a.txt"])
        writer.writerow([str(photos / "h.jpg"), "untitled"])  # junk from a table is dropped too
    samples = _run(tmp_path, "csv", photos, "--captions", table)
    assert samples["g.jpg"].text == "A yellow square"
    assert samples["a.jpg"].text == "The table wins over a.txt"
    assert samples["a.jpg"].meta["image"]["caption_source"] == "table"
    assert samples["h.jpg"].meta["image"]["caption_dropped"] == "boilerplate"
    assert samples["b.png"].text == "A blue square"  # not in the table: its sidecar

    # img2dataset's parquet: url + caption (+ key); images matched by their file name.
    parquet = tmp_path / "captions.parquet"
    pq.write_table(pa.table({
        "url": ["https://cdn.example.com/img/g.jpg", "https://cdn.example.com/img/zzz.jpg"],
        "caption": ["Yellow, from the parquet", "not downloaded"],
        "key": ["000000000", "000000001"]}), parquet)
    assert read_caption_table(str(parquet)).rows == 2
    samples = _run(tmp_path, "parquet", photos, "--captions", parquet)
    assert samples["g.jpg"].text == "Yellow, from the parquet"
    assert samples["a.jpg"].meta["image"]["caption_source"] == "txt"


def test_bad_caption_table_is_a_config_problem(photos, tmp_path, capsys):
    assert vlforge(["images", str(photos), "--out", str(tmp_path / "x"),
                    "--captions", str(tmp_path / "captions.xlsx")]) == 1
    assert "captions must be" in capsys.readouterr().err
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("file,description\na.jpg,hello\n")
    with pytest.raises(ValueError, match="caption"):
        read_caption_table(str(wrong))
