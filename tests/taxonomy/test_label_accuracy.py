"""Labeling accuracy on held-out prompts, per main category (floors, not timings)."""

from collections import Counter


def test_accuracy_per_main_category(labeler, labeled_prompts):
    labels = labeler.label_prompts([r["text"] for r in labeled_prompts],
                                   [r.get("images", 1) for r in labeled_prompts])
    total, main_ok, leaf_ok = Counter(), Counter(), Counter()
    for row, label in zip(labeled_prompts, labels):
        main = row["leaf"].split(".")[0]
        total[main] += 1
        main_ok[main] += label.leaf.split(".")[0] == main
        leaf_ok[main] += label.leaf == row["leaf"]
    report = {m: (main_ok[m] / total[m], leaf_ok[m] / total[m]) for m in total}
    print("main-category / leaf accuracy:", report)
    assert len(total) == 8 and min(total.values()) >= 5  # every main category, >= 5 each
    for main, (main_acc, leaf_acc) in report.items():
        assert main_acc >= 0.6, (main, report)
    assert sum(main_ok.values()) / len(labels) >= 0.85
    assert sum(leaf_ok.values()) / len(labels) >= 0.75
