"""Runs written in code through RunDir's own write path, laid out as the PDF pipeline lays
one out (an input per document, expanded into its pages), for the driver-side reader tests."""

from __future__ import annotations

from pipelines.core.outcome import Outcome
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import input_ref
from pipelines.core.sample import Sample
from tests.pipelines.fixtures import png_bytes


def page(document: str, number: int) -> Sample:
    """A PDF page of `document` (its text long enough to be a corpus document)."""
    return Sample.create("pdf", f"file://{document}.pdf#page={number}", image=png_bytes(
        seed=number), text=f"{document} page {number} " + "words " * 50,
        lineage={"document": document}, meta={"pdf": {"page": number, "kind": "page"}})


def write_run(url: str, inputs: dict[str, list[Sample]]) -> RunDir:
    """A finished run, as the PDF pipeline writes one: an input per entry of `inputs`
    expanded into its samples (each its own item; a derived sample rides with the one
    before it); an input with no samples ends in an error, "dropped" in a drop. Shards
    hold two samples, so a document's pages straddle shards."""
    refs = {input_ref("test", name)["input_id"]: (name, input_ref("test", name))
            for name in inputs}
    run = RunDir(url)
    for task in run.plan("test", [ref for _, ref in refs.values()], {}, task_size=3):
        outcomes = []
        with run.shard_writer("test", task.task_id, max_count=2) as writer:
            for ref in task.input_refs:
                name = refs[ref["input_id"]][0]
                stamp = {"input_id": ref["input_id"], "item_id": ref["item_id"],
                         "task": task.task_id, "input_ref": ref}
                seed = Sample.create("test", name, lineage=stamp)
                samples = inputs[name]
                if not samples:
                    outcomes.append(Outcome.dropped(seed, "Test", "empty") if name == "dropped"
                                    else Outcome.error(seed, "Test", RuntimeError("boom")))
                    continue
                items = [s for s in samples if not s.lineage.get("derived_from")]
                outcomes.append(Outcome.expanded(seed, "Test", len(items)))
                for sample in samples:
                    item = f"{ref['item_id']}/{items.index(sample)}" \
                        if sample in items else sample.lineage["derived_from"]
                    writer.write(sample.with_meta("lineage", {
                        **sample.lineage, **stamp, "item_id": item,
                        "parent_item": ref["item_id"]}))
        run.write_task(task.task_id, writer.shards, writer.rows, outcomes)
    run.finalize()
    return run


def example_run(url: str) -> RunDir:
    """Documents of 1 to 3 pages, a figure derived from a page, a sample of another
    source, an input that fails and one that is dropped."""
    d2_page = page("d2", 0)
    figure = d2_page.derive(d2_page.locator + "&figure=0", image=png_bytes(seed=99),
                            text="a figure caption")
    photo = Sample.create("images", "file://photo.png", image=png_bytes(seed=7), text="x")
    return write_run(url, {
        "d0": [page("d0", 0), page("d0", 1)], "d1": [page("d1", n) for n in (2, 0, 1)],
        "d2": [d2_page, figure, page("d2", 1)], "d3": [page("d3", 0)],
        "d4": [page("d4", 0)], "photo": [photo], "broken": [], "dropped": []})
