"""A run that does not account for every input never gets `_SUCCESS`, on any runner."""

from __future__ import annotations

import apache_beam as beam
import pytest

from pipelines.core import runner
from pipelines.core.audit import audit_run
from pipelines.core.completion import RunIncompleteError
from pipelines.core.run_dir import RunDir
from pipelines.core.stage import StageFn
from pipelines.images.pipeline import LoadImagesFn, image_refs
from tests.pipelines.fixtures import write_images


class LoseOddImagesFn(StageFn):
    """Swallows every other sample, as a runner that loses records would."""

    stage = "LoseOddImages"

    def process_sample(self, sample):
        if int(sample.meta["image"]["path"][-6:-4]) % 2 == 0:
            yield sample


def test_a_lossy_run_gets_no_success_and_is_reopened(tmp_path, monkeypatch):
    refs = image_refs(write_images(str(tmp_path / "in"), 6))
    out = str(tmp_path / "run")
    monkeypatch.setattr(runner, "load_stage_builder",
                        lambda name: lambda config: [LoadImagesFn(), LoseOddImagesFn()])
    with pytest.raises(RunIncompleteError, match="does not account for every input"):
        runner.run_pipeline("images", refs, {}, out, task_size=2)
    run = RunDir(out)
    assert not run.complete
    problems = run.stats()["accounting_problems"]
    assert problems["counts"]["unaccounted"] == 3 and problems["tasks"]
    # the tasks that lost items are reopened for the re-run, the others stay done
    assert run.done_tasks().isdisjoint(problems["tasks"])
    assert not audit_run(out).ok

    monkeypatch.undo()  # a re-run on a sound engine completes the same directory
    stats = runner.run_pipeline("images", refs, {}, out, task_size=2)
    assert RunDir(out).complete and stats["written"] == 6
    assert audit_run(out).ok


def test_tasks_without_records_still_finish(tmp_path, monkeypatch):
    """A task whose every record a stage drops silently is still closed by its end marker,
    and then caught by the accounting check rather than by a missing done marker."""
    refs = image_refs(write_images(str(tmp_path / "in"), 2))

    class LoseAllFn(StageFn):
        stage = "LoseAll"

        def process_sample(self, sample):
            return ()

    monkeypatch.setattr(runner, "load_stage_builder",
                        lambda name: lambda config: [LoadImagesFn(), LoseAllFn()])
    with pytest.raises(RunIncompleteError):
        runner.run_pipeline("images", refs, {}, str(tmp_path / "run"), task_size=1)
    stats = RunDir(str(tmp_path / "run")).stats()
    assert stats["tasks"] == {"done": 2, "total": 2}
    assert stats["accounting_problems"]["tasks"] == ["t00000", "t00001"]


@pytest.mark.slow
def test_dask_runner_drops_what_finish_bundle_emits(dask_cluster, tmp_path):
    """Why stages release held records at the task end marker, not in finish_bundle:
    Beam's Dask runner collects a partition's outputs before it calls finish_bundle."""
    from pipelines.core.engines import beam_options

    class EmitInFinishBundleFn(beam.DoFn):  # defined here: workers cannot import tests/
        def start_bundle(self):
            self.held = []

        def process(self, value):
            self.held.append(value)

        def finish_bundle(self):
            from apache_beam.transforms.window import GlobalWindows

            for value in self.held:
                yield GlobalWindows.windowed_value(value)

    out = tmp_path / "held"
    options = beam_options(["--runner=DaskRunner", f"--dask_client_address={dask_cluster}",
                            "--dask_npartitions=2"])
    with beam.Pipeline(options=options) as p:
        _ = (p | beam.Create(list(range(6))) | beam.ParDo(EmitInFinishBundleFn())
             | beam.Map(lambda v: (out.mkdir(exist_ok=True), (out / f"{v}").write_text("x"))))
    assert not out.exists() or not list(out.iterdir())
    # the same pipeline on the DirectRunner delivers all six
    with beam.Pipeline() as p:
        _ = (p | beam.Create(list(range(6))) | beam.ParDo(EmitInFinishBundleFn())
             | beam.Map(lambda v: (out.mkdir(exist_ok=True), (out / f"{v}").write_text("x"))))
    assert len(list(out.iterdir())) == 6
