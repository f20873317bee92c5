"""`vlforge sft import` and `vlforge sft build` end to end on the Beam DirectRunner: every
conversation is checked against the source sample it names, accounting holds, retries
re-read one record, and the mixture report matches what was written."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from pipelines.core.audit import audit_run
from pipelines.cli import main as vlforge
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref, retry
from pipelines.core.sample import Sample
from pipelines.sft.pipeline import BuildSftFn, convert_record, detect_format, load_records
from pipelines.sft.build import REPORT_JSON, REPORT_PNG, build_sft
from pipelines.sft.templates import (IMAGE_TOKEN, SYSTEM_PROMPT, count_image_tokens,
                                    render_conversation, source_text)
from tests.taxonomy.sft_fixtures import (CHART_CODE, source_samples, text_png,
                                         write_llava_jsonl, write_source_run)
from tests.taxonomy.test_sft_templates import _check_chart_answer, _series_values

MIXTURE = """name: test
total: 30
max_repeat: 3
seed: 1
weights:
  text_only: 0.1
  recognition.ocr_transcription: 0.1
  analysis.data_chart_analysis: 0.4
  conversion.image_to_code: 0.2
  multi_graph: 0.1
  recognition: 0.1
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("sft")


@pytest.fixture(scope="module")
def source_run(workdir):
    return write_source_run(str(workdir / "src"), source_samples())


@pytest.fixture(scope="module")
def import_run(workdir):
    jsonl = write_llava_jsonl(str(workdir / "llava"))
    out = str(workdir / "imported")
    # Labeling is tested on its own below (loading the embedding model takes a while).
    assert vlforge(["sft", "import", jsonl, "--out", out, "--json", "--no-label"]) == 0
    return out


@pytest.fixture(scope="module")
def built(workdir, source_run, import_run):
    mixture = workdir / "mix.yaml"
    mixture.write_text(MIXTURE)
    out = str(workdir / "built")
    result = build_sft([source_run, import_run], out, str(mixture), task_size=8)
    return out, result


def _by_key(run_url: str) -> dict[str, Sample]:
    return {s.key: s for s in RunDir(run_url).iter_samples()}


