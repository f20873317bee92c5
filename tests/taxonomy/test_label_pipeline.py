"""`vlforge label RUN --out RUN2` on Beam's DirectRunner, and `vlforge label --text`."""

import json

import pytest

from pipelines.cli import main as vlforge
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref, retry, run_pipeline
from pipelines.label.pipeline import label_refs

from .conftest import EXPECTED_LEAVES, content_samples, write_fixture_run


@pytest.fixture(scope="module")
def relabeled(tmp_path_factory):
    root = tmp_path_factory.mktemp("label")
    source = write_fixture_run(str(root / "source"), content_samples())
    out = str(root / "labeled")
    code = vlforge(["label", source.url, "--out", out, "--task-size", "3", "--json"])
    assert code == 0
    return source, RunDir(out)


def test_every_source_sample_is_written_once_and_labeled(relabeled):
    source, run = relabeled
    stats = run.read_json("stats.json")
    assert run.complete and stats["inputs"] == 10 and stats["written"] == 10
    assert stats["errors"] == 0 and stats["derived"] == 0
    expected = {s.key: leaf for s, leaf in zip(content_samples(), EXPECTED_LEAVES)}
    rows = run.manifest().to_pylist()
    assert {r["key"]: r["taxonomy_leaf"] for r in rows} == expected
    assert all(r["taxonomy_version"] == "1" for r in rows)
    assert stats["samples_by_taxonomy_leaf"]["unlabeled"] == 2


def test_relabeled_samples_keep_payload_and_origin(relabeled):
    source, run = relabeled
    originals = {s.key: s for s in source.iter_samples()}
    for sample in run.iter_samples():
        original = originals[sample.key]
        assert sample.image == original.image and sample.html == original.html
        origin = sample.lineage["relabeled_from"]
        assert origin["run"] == source.url and origin["key"] == sample.key
        assert origin["item_id"] == original.item_id
        assert sample.lineage["input_ref"]["key"] == sample.key  # enough to retry it alone
        assert sample.meta["taxonomy"]["path"] or sample.meta["taxonomy"]["leaf"] == "unlabeled"


def test_a_missing_sample_is_an_error_record_and_retry_rereads_one_sample(tmp_path, relabeled):
    source, _ = relabeled
    refs = label_refs([source.url])[:2]
    bad = input_ref("label", f"{source.url}#gone", run=source.url, shard=refs[0]["shard"],
                    key="gone")
    out = str(tmp_path / "out")
    stats = run_pipeline("label", refs + [bad], {}, out)
    assert stats["written"] == 2 and stats["errors"] == 1
    error = [o for o in RunDir(out).outcomes() if o.kind == "error"][0]
    assert error.stage == "ReadRunSample" and error.input_ref["key"] == "gone"
    assert retry(out)["errors"] == 1  # still missing, still accounted for, nothing lost


def test_label_text_json(capsys):
    code = vlforge(["label", "--json", "--text", "Convert this web page screenshot to HTML",
                    "--text", "How many apples are on the table?"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert rows[0]["leaf"] == "conversion.image_to_code.ui_to_code"
    assert rows[0]["path"] == ["Conversion", "Image to Code", "UI to Code"]
    assert rows[1]["leaf"] == "recognition.local_description.counting"
    assert all({"confidence", "reason", "version"} <= set(r) for r in rows)


def test_label_text_file_and_usage_errors(tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Solve the equation for x.\n\nWhy is this meme funny?\n")
    assert vlforge(["label", "--text-file", str(prompts)]) == 0
    out = capsys.readouterr().out
    assert "Logical Reasoning › Mathematical Reasoning" in out
    assert "Humor Reasoning" in out and "2 labeled, 0 unlabeled" in out
    assert vlforge(["label"]) == 1
    assert "nothing to label" in capsys.readouterr().err
