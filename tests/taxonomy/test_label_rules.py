"""Task-derived rules and the labeler's decisions on pipeline samples."""

from pipelines.core.sample import Sample
from pipelines.label.rules import prompt_of, task_rule
from pipelines.label.samples import label_sample, label_samples
from pipelines.label.stage import LabelTaxonomyFn, with_label

from .conftest import EXPECTED_LEAVES, content_samples


def test_rules_fire_on_what_pipelines_produce():
    hits = [task_rule(s) for s in content_samples()]
    assert [h.rule if h else None for h in hits] == [
        "pdf_text_layer", "ocr_transcription", "chart_meta", "pdf_table", "web_screenshot_html",
        None, None, "sft_template", None, None]


def test_prompt_of_strips_placeholders_and_counts_images():
    samples = content_samples()
    assert prompt_of(samples[5]) == ("Which year has the tallest bar in the bar chart?", 1)
    assert prompt_of(samples[6])[1] == 2
    assert prompt_of(samples[0]) is None


def test_labeler_labels_every_kind(labeler):
    labels = label_samples(labeler, content_samples())
    assert [label.leaf for label in labels] == EXPECTED_LEAVES
    page, _, chart, *_ = labels
    assert page.path == ("Recognition", "OCR and Transcription", "Printed Text")
    assert page.method == "rule:pdf_text_layer" and page.version == 1
    assert "text layer" in page.reason
    assert labels[5].method == "embedding" and "graph_interpretation" in labels[5].reason
    assert "2 images" in labels[6].reason
    assert labels[8].method == "unlabeled" and "text-only" in labels[8].reason


def test_rule_target_follows_replaced_by(labeler):
    from dataclasses import replace

    from taxonomy.labeler import Labeler

    taxonomy = labeler.taxonomy
    nodes = dict(taxonomy.nodes)
    old = nodes["analysis.data_chart_analysis.graph_interpretation"]
    nodes[old.id] = replace(old, deprecated=True,
                            replaced_by="analysis.data_chart_analysis.table_interpretation")
    moved = Labeler(replace(taxonomy, nodes=nodes))
    moved.open(model=labeler.model)
    label = label_sample(moved, content_samples()[2])
    assert label.leaf == "analysis.data_chart_analysis.table_interpretation"
    assert "is now" in label.reason


def test_threshold_makes_weak_prompts_unlabeled(labeler):
    from taxonomy.labeler import Labeler

    strict = Labeler(labeler.taxonomy, threshold=0.99).open(model=labeler.model)
    label = strict.label_prompt("What is going on with the lighting here?")
    assert label.leaf == "unlabeled" and "< threshold 0.99" in label.reason
    assert strict.counts["unlabeled"] == 1
    assert labeler.label_prompt("zxqv blorp").leaf == "unlabeled"


def test_stage_batches_and_keeps_old_label_in_lineage():
    samples = content_samples()
    old = samples[0].with_meta("taxonomy", {"leaf": "recognition.global_description.theme",
                                            "version": 0, "confidence": 0.5, "reason": "old"})
    samples = [old] + samples[1:]
    out = LabelTaxonomyFn(batch_size=3).run_local(samples)
    assert len(out) == len(samples) and all(isinstance(s, Sample) for s in out)
    by_key = {s.key: s for s in out}
    assert [by_key[s.key].meta["taxonomy"]["leaf"] for s in samples] == EXPECTED_LEAVES
    relabeled = by_key[old.key]
    assert relabeled.lineage["taxonomy_history"] == [
        {"leaf": "recognition.global_description.theme", "version": 0, "confidence": 0.5,
         "reason": "old"}]
    assert set(relabeled.meta["taxonomy"]) >= {"leaf", "path", "confidence", "reason", "version"}


def test_with_label_does_not_stack_history_for_the_same_label():
    sample = with_label(content_samples()[0], {"leaf": "a", "version": 1})
    again = with_label(sample, {"leaf": "a", "version": 1})
    assert "taxonomy_history" not in again.lineage
