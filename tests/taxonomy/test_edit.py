"""Every edit command keeps comments and order, bumps the version and logs a migration."""

import json
import shutil

import pytest

from pipelines.cli import main as vlforge
from taxonomy import edit
from taxonomy.tree import DEFAULT_PATH, load_taxonomy


@pytest.fixture
def yaml_file(tmp_path):
    path = tmp_path / "taxonomy.yaml"
    shutil.copy(DEFAULT_PATH, path)
    return path


def _comments(path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")]


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = vlforge(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _edit_json(capsys, yaml_file, *argv) -> dict:
    code, out, err = _run(capsys, "taxonomy", *argv, "--file", str(yaml_file), "--json")
    assert code == 0, err
    return json.loads(out)


def test_add_places_node_under_parent_and_logs_it(yaml_file, capsys):
    before = _comments(yaml_file)
    entry = _edit_json(capsys, yaml_file, "add", "recognition.ocr_transcription.math_text",
                       "--name", "Math Text", "--parent", "recognition.ocr_transcription",
                       "--description", "Transcribe mathematical notation.",
                       "--keyword", "math notation", "--example", "Read the formula aloud.")
    assert entry["op"] == "add" and entry["version"] == 2
    taxonomy = load_taxonomy(yaml_file)
    assert taxonomy.version == 2 and taxonomy.migrations[-1]["id"].endswith("math_text")
    assert taxonomy.path("recognition.ocr_transcription.math_text") == [
        "Recognition", "OCR and Transcription", "Math Text"]
    ids = list(taxonomy.nodes)  # placed right after its siblings, before Conversion
    assert ids.index("recognition.ocr_transcription.math_text") < ids.index("conversion")
    assert _comments(yaml_file) == before
    text = yaml_file.read_text()  # and it prints above the next section's header comment
    assert text.index("- Read the formula aloud.") < text.index("Conversion\n- id: conversion")
    assert "parent: null" in yaml_file.read_text()  # nulls stay explicit
    assert "keywords: [math notation]" in yaml_file.read_text()  # flow style like the rest


def test_rename_display_name_keeps_id(yaml_file, capsys):
    entry = _edit_json(capsys, yaml_file, "rename", "safety.prompt_injection", "Injection")
    assert entry["old_name"] == "Prompt Injection" and "new_id" not in entry
    assert load_taxonomy(yaml_file).nodes["safety.prompt_injection"].name == "Injection"


def test_rename_id_deprecates_the_old_id(yaml_file, capsys):
    _edit_json(capsys, yaml_file, "rename", "evaluation.reality", "Authenticity",
               "--new-id", "evaluation.authenticity")
    taxonomy = load_taxonomy(yaml_file)
    assert taxonomy.nodes["evaluation.reality"].deprecated
    assert taxonomy.nodes["evaluation.reality"].name == "Reality"
    assert taxonomy.resolve("evaluation.reality") == "evaluation.authenticity"
    assert taxonomy.path("evaluation.authenticity") == ["Evaluation", "Authenticity"]


def test_rename_inner_node_id_moves_children(yaml_file):
    doc = edit.TaxonomyDocument.open(yaml_file)
    edit.rename_node(doc, "logical_reasoning.other", new_id="logical_reasoning.science")
    taxonomy = load_taxonomy(yaml_file)
    assert taxonomy.nodes["logical_reasoning.other.physics"].parent == "logical_reasoning.science"
    assert taxonomy.is_leaf("logical_reasoning.other") is True  # retired, no active children


def test_move_changes_parent_and_rejects_cycles(yaml_file, capsys):
    entry = _edit_json(capsys, yaml_file, "move", "commonsense_reasoning.humor",
                       "commonsense_reasoning.other")
    assert entry["old_parent"] == "commonsense_reasoning"
    assert load_taxonomy(yaml_file).path("commonsense_reasoning.humor")[1] == \
        "Other Commonsense Reasoning"
    text = yaml_file.read_text()
    code, _, err = _run(capsys, "taxonomy", "move", "analysis",
                        "analysis.data_chart_analysis", "--file", str(yaml_file))
    assert code == 1 and "inside its own subtree" in err
    assert yaml_file.read_text() == text  # a refused edit writes nothing


def test_move_to_root_makes_a_main_category(yaml_file):
    edit.move_node(edit.TaxonomyDocument.open(yaml_file), "commonsense_reasoning.humor", None)
    assert "Humor Reasoning" in [n.name for n in load_taxonomy(yaml_file).roots]


def test_merge_moves_children_examples_and_retires_source(yaml_file, capsys):
    entry = _edit_json(capsys, yaml_file, "merge", "multi_graph.temporal_sequence",
                       "multi_graph.comparison")
    assert entry["moved_children"][0].startswith("multi_graph.temporal_sequence.")
    taxonomy = load_taxonomy(yaml_file)
    assert taxonomy.resolve("multi_graph.temporal_sequence") == "multi_graph.comparison"
    assert taxonomy.nodes["multi_graph.temporal_sequence.event_prediction"].parent == \
        "multi_graph.comparison"
    _edit_json(capsys, yaml_file, "merge", "evaluation.similarity", "evaluation.open_ended")
    merged = load_taxonomy(yaml_file).nodes["evaluation.open_ended"]
    assert "How similar are the two faces in this picture?" in merged.examples
    assert "similarity" in merged.keywords
    assert load_taxonomy(yaml_file).version == 3


def test_deprecate_needs_replacement_and_childless_node(yaml_file, capsys):
    code, _, err = _run(capsys, "taxonomy", "deprecate", "recognition", "--replaced-by",
                        "analysis", "--file", str(yaml_file))
    assert code == 1 and "still has active children" in err and "merge" in err
    entry = _edit_json(capsys, yaml_file, "deprecate", "safety.counterfactual_questioning",
                       "--replaced-by", "safety.suggestive_questioning")
    assert entry["replaced_by"] == "safety.suggestive_questioning"
    taxonomy = load_taxonomy(yaml_file)
    assert "safety.counterfactual_questioning" not in [n.id for n in taxonomy.leaves()]


def test_edit_errors_explain(yaml_file):
    doc = edit.TaxonomyDocument.open(yaml_file)
    with pytest.raises(edit.EditError, match="did you mean 'safety.prompt_injection'"):
        edit.rename_node(doc, "safety.prompt_injectio", "X")
    with pytest.raises(edit.EditError, match="already exists"):
        edit.add_node(doc, "safety", "S", None, "dup")
    with pytest.raises(edit.EditError, match="invalid id"):
        edit.add_node(doc, "Safety Two", "S", None, "x")
    with pytest.raises(edit.EditError, match="description is required"):
        edit.add_node(doc, "safety.new", "S", "safety", " ")
    assert load_taxonomy(yaml_file).version == 1


def test_diff_lists_every_kind_of_change(yaml_file, capsys):
    doc = edit.TaxonomyDocument.open(yaml_file)
    edit.add_node(doc, "safety.jailbreak", "Jailbreak", "safety", "Jailbreak attempts.")
    edit.rename_node(edit.TaxonomyDocument.open(yaml_file), "safety.prompt_injection", "PI")
    edit.move_node(edit.TaxonomyDocument.open(yaml_file), "commonsense_reasoning.humor",
                   "commonsense_reasoning.other")
    edit.merge_nodes(edit.TaxonomyDocument.open(yaml_file), "evaluation.similarity",
                     "evaluation.open_ended")
    code, out, _ = _run(capsys, "taxonomy", "diff", str(DEFAULT_PATH), str(yaml_file), "--json")
    diff = json.loads(out)
    assert diff["from_version"] == 1 and diff["to_version"] == 5
    assert [a["id"] for a in diff["added"]] == ["safety.jailbreak"]
    assert diff["renamed"] == [{"id": "safety.prompt_injection", "from": "Prompt Injection",
                                "to": "PI"}]
    assert diff["moved"][0]["to"] == "commonsense_reasoning.other"
    assert diff["deprecated"] == [{"id": "evaluation.similarity",
                                   "replaced_by": "evaluation.open_ended"}]
    assert [m["op"] for m in diff["migrations"]] == ["add", "rename", "move", "merge"]
    code, out, _ = _run(capsys, "taxonomy", "diff", str(DEFAULT_PATH), str(yaml_file))
    assert "+ safety.jailbreak" in out and "x evaluation.similarity" in out


def test_validate_and_show_commands(yaml_file, capsys):
    code, out, _ = _run(capsys, "taxonomy", "validate", "--file", str(yaml_file))
    assert code == 0 and "8 main categories, 89 leaves" in out
    code, out, _ = _run(capsys, "taxonomy", "show", "recognition.ocr_transcription",
                        "--examples", "--file", str(yaml_file))
    assert "Printed Text  [recognition.ocr_transcription.printed_text]" in out
    assert "e.g. What does the sign say?" in out and "Conversion" not in out
    yaml_file.write_text(yaml_file.read_text().replace("parent: recognition.local_description",
                                                       "parent: recognition.local", 1))
    code, out, _ = _run(capsys, "taxonomy", "validate", "--file", str(yaml_file), "--json")
    report = json.loads(out)
    assert code == 1 and not report["valid"]
    assert report["problems"][0]["line"] > 0
    assert "recognition.local_description" in report["problems"][0]["fix"]
