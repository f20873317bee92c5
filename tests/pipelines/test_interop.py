"""Shards load with the upstream webdataset library and with HF datasets, offline."""

import glob
import json
import os

import pytest

from pipelines.images.pipeline import image_refs
from pipelines.core.runner import run_pipeline
from pipelines.core.export import export_hf, export_parquet, inspect_run
from tests.pipelines.fixtures import write_images


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("interop")
    refs = image_refs(write_images(str(base / "in"), 7))
    out = str(base / "run")
    run_pipeline("images", refs, {}, out, task_size=4)
    return out


def test_upstream_webdataset_reads_the_shards(run_dir):
    import webdataset as wds

    urls = sorted(glob.glob(os.path.join(run_dir, "*.tar")))
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert len(samples) == 7
    for sample in samples:
        header = sample["json"]
        assert header["key"] == sample["__key__"]
        assert sample["png"].size[1] == 64
        assert header["meta"]["image"]["format"] == "PNG"


def test_hf_datasets_loads_the_shards(run_dir):
    import datasets

    urls = sorted(glob.glob(os.path.join(run_dir, "*.tar")))
    dataset = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train")
    assert dataset.num_rows == 7
    row = dataset[0]
    assert row["png"].size[1] == 64
    assert row["json"]["source"] == "images"


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
