"""``overlap_tasks`` (pdf, web) is decided for the runner at every run and never recorded:
overlapping stages emit a bundle's last records from ``finish_bundle``, which Beam's Dask
runner discards, so a run started on the DirectRunner and retried on Dask must not
overlap there."""

import dataclasses
import logging

import pytest

from pipelines.core.retry import recorded_settings
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import for_runner, run_pipeline
from pipelines.images.config import ImagesConfig
from pipelines.pdf.config import PdfConfig
from pipelines.pdf.pipeline import pdf_refs
from pipelines.web.config import WebConfig
from tests.pipelines.pdf_fixtures import write_corpus

DIRECT = ["--runner=DirectRunner"]
DIRECT_MP = ["--runner=DirectRunner", "--direct_num_workers=2",
             "--direct_running_mode=multi_processing"]
DASK = ["--runner=DaskRunner"]
PORTABLE = ["--runner", "PortableRunner"]


@pytest.mark.parametrize("config_type", [PdfConfig, WebConfig])
def test_overlap_follows_the_runner(config_type, caplog):
    config = config_type()
    assert config.overlap_tasks is None  # undecided until a runner is known
    assert for_runner(config, DIRECT).overlap_tasks is True
    assert for_runner(config, []).overlap_tasks is True  # no --runner: the DirectRunner
    assert for_runner(config, DIRECT_MP).overlap_tasks is True
    assert for_runner(config, DASK).overlap_tasks is False
    assert for_runner(config, PORTABLE).overlap_tasks is False
    # asked for on a runner that drops bundle-end records: off, and said
    asked = dataclasses.replace(config, overlap_tasks=True)
    with caplog.at_level(logging.WARNING, logger="pipelines.core.runner"):
        assert for_runner(asked, DASK).overlap_tasks is False
    assert "overlap_tasks is off" in caplog.text
    assert for_runner(asked, DIRECT).overlap_tasks is True
    assert for_runner(dataclasses.replace(config, overlap_tasks=False), DIRECT) \
        .overlap_tasks is False


def test_a_config_without_the_setting_passes_unchanged():
    config = ImagesConfig()
    assert for_runner(config, DASK) is config


def test_a_run_records_overlap_undecided_so_a_retry_decides_for_its_runner(tmp_path):
    corpus = write_corpus(str(tmp_path / "pdfs"))
    paths = [corpus["text_table.pdf"], corpus["chart.pdf"]]
    out = str(tmp_path / "run")
    stats = run_pipeline("pdf", pdf_refs(paths),
                         {"ocr": None, "charts": False, "label": False, "renderers": 2},
                         out, beam_args=DIRECT, task_size=1)
    assert stats["written"] > 0
    assert RunDir(out).info()["config"]["overlap_tasks"] is None
    _, recorded, _ = recorded_settings(RunDir(out))
    assert for_runner(recorded, DIRECT).overlap_tasks is True
    assert for_runner(recorded, DASK).overlap_tasks is False
