"""The label stage loads its embedding model only when a prompt needs classifying."""

from pipelines.label.rules import prompt_of
from pipelines.label.stage import LabelTaxonomyFn

from .conftest import EXPECTED_LEAVES, content_samples


def _label(stage: LabelTaxonomyFn, samples):
    stage.start_bundle()
    out = [o for s in samples for o in stage.process(s)]
    return out + [wv.value for wv in stage.finish_bundle()]


def test_rule_labeled_batches_never_load_the_model():
    # Web pages, PDF pages and tiles carry no prompt: task rules label them, and loading
    # the model for nothing cost ~11 CPU-s per worker (a quarter of a short crawl's CPU).
    samples = content_samples()
    ruled = [i for i, s in enumerate(samples) if prompt_of(s) is None]
    stage = LabelTaxonomyFn(batch_size=4)
    stage.setup()
    try:
        out = _label(stage, [samples[i] for i in ruled])
        assert stage.labeler.model is None
        assert [s.meta["taxonomy"]["leaf"] for s in out] == [EXPECTED_LEAVES[i] for i in ruled]
        # The first prompt loads it, and the prompt is classified by it.
        asked = next(i for i, s in enumerate(samples) if prompt_of(s) is not None)
        (labeled,) = _label(stage, [samples[asked]])
        assert stage.labeler.model is not None
        assert labeled.meta["taxonomy"]["leaf"] == EXPECTED_LEAVES[asked]
    finally:
        stage.teardown()


def test_rule_labeled_samples_pass_at_once_in_order():
    # Held back to their task's end, rule-labeled web pages held the sink's writes of the
    # whole task for the end too: a crawl worker then sat 1-3 s with no page in flight
    # after every task. A sample behind one that waits for the classifier waits too, so
    # the order stays as it came.
    samples = content_samples()
    ruled = [s for s in samples if prompt_of(s) is None]
    asked = next(s for s in samples if prompt_of(s) is not None)
    stage = LabelTaxonomyFn(batch_size=64)
    stage.setup()
    try:
        stage.start_bundle()
        for sample in ruled:
            (out,) = stage.process(sample)
            assert out.key == sample.key and out.meta["taxonomy"]["leaf"]
        assert list(stage.process(asked)) == [] and list(stage.process(ruled[0])) == []
        flushed = [wv.value for wv in stage.finish_bundle()]
        assert [s.key for s in flushed] == [asked.key, ruled[0].key]
    finally:
        stage.teardown()