def test_import_converts_llava_records(import_run, workdir):
    samples = {s.meta["sft"]["external_id"]: s for s in RunDir(import_run).iter_samples()}
    assert set(samples) == {"r1", "r2", "t1"}
    receipt = samples["r1"]
    turns = receipt.meta["sft"]["conversation"]
    assert turns[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert turns[1] == {"role": "user",
                        "content": IMAGE_TOKEN + "\nTranscribe the text on this receipt."}
    assert turns[2] == {"role": "assistant", "content": "RECEIPT\nCoffee 3.20\nTotal 3.20"}
    with open(workdir / "llava" / "images" / "receipt.png", "rb") as handle:
        assert receipt.image == handle.read()
    assert receipt.text == render_conversation(turns)
    # No <image> token in the record: the placeholder goes in front of the first user turn.
    chart_turns = samples["r2"].meta["sft"]["conversation"]
    assert chart_turns[1]["content"].startswith(IMAGE_TOKEN + "\nWhat is the trend")
    assert [t["role"] for t in chart_turns] == ["system", "user", "assistant", "user", "assistant"]
    haiku = samples["t1"]
    assert haiku.image is None and haiku.images == ()
    assert count_image_tokens(haiku.meta["sft"]["conversation"]) == 0
    for sample in samples.values():
        assert sample.meta["taxonomy"] == {"leaf": "unlabeled", "confidence": 0.0,
                                           "reason": "labeling off"}


def test_import_accounts_for_bad_records_and_retry_rereads_one(import_run, workdir):
    report = audit_run(import_run)
    assert report.ok, report.to_dict()
    assert (report.inputs, report.written, report.dropped, report.errors) == (5, 3, 1, 1)
    assert report.dropped_by_reason == {"BuildSft:image_count_mismatch": 1}
    assert report.errors_by_reason == {"BuildSft:FileNotFoundError": 1}
    failed = [o for o in RunDir(import_run).outcomes() if o.kind == "error"][0]
    assert failed.input_ref["index"] == 3
    # Fix the input and retry: only that record is re-read, and it now succeeds.
    copy = str(workdir / "imported-retry")
    shutil.copytree(import_run, copy)
    with open(workdir / "llava" / "images" / "missing.png", "wb") as handle:
        handle.write(text_png(["found"]))
    try:
        stats = retry(copy)
    finally:
        os.remove(workdir / "llava" / "images" / "missing.png")
    assert (stats["written"], stats["errors"], stats["dropped"]) == (4, 0, 1)
    assert audit_run(copy).ok


@pytest.mark.slow
def test_import_labels_prompts_with_the_taxonomy_labeler(workdir):
    pytest.importorskip("taxonomy.labeler")
    jsonl = write_llava_jsonl(str(workdir / "llava-labeled"))
    seeds = []
    for index in range(3):
        ref = input_ref("sft", f"import:{jsonl}#{index}", import_path=jsonl, format="jsonl",
                        index=index, image_root=None)
        seeds.append(Sample.create("sft", ref["locator"], lineage={
            "input_id": ref["input_id"], "item_id": ref["input_id"], "input_ref": ref,
            "task": "t00000"}))
    receipt, chart, haiku = BuildSftFn(label=True).run_local(seeds)
    assert receipt.meta["taxonomy"]["leaf"].startswith("recognition.ocr_transcription")
    assert chart.meta["taxonomy"]["leaf"].startswith("analysis.data_chart_analysis")
    for sample in (receipt, chart, haiku):
        label = sample.meta["taxonomy"]
        assert label["reason"] and label["version"] >= 1
        assert sample.meta["sft"]["leaf"] == label["leaf"]


@pytest.mark.parametrize("fmt", ["parquet", "hf", "json"])
def test_other_import_formats_read_the_same_records(workdir, fmt):
    jsonl = write_llava_jsonl(str(workdir / f"llava-{fmt}"))
    lines = load_records(jsonl, "jsonl")
    records = [lines[i] for i in range(len(lines))]
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = jsonl.replace(".jsonl", ".parquet")
        pq.write_table(pa.Table.from_pylist(records), path)
    elif fmt == "hf":
        import datasets

        path = str(workdir / f"llava-{fmt}" / "saved")
        datasets.Dataset.from_list(records).save_to_disk(path)
    else:
        path = jsonl.replace(".jsonl", ".json")
        with open(path, "w") as handle:
            json.dump(records, handle)
    assert detect_format(path) == fmt
    base = os.path.dirname(jsonl)
    again = load_records(path, fmt)
    for index in (0, 1, 2):
        assert convert_record(again[index], base) == convert_record(records[index], base)


def test_jsonl_records_are_read_by_offset_and_bad_lines_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "b", "note": "é"}\n{broken\n')
    records = load_records(str(path), "jsonl")
    assert len(records) == 3
    assert records[1] == {"id": "b", "note": "é"}
    with pytest.raises(ValueError, match="record 2 is not valid JSON"):
        records[2]


def test_every_built_answer_matches_its_source(built, source_run, import_run):
    out, _ = built
    sources = {**_by_key(source_run), **_by_key(import_run)}
    samples = list(RunDir(out).iter_samples())
    # The scanned page repeats page2's text: if the seeded pairing puts them together, the
    # text-matching pair has no answer and is dropped (and accounted) instead.
    drops = {o.reason for o in RunDir(out).outcomes()}
    assert drops <= {"pair_texts_not_distinct"}
    assert len(samples) + built[1]["stats"]["dropped"] == built[1]["mixture"]["selected"]
    families = set()
    for sample in samples:
        sft = sample.meta["sft"]
        turns = sft["conversation"]
        refs = sample.lineage["sources"]
        origin = [sources[r["key"]] for r in refs]
        families.add(sft["family"])
        assert count_image_tokens(turns) == len(sample.images)
        assert list(sample.images) == [i for s in origin for i in s.images]
        assert sample.text == render_conversation(turns)
        assert sample.meta["taxonomy"]["leaf"] == sft["leaf"]
        answer = turns[-1]["content"]
        family, computed = sft["family"], sft["computed"]
        if family == "transcription":
            assert answer == source_text(origin[0])[0]
        elif family == "page_markdown":
            assert answer == origin[0].markdown.strip()
        elif family == "ui_to_html":
            assert answer == f"```html\n{origin[0].html.strip()}\n```"
        elif family == "chart_to_code":
            assert answer == f"```python\n{CHART_CODE.strip()}\n```"
        elif family == "chart_qa":
            values = _series_values(origin[0].meta["chart"]["charts"][0]["series"])
            _check_chart_answer(computed, answer, values[computed["series"]])
        elif family == "chart_to_table":
            values = _series_values(origin[0].meta["chart"]["charts"][0]["series"])
            for row in computed["rows"]:
                for name, cell in zip(computed["header"][1:], row[1:]):
                    assert float(cell) == values[name][row[0]]
        elif family == "chart_pair":
            maxima = [max(p["y"] for s in o.meta["chart"]["charts"][0]["series"]
                          for p in s["points"]) for o in origin]
            assert computed["maxima"] == maxima
            assert computed["winner"] == maxima.index(max(maxima))
        elif family == "text_pair":
            texts = [source_text(o)[0] for o in origin]
            assert computed["line"] in texts[computed["image"]]
            assert computed["line"] not in texts[1 - computed["image"]]
        elif family == "passthrough":
            assert turns == origin[0].meta["sft"]["conversation"]
        else:
            assert family == "table_qa"
            assert computed["op"] in ("max", "min", "compare", "difference")
    assert {"transcription", "chart_qa", "passthrough"} <= families
    assert len({s.key for s in samples}) == len(samples)


def test_build_accounting_and_mixture_report(built):
    out, result = built
    assert audit_run(out).ok
    report = json.loads(open(os.path.join(out, REPORT_JSON)).read())
    assert report == json.loads(json.dumps(result["mixture"]))
    assert report["selected"] == sum(report["after_by_bucket"].values())
    assert report["written"] == result["stats"]["written"]
    assert report["selected"] == result["stats"]["written"] + result["stats"]["dropped"]
    assert sum(report["written_by_leaf"].values()) == report["written"]
    assert sum(report["target_by_bucket"].values()) == 30
    # There is one text-only dialogue and a copied dialogue is not repeated: it is taken
    # once and the shortfall reported.
    # The unlabeled imports fall in no bucket: weights renormalise over the 5 buckets with
    # candidates (sum 0.9), e.g. text-only gets 0.1 / 0.9 of 30 = 3 (rounded).
    assert report["not_in_mixture"] == 2 and report["empty_buckets"] == ["recognition"]
    buckets = report["buckets"]
    # One text-only dialogue, and a copied dialogue is not repeated: shortfall reported.
    assert (buckets["text_only"]["target"], buckets["text_only"]["selected"],
            buckets["text_only"]["shortfall"]) == (3, 1, 2)
    # Over-represented transcription candidates are down-sampled, without repeats...
    ocr = buckets["recognition.ocr_transcription"]
    assert (ocr["available"], ocr["target"], ocr["selected"], ocr["repeats"]) == (6, 3, 3, 0)
    # ...under-represented chart candidates repeated (new phrasings) up to max_repeat 3.
    charts = buckets["analysis.data_chart_analysis"]
    assert charts["available"] == 5 and charts["target"] in (13, 14)
    assert charts["selected"] == charts["target"] and charts["repeats"] == charts["target"] - 5
    with open(os.path.join(out, REPORT_PNG), "rb") as handle:
        assert handle.read(4) == b"\x89PNG"


def test_rebuilding_the_same_mix_resumes_without_new_samples(built, source_run, import_run,
                                                              workdir):
    out, _ = built
    before = sorted(RunDir(out).manifest().column("key").to_pylist())
    result = build_sft([source_run, import_run], out, str(workdir / "mix.yaml"), task_size=8)
    assert result["stats"]["written"] == len(before)
    assert sorted(RunDir(out).manifest().column("key").to_pylist()) == before


def test_a_missing_source_becomes_a_retryable_error(source_run):
    ref = input_ref("sft", "gone", run=source_run, shard="fixture-t00000-000000.tar",
                    key="0" * 32, family="transcription", variant=0)
    seed = Sample.create("sft", "gone", lineage={"input_id": ref["input_id"],
                                                 "item_id": ref["input_id"], "input_ref": ref,
                                                 "task": "t00000"})
    [outcome] = BuildSftFn().run_local([seed])
    assert outcome.kind == "error" and outcome.reason == "SourceNotFound"
    assert outcome.input_ref["key"] == "0" * 32


def test_cli_build_json(source_run, workdir, capsys):
    out = str(workdir / "cli-built")
    code = vlforge(["sft", "build", source_run, "--out", out, "--json", "--total", "12"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["stats"]["written"] + printed["stats"]["dropped"] == 12
    assert printed["mixture"]["mixture"] == "default"
    assert set(printed["mixture"]["empty_buckets"]) >= {"text_only"}


def test_cli_reports_a_bad_mixture(source_run, workdir, capsys):
    bad = workdir / "bad.yaml"
    bad.write_text("weights: {recognition.ocr: 1}\n")
    code = vlforge(["sft", "build", source_run, "--out", str(workdir / "x"), "--mixture", str(bad)])
    assert code == 1
    assert "unknown taxonomy node 'recognition.ocr'" in capsys.readouterr().err


def test_cli_import_names_an_unknown_format(workdir, capsys):
    path = workdir / "notes.txt"
    path.write_text("hello\n")
    assert vlforge(["sft", "import", str(path), "--out", str(workdir / "y")]) == 1
    assert "unknown format" in capsys.readouterr().err
