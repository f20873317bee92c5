"""Shards load with the upstream webdataset library, HF datasets and pyarrow, offline —
also when runs of different pipelines (images, pdf pages + figures + tables, web pages +
tiles) are read together in one call, which only works because every sample's JSON member
has the one shape of `pipelines.core.schema`."""

import glob
import io
import json
import os
import tarfile

import pytest
from PIL import Image

from pipelines.core.export import export_hf, export_parquet, inspect_run
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import run_pipeline
from pipelines.core.sample import Sample
from pipelines.core.schema import FIELD_NAMES, arrow_schema, check_header, hf_features
from pipelines.images.pipeline import image_refs
from pipelines.pdf.pipeline import pdf_refs
from tests.pipelines.fixtures import write_images
from tests.pipelines.pdf_fixtures import bar_chart, photo_and_scan, text_and_table


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("interop")
    refs = image_refs(write_images(str(base / "in"), 7))
    out = str(base / "run")
    run_pipeline("images", refs, {}, out, task_size=4)
    return out


@pytest.fixture(scope="module")
def mixed_runs(tmp_path_factory, run_dir):
    """An images run (PNG + one JPEG input, labeled) and a PDF run (pages, figures, tables,
    vector charts). The images run comes first: its samples have no markdown, no HTML, no
    charts, no PDF meta — exactly what made a later PDF/web sample fail to load before."""
    base = tmp_path_factory.mktemp("mixed")
    images = write_images(str(base / "img"), 3)
    jpeg = str(base / "img" / "photo.jpg")
    Image.new("RGB", (80, 60), (200, 30, 30)).save(jpeg, format="JPEG")
    images_run = str(base / "images")
    run_pipeline("images", image_refs(images + [jpeg]), {"ocr": None, "label": True},
                 images_run, task_size=8)
    docs = []
    for name, draw in (("text_table.pdf", text_and_table), ("chart.pdf", bar_chart),
                       ("photo_scan.pdf", photo_and_scan)):
        docs.append(str(base / name))
        draw(docs[-1])
    pdf_run = str(base / "pdf")
    run_pipeline("pdf", pdf_refs(docs), {"ocr": None, "charts": True, "label": False},
                 pdf_run, task_size=2)
    return [images_run, pdf_run]


def shards_of(runs: list[str]) -> list[str]:
    return [url for run in runs for url in sorted(glob.glob(os.path.join(run, "*.tar")))]


def manifest_count(runs: list[str]) -> int:
    return sum(len(list(RunDir(run).iter_samples())) for run in runs)


def json_members(urls: list[str]) -> list[dict]:
    headers = []
    for url in urls:
        with tarfile.open(url) as tar:
            headers += [json.load(tar.extractfile(m)) for m in tar if m.name.endswith(".json")]
    return headers


def check_mixed_load(runs: list[str]) -> dict:
    """Load all shards of `runs` every way; check counts agree; returns what was read."""
    import datasets
    import pyarrow as pa
    import webdataset as wds

    urls = shards_of(runs)
    expected = manifest_count(runs)
    headers = json_members(urls)
    assert len(headers) == expected
    # Every sample carries every key with its type: nothing left for inference to guess.
    problems = {h["key"]: check_header(h) for h in headers if check_header(h)}
    assert problems == {}
    inferred = pa.Table.from_pylist(headers).schema  # pyarrow infers over all samples
    assert {f.name: f.type for f in inferred} == {f.name: f.type for f in arrow_schema()}

    # HF datasets with plain inference, all runs in ONE call.
    plain = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train")
    assert plain.num_rows == expected
    assert set(FIELD_NAMES) <= set(plain.features["json"])
    # ... and with the schema's features: JSON-text fields come back as objects.
    typed = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train",
                                  features=hf_features())
    assert typed.num_rows == expected

    # The upstream webdataset reader sees the same samples.
    upstream = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("pil"))
    assert len(upstream) == expected
    return {"plain": plain, "typed": typed, "upstream": upstream, "headers": headers}


def test_upstream_webdataset_reads_the_shards(run_dir):
    import webdataset as wds

    urls = sorted(glob.glob(os.path.join(run_dir, "*.tar")))
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert len(samples) == 7
    for sample in samples:
        header = sample["json"]
        assert header["key"] == sample["__key__"]
        assert sample["png"].size[1] == 64 and header["height"] == 64
        assert json.loads(header["meta"])["image"]["format"] == "PNG"
        assert Sample.from_wds({**sample, "png": _png(sample["png"])}).key == header["key"]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_hf_datasets_loads_the_shards(run_dir):
    import datasets

    urls = sorted(glob.glob(os.path.join(run_dir, "*.tar")))
    dataset = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train")
    assert dataset.num_rows == 7
    row = dataset[0]
    assert row["png"].size[1] == 64
    assert row["json"]["source"] == "images"


