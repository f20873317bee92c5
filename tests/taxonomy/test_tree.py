"""The shipped taxonomy is complete and valid; broken files give every problem with a line."""

import textwrap

import pytest

from taxonomy.tree import TaxonomyError, load_taxonomy, taxonomy_from_text

PAPER_MAIN = ["Recognition", "Conversion", "Analysis", "Commonsense Reasoning",
              "Logical Reasoning", "Evaluation", "Multi-graph", "Safety"]


def test_shipped_taxonomy_has_the_whole_paper_tree():
    taxonomy = load_taxonomy()
    assert [n.name for n in taxonomy.roots] == PAPER_MAIN
    # every tertiary category of Table 3, plus the secondaries that have none (Humor, ...)
    assert len(taxonomy.leaves()) == 89
    assert taxonomy.path("recognition.ocr_transcription.printed_text") == [
        "Recognition", "OCR and Transcription", "Printed Text"]
    assert taxonomy.path("analysis.data_chart_analysis.graph_interpretation")[-1] == \
        "Graph Interpretation"
    assert taxonomy.path("conversion.image_to_code.ui_to_code")[-1] == "UI to Code"
    assert taxonomy.is_leaf("commonsense_reasoning.humor")  # a secondary with no tertiary
    for leaf in taxonomy.leaves():
        assert leaf.description, leaf.id
        assert len(leaf.examples) >= 2, leaf.id
        assert leaf.id.startswith(taxonomy.main_category(leaf.id))


def _load(body: str):
    return taxonomy_from_text(textwrap.dedent(body), "t.yaml")


def _problems(body: str) -> list:
    with pytest.raises(TaxonomyError) as info:
        _load(body)
    return info.value.problems


HEAD = """\
version: 1
nodes:
- id: a
  name: A
  parent: null
  description: root
"""


def test_duplicate_id_names_both_lines():
    problems = _problems(HEAD + "- id: a\n  name: A2\n  parent: null\n  description: again\n")
    assert problems[0].line == 7 and "duplicate id 'a'" in problems[0].message
    assert "first on line 3" in problems[0].message and "merge" in problems[0].fix


def test_missing_parent_suggests_the_close_id():
    problems = _problems(HEAD + "- id: a.b\n  name: B\n  parent: aa\n  description: x\n")
    assert problems[0].line == 7
    assert "parent 'aa' does not exist" in problems[0].message
    assert "did you mean 'a'" in problems[0].fix


def test_cycle_is_reported():
    body = HEAD + ("- id: b\n  name: B\n  parent: c\n  description: x\n"
                   "- id: c\n  name: C\n  parent: b\n  description: y\n")
    problems = _problems(body)
    assert any("parent cycle: b -> c" in p.message for p in problems)


def test_deprecated_node_needs_a_replacement_and_no_active_children():
    body = HEAD + ("- id: a.b\n  name: B\n  parent: a\n  description: x\n  deprecated: true\n"
                   "- id: a.b.c\n  name: C\n  parent: a.b\n  description: y\n")
    messages = [p.message for p in _problems(body)]
    assert any("has no replaced_by" in m for m in messages)
    assert any("still has active children (a.b.c)" in m for m in messages)
    assert any("a.b.c is unreachable" in m for m in messages)


def test_replaced_by_must_exist_and_resolve():
    body = HEAD + ("- id: a.b\n  name: B\n  parent: a\n  description: x\n  deprecated: true\n"
                   "  replaced_by: a.zz\n")
    assert "replaced_by 'a.zz' does not exist" in _problems(body)[0].message
    ok = _load(HEAD + "- id: a.b\n  name: B\n  parent: a\n  description: x\n  deprecated: true\n"
                      "  replaced_by: a\n")
    assert ok.resolve("a.b") == "a" and ok.resolve("nope") is None


def test_yaml_syntax_error_points_at_the_broken_line():
    problems = _problems(HEAD + '- id: b\n  name: "B\n  parent: null\n')
    assert problems[0].line == 8 and "YAML syntax error" in problems[0].message
    assert "quot" in problems[0].fix


def test_unknown_field_bad_version_and_bad_lists():
    body = HEAD.replace("version: 1", "version: one") + (
        "- id: b\n  name: B\n  parent: null\n  descripton: x\n  keywords: 5\n")
    problems = _problems(body)
    text = "\n".join(str(p) for p in problems)
    assert "line 1: 'version' must be a positive integer" in text
    assert "line 10: unknown node field 'descripton' (fix: did you mean 'description'?)" in text
    assert "'keywords' must be a list of strings" in text
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_error_message_lists_file_and_lines():
    with pytest.raises(TaxonomyError) as info:
        _load(HEAD + "- id: Bad Id\n  name: B\n  parent: a\n")
    assert "t.yaml:7: invalid or missing id 'Bad Id'" in str(info.value)
