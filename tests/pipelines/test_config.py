"""Typed pipeline settings: one error listing every problem, recorded in run.json, read
back by `retry`; CLI flag defaults come from the dataclasses."""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.cli import main as vlforge
from pipelines.core.config import CLI_POST_STAGES, ConfigError, PostStageConfig, RunSettings
from pipelines.core.run_dir import RunDir
from pipelines.core.runner import pipeline_config, recorded_settings, retry, run_pipeline
from pipelines.images.config import ImagesConfig
from pipelines.images.pipeline import image_refs
from pipelines.label.config import LabelConfig
from pipelines.pdf.config import PdfConfig
from pipelines.sft.config import SftConfig
from pipelines.web.config import WebConfig
from tests.pipelines.fixtures import write_images

FAMILIES = [ImagesConfig, PdfConfig, WebConfig, LabelConfig, SftConfig, RunSettings,
            PostStageConfig]


@pytest.mark.parametrize("cls", FAMILIES)
def test_defaults_are_valid_and_round_trip_through_a_dict(cls):
    config = cls().validate()
    assert cls.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("cls", FAMILIES)
def test_every_field_has_a_docstring(cls):
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    documented = {node.target.id for node, after in zip(body, body[1:])
                  if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)
                  and isinstance(after.value, ast.Constant)}
    own = {f.name for f in dataclasses.fields(cls)} - {
        f.name for base in cls.__mro__[1:] if dataclasses.is_dataclass(base)
        for f in dataclasses.fields(base)}
    assert own <= documented, own - documented


def test_one_error_lists_every_problem():
    with pytest.raises(ConfigError) as caught:
        PdfConfig.from_dict({"page_timeout": 0, "render": {"target": 0, "bogus": 1},
                             "ocr_policy": "sometimes", "nope": 1, "max_memory_mb": "4g",
                             "label_threshold": 3})
    problems = caught.value.problems
    assert len(problems) == 7, problems
    for expected in ("unknown setting(s) nope", "render.bogus", "max_memory_mb must be an "
                     "integer", "ocr_policy must be one of", "label_threshold must be within",
                     "page_timeout must be > 0", "render.target must be >= 1"):
        assert sum(expected in p for p in problems) == 1, expected
    assert all(p in str(caught.value) for p in problems)


def test_web_addresses_are_checked():
    config = WebConfig(render=WebConfig().render.__class__(allow_private=["10.0.0.0/8", "x"]))
    assert [p for p in config.check() if "not an IP address" in p] == [
        "render.allow_private: 'x' is not an IP address or network (--allow-address)"]


def test_run_pipeline_refuses_bad_settings_before_touching_the_run(tmp_path):
    out = tmp_path / "run"
    refs = image_refs(write_images(str(tmp_path / "in"), 2))
    with pytest.raises(ConfigError) as caught:
        run_pipeline("images", refs, {"min_side": 0, "ocr_policy": "never"}, str(out),
                     task_size=0)
    assert len(caught.value.problems) == 3  # min_side, ocr_policy, task_size: all at once
    assert any("task_size" in p for p in caught.value.problems)
    assert not out.exists()
    with pytest.raises(ConfigError, match="takes a ImagesConfig"):
        pipeline_config("images", LabelConfig())


def test_run_json_records_every_setting_and_retry_uses_them(tmp_path):
    paths = write_images(str(tmp_path / "in"), 3)
    later = tmp_path / "in" / "later.png"
    later.write_bytes(b"not yet an image")
    out = str(tmp_path / "run")
    first = run_pipeline("images", image_refs(sorted(paths + [str(later)])),
                         ImagesConfig(min_side=16), out, task_size=2, max_count=5)
    assert first["errors"] == 1
    info = RunDir(out).info()
    assert info["config"] == ImagesConfig(min_side=16).to_dict()  # defaults filled in
    assert info["run"] == RunSettings(task_size=2, max_count=5).to_dict()
    pipeline, config, settings = recorded_settings(RunDir(out))
    assert (pipeline, config, settings) == ("images", ImagesConfig(min_side=16),
                                            RunSettings(task_size=2, max_count=5))

    later.write_bytes(open(paths[0], "rb").read())  # the cause went away
    # An operator raises min_side in run.json before retrying: the retry must use it (the
    # repaired 64 px image is then too small), not the pipeline's default of 16.
    info["config"]["min_side"] = 1000
    RunDir(out).write_json(info, "run.json")
    second = retry(out)
    assert (second["errors"], second["dropped_by_reason"]) == (0, {"LoadImages:too_small": 1})


def test_retry_reads_run_json_from_before_typed_configs(tmp_path):
    out = str(tmp_path / "run")
    run_pipeline("images", image_refs(write_images(str(tmp_path / "in"), 1)), {}, out)
    run = RunDir(out)
    info = run.info()
    del info["run"]
    info["task_size"] = 3
    info["config"] = {"min_side": 20, "shard_bounds": {"max_bytes": 1000, "max_count": 7}}
    run.write_json(info, "run.json")
    _, config, settings = recorded_settings(run)
    assert config == ImagesConfig(min_side=20)
    assert settings == RunSettings(task_size=3, max_bytes=1000, max_count=7)
    legacy_sft = SftConfig.from_dict({"import": "f.jsonl", "label": False})
    assert legacy_sft.import_file == "f.jsonl"
    assert PdfConfig.from_dict({"pymupdf_version": "1.26"}) == PdfConfig()


def test_cli_reports_every_bad_flag_at_once(tmp_path, capsys):
    write_images(str(tmp_path / "in"), 1)
    out = tmp_path / "run"
    code = vlforge(["images", str(tmp_path / "in"), "--out", str(out), "--task-size", "0",
                    "--min-side", "0", "--label-threshold", "2", "--shard-max-count", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "4 problem(s)" in err
    for name in ("task_size", "min_side", "label_threshold", "max_count"):
        assert name in err
    assert not out.exists()


def test_cli_defaults_are_the_dataclass_defaults():
    import argparse

    from pipelines.images.commands import add_images_arguments, images_config
    from pipelines.pdf.commands import add_pdf_arguments, config_from_args
    from pipelines.web.commands import add_crawl_arguments, crawl_config

    for add, build, cls in ((add_images_arguments, images_config, ImagesConfig),
                            (add_pdf_arguments, config_from_args, PdfConfig),
                            (add_crawl_arguments, crawl_config, WebConfig)):
        parser = argparse.ArgumentParser()
        add(parser)
        args = parser.parse_args(["x", "--out", "o"])
        assert build(args) == dataclasses.replace(
            cls(), **{f.name: getattr(CLI_POST_STAGES, f.name)
                      for f in dataclasses.fields(CLI_POST_STAGES)})