@pytest.mark.slow
def test_images_and_pdf_runs_load_together(mixed_runs):
    read = check_mixed_load(mixed_runs)
    headers = read["headers"]
    kinds = {json.loads(h["meta"]).get("pdf", {}).get("kind") for h in headers}
    assert {"page", "figure", "table"} <= kinds  # pages and their derived samples
    assert any(json.loads(h["meta"]).get("chart") for h in headers)
    assert any(h["taxonomy_leaf"] for h in headers) and any(h["has_markdown"] for h in headers)
    page = next(h for h in headers if h["trusted_origin"] == "pdf_text")
    layer = json.loads(page["text_layers"])[0]
    assert layer["origin"] == "pdf_text" and layer["trust"] == "exact"
    x0, y0, x1, y1 = layer["lines"][0]["box"]  # image pixels, inside the image
    assert 0 <= x0 < x1 <= page["width"] and 0 <= y0 < y1 <= page["height"]
    assert page["width"] > 1 and page["trusted_text"] == layer["text"]

    # Plain inference: markdown written after the image samples is still there.
    plain = read["plain"]
    pages = [r for r in plain if r["json"]["has_markdown"]]
    assert pages and all(r["md"] for r in pages)
    # With the schema's features the meta objects come back decoded; the JPEG input is
    # stored as PNG (one image member for every run), its format kept in meta.
    typed = read["typed"]
    jpeg = next(r for r in typed if r["json"]["locator"].endswith("photo.jpg"))
    assert jpeg["png"].size == (80, 60) and jpeg["json"]["meta"]["image"]["format"] == "JPEG"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(600)
def test_web_pdf_and_images_runs_load_together(mixed_runs, tmp_path):
    from pipelines.web.pipeline import crawl
    from pipelines.web.testsite import serve_site

    server, site = serve_site()
    try:
        web_run = str(tmp_path / "web")
        render = {"allow_private": ["127.0.0.1"], "host_delay_s": 0, "concurrency": 2,
                  "nav_timeout_s": 5, "load_grace_s": 1, "total_timeout_s": 12, "retries": 0,
                  "max_tiles": 2}
        crawl([site + p for p in ("/", "/articles/1", "/table", "/chart")], web_run,
              {"render": render, "ocr": None, "charts": True, "label": False}, task_size=4)
    finally:
        server.shutdown()
    read = check_mixed_load(mixed_runs + [web_run])
    web = [r for r in read["plain"] if r["json"]["source"] == "web"]
    assert web and any(r["json"]["has_html"] and r["html"] for r in web)
    assert any(r["json"]["trusted_origin"] == "dom" for r in web)
    assert any(json.loads(r["json"]["meta"])["web"].get("svgs") for r in web)


def test_old_shards_still_read(tmp_path):
    """A group written with the schema-1 JSON member (nested meta, optional text members)."""
    from pipelines.core.shards import iter_shard_samples

    header = {"schema": 1, "key": "k1", "source": "pdf", "locator": "doc#page=0",
              "meta": {"pdf": {"page": 0}, "lineage": {"task": "t0"}}, "images": []}
    path = tmp_path / "old-000000.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in (("k1.txt", b"page text"), ("k1.json", json.dumps(header).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (sample,) = iter_shard_samples(str(path))
    assert sample.text == "page text" and sample.markdown is None
    assert sample.meta["pdf"] == {"page": 0} and sample.lineage["task"] == "t0"


def test_export_to_parquet_and_hf(run_dir, tmp_path):
    import datasets
    import pyarrow.parquet as pq

    files = export_parquet(run_dir, str(tmp_path / "pq"), rows_per_file=5)
    assert len(files) == 2
    table = pq.read_table(str(tmp_path / "pq"))
    assert table.num_rows == 7 and table.column("image")[0].as_py().startswith(b"\x89PNG")
    assert export_hf(run_dir, str(tmp_path / "hf")) == 7
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert loaded[0]["image"].size[1] == 64
    assert json.loads(loaded[0]["meta"])["lineage"]["source"] == "images"


def test_inspect_reports_counts(run_dir):
    info = inspect_run(run_dir)
    assert info["samples"] == 7 and len(info["shards"]) == 2
    assert info["by_source"] == {"images": 7}


def test_interleaved_documents_load_and_export_with_every_image(tmp_path):
    """Six one-image pages, then a three-image interleaved document (as a crawl writes them):
    `hf_features_for` loads every image member; the parquet and HF exports keep them."""
    import datasets
    import pyarrow.parquet as pq

    from pipelines.core.export import hf_features_for
    from pipelines.core.text import IMAGE_PLACEHOLDER
    from tests.training.conftest import draw_png, write_run_dir

    pages = [Sample.create("web", f"https://a.example/{i}", image=draw_png("red", "square"),
                           text=f"page {i}") for i in range(6)]
    shapes = [draw_png(c, s) for c, s in (("red", "circle"), ("green", "square"),
                                          ("blue", "circle"))]
    text = f"intro {IMAGE_PLACEHOLDER} middle {IMAGE_PLACEHOLDER} end {IMAGE_PLACEHOLDER}"
    document = Sample.create("web", "https://a.example/0#&interleaved=0", image=shapes[0],
                             extra_images=tuple(shapes[1:]), text=text)
    run = write_run_dir(tmp_path / "run", "web", pages + [document], max_count=100)
    urls = shards_of([run])

    features = hf_features_for([run])
    assert {"png", "1.png", "2.png"} <= set(features)
    loaded = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train",
                                   features=features)
    [row] = [r for r in loaded if r["json"]["num_images"] == 3]
    assert [_png(row[m].convert("RGB")) == _png(Image.open(io.BytesIO(b)).convert("RGB"))
            for m, b in zip(("png", "1.png", "2.png"), shapes)] == [True] * 3
    assert all(r["1.png"] is None for r in loaded if r["json"]["num_images"] == 1)

    export_parquet(run, str(tmp_path / "pq"), rows_per_file=4)
    table = pq.read_table(str(tmp_path / "pq")).to_pylist()
    [exported] = [r for r in table if r["extra_images"]]
    assert exported["extra_images"] == list(shapes[1:]) and exported["text"] == text
    assert export_hf(run, str(tmp_path / "hf")) == 7
    hf = datasets.load_from_disk(str(tmp_path / "hf"))
    assert sorted(len(r["extra_images"]) for r in hf) == [0] * 6 + [2]
