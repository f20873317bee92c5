"""Editing the taxonomy then `vlforge taxonomy migrate RUN` relabels without touching shards."""

import hashlib
import json
import shutil

import pytest

from pipelines.cli import main as vlforge
from pipelines.core.run_dir import RunDir
from taxonomy import edit
from pipelines.label.stage import LabelTaxonomyFn
from pipelines.label.migrate import LABELS_FILE, apply_current_label, current_labels, migrate_run
from taxonomy.tree import DEFAULT_PATH, load_taxonomy

from .conftest import content_samples, write_fixture_run

GRAPH = "analysis.data_chart_analysis.graph_interpretation"
TABLE = "analysis.data_chart_analysis.table_interpretation"
UI = "conversion.image_to_code.ui_to_code"


@pytest.fixture
def labeled_run(tmp_path):
    """A finished run whose samples were labeled with taxonomy v1 by the real stage."""
    samples = LabelTaxonomyFn().run_local(content_samples())
    return write_fixture_run(str(tmp_path / "run"), samples)


@pytest.fixture
def edited_taxonomy(tmp_path):
    path = tmp_path / "taxonomy.yaml"
    shutil.copy(DEFAULT_PATH, path)
    edit.merge_nodes(edit.TaxonomyDocument.open(path), GRAPH, TABLE)               # v2
    edit.rename_node(edit.TaxonomyDocument.open(path), UI, "Screenshot to Code",
                     new_id="conversion.image_to_code.screenshot_to_code")         # v3
    edit.move_node(edit.TaxonomyDocument.open(path), "recognition.ocr_transcription",
                   "conversion")                                                   # v4
    return path


def _shard_hashes(run: RunDir) -> dict[str, str]:
    return {url: hashlib.sha256(open(url, "rb").read()).hexdigest() for url in run.shard_urls()}


def test_migrate_round_trip(labeled_run, edited_taxonomy, capsys):
    shards = _shard_hashes(labeled_run)
    before = {r["key"]: r["taxonomy_leaf"] for r in labeled_run.manifest().to_pylist()}
    assert vlforge(["taxonomy", "migrate", labeled_run.url, "--file", str(edited_taxonomy),
                    "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["to_version"] == 4 and report["from_versions"] == {"1": 8}
    assert report["changes"] == {f"{GRAPH} -> {TABLE}": 2,
                                 f"{UI} -> conversion.image_to_code.screenshot_to_code": 1}

    rows = {r["key"]: r for r in labeled_run.manifest().to_pylist()}
    for key, old in before.items():
        if old == "unlabeled":
            assert rows[key]["taxonomy_leaf"] == "unlabeled"
            continue
        assert rows[key]["taxonomy_version"] == "4"
    assert _shard_hashes(labeled_run) == shards  # no shard rewritten
    stats = labeled_run.read_json("stats.json")
    assert stats["samples_by_taxonomy_leaf"][TABLE] == 3 and GRAPH not in \
        stats["samples_by_taxonomy_leaf"]
    assert labeled_run.read_json("run.json")["taxonomy_migrations"][0]["to_version"] == 4
    assert labeled_run.complete

    # The old label is kept: in the sidecar's history, and in lineage once applied.
    labels = current_labels(labeled_run)
    chart_key = content_samples()[2].key
    history = json.loads(labels[chart_key]["history"])
    assert history[0]["leaf"] == GRAPH and history[0]["version"] == "1"
    assert history[0]["why"] == f"merge v2: {GRAPH} -> {TABLE}"
    page_key = content_samples()[0].key  # moved, not renamed: same leaf, new path
    assert json.loads(labels[page_key]["path"]) == ["Conversion", "OCR and Transcription",
                                                    "Printed Text"]
    migrated = {s.key: apply_current_label(s, labels) for s in labeled_run.iter_samples()}
    chart = migrated[chart_key]
    assert chart.meta["taxonomy"]["leaf"] == TABLE and chart.meta["taxonomy"]["version"] == 4
    assert chart.lineage["taxonomy_history"][-1]["leaf"] == GRAPH

    # Round trip: labeling afresh with the new taxonomy agrees with the migrated labels.
    fresh = LabelTaxonomyFn(taxonomy_file=str(edited_taxonomy)).run_local(content_samples())
    assert {s.key: s.meta["taxonomy"]["leaf"] for s in fresh} == \
        {k: s.meta["taxonomy"]["leaf"] for k, s in migrated.items()}

    # Migrating again changes nothing; a retry's re-merge keeps the migrated labels.
    again = migrate_run(labeled_run.url, load_taxonomy(edited_taxonomy))
    assert again["relabeled"] == 0
    labeled_run.finalize()
    assert {r["taxonomy_leaf"] for r in labeled_run.manifest().to_pylist()} >= {TABLE}


def test_migrate_dry_run_and_unknown_leaves(labeled_run, edited_taxonomy, tmp_path):
    report = migrate_run(labeled_run.url, load_taxonomy(edited_taxonomy), dry_run=True)
    assert report["relabeled"] == 3 and not labeled_run.exists(LABELS_FILE)
    foreign = [s.with_meta("taxonomy", {"leaf": "someone.elses.leaf", "version": 9})
               for s in content_samples()[:1]]
    run = write_fixture_run(str(tmp_path / "foreign"), foreign)
    report = migrate_run(run.url, load_taxonomy(edited_taxonomy))
    assert report["unknown_leaves"] == {"someone.elses.leaf": 1}
    assert run.manifest().column("taxonomy_leaf").to_pylist() == ["someone.elses.leaf"]


def test_migrate_refuses_an_unfinished_run(tmp_path):
    with pytest.raises(Exception, match="no such run directory"):
        migrate_run(str(tmp_path / "nothing"))
