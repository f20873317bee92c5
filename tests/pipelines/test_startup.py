"""What a `vlforge` process imports before it does any work (issues 16 and 17).

Each check runs a fresh interpreter (imports are per process) and reads its sys.modules.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.pipelines.fixtures import write_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAVY = ("apache_beam", "torch", "playwright", "transformers")
# what Beam imports for Google Cloud IO and Dataflow when they are installed
LEFT_OUT = ("google.cloud.pubsub", "google.cloud.storage", "google.cloud.dataflow",
            "apache_beam.io.gcp.bigquery", "pymongo")


def loaded_after(code: str, watched=HEAVY + LEFT_OUT, expect_status: int = 0) -> dict:
    """Run `code` in a fresh interpreter; which of `watched` it had imported at its end
    (plus whatever the code put in the dict ``extra``, whether the collector was frozen
    and on, and the exit status). Reported from an ``atexit`` handler, after the
    command's own."""
    script = textwrap.dedent(f"""
        import atexit, contextlib, gc, io, json, sys
        extra = {{}}
        def report():
            sys.__stdout__.write(json.dumps({{
                "modules": {{m: m in sys.modules for m in {list(watched)!r}}},
                "gc_frozen": gc.get_freeze_count() > 0, "gc_on": gc.isenabled(),
                "extra": extra}}) + "\\n")
            sys.__stdout__.flush()
        atexit.register(report)
        with contextlib.redirect_stdout(io.StringIO()):
    """) + textwrap.indent(textwrap.dedent(code), "    ")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=300, check=False)
    assert result.returncode == expect_status, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"status": result.returncode}


def cli(argv: list[str]) -> str:
    """Code that runs ``vlforge ARGV`` as the `vlforge` script does (main() reads sys.argv,
    and the process ends with its status)."""
    return f"""
from pipelines.cli import main
sys.argv = ["vlforge", *{argv!r}]
sys.exit(main())
"""


@pytest.mark.parametrize("argv", [["--help"], ["audit", "--help"], ["shards", "--help"],
                                  ["retry", "--help"], ["taxonomy", "--help"],
                                  ["model", "--help"], ["report", "--help"],
                                  ["pdf", "--help"]])
def test_help_and_non_beam_commands_import_no_heavy_library(argv):
    found = loaded_after(cli(argv))
    assert not any(found["modules"][m] for m in HEAVY), found["modules"]


def test_planning_modules_do_not_import_beam():
    # the runner, the engines' flag checks and the settings import Beam only to run tasks
    found = loaded_after("""
        from pipelines.core import runner, engines, config, retry
        from pipelines.pdf.config import default_renderers
        extra["renderers"] = default_renderers(["--runner=DirectRunner"])
    """)
    assert not found["modules"]["apache_beam"]
    assert found["extra"]["renderers"] >= 1


def test_a_pipeline_command_imports_beam_without_google_cloud():
    found = loaded_after(cli(["images", "--help"]))
    assert found["modules"]["apache_beam"]
    assert not any(found["modules"][m] for m in LEFT_OUT), found["modules"]


@pytest.mark.skipif(not importlib.util.find_spec("google.cloud.storage"),
                    reason="the GCS client is not installed: Beam never imports it here")
def test_another_runner_gets_the_full_import():
    found = loaded_after(cli(["images", "--help", "--runner=DataflowRunner"]))
    assert found["modules"]["apache_beam"]
    assert found["modules"]["google.cloud.storage"]  # Beam's own import, as without vlforge


def test_lean_import_only_where_nothing_needs_what_it_leaves_out():
    from pipelines.core.beam_import import lean_import_applies

    assert lean_import_applies([])
    assert lean_import_applies(["in.pdf", "--out", "run", "--runner=DirectRunner",
                                "--direct_num_workers=2",
                                "--direct_running_mode=multi_processing"])
    assert not lean_import_applies(["--runner=DaskRunner"])
    assert not lean_import_applies(["--runner", "DataflowRunner"])
    assert not lean_import_applies(["gs://bucket/in", "--out", "run"])
    assert not lean_import_applies(["--out=gs://bucket/run"])


@pytest.mark.skipif(not importlib.util.find_spec("google.cloud.storage"),
                    reason="the GCS client is not installed: Beam never imports it here")
def test_what_a_lean_import_left_out_still_imports_and_completes():
    found = loaded_after("""
        from pipelines.core.beam_import import complete_beam_import, lean_beam_import
        extra["arranged"] = lean_beam_import([])
        import apache_beam
        extra["lean"] = "google.cloud.storage" in sys.modules
        extra["bigquery_before"] = hasattr(apache_beam.io, "WriteToBigQuery")
        # the skip lasted one import: left-out modules import normally
        from google.cloud import storage
        extra["completed"] = complete_beam_import()
        extra["bigquery_after"] = hasattr(apache_beam.io, "WriteToBigQuery")
        from apache_beam.io.filesystems import FileSystems
        extra["gs"] = type(FileSystems.get_filesystem("gs://bucket/x")).__name__
        from apache_beam.runners.dataflow import dataflow_runner
        extra["dataflow"] = dataflow_runner.dataflow_api is not None
        extra["again"] = complete_beam_import()
    """)
    extra = found["extra"]
    assert extra["arranged"] and not extra["lean"]
    assert not extra["bigquery_before"] and extra["bigquery_after"]
    assert "apache_beam.io.gcp.gcsfilesystem" in extra["completed"]
    assert extra["gs"] == "GCSFileSystem"
    assert extra["dataflow"] == bool(importlib.util.find_spec("google.cloud.dataflow"))
    assert extra["again"] == []


@pytest.mark.skipif(not importlib.util.find_spec("pymongo"),
                    reason="pymongo is not installed: Beam never imports it here")
def test_mongodb_io_left_out_quietly_and_completed():
    found = loaded_after("""
        import logging
        warnings = []
        class Keep(logging.Handler):
            def emit(self, record):
                warnings.append(record.getMessage())
        logging.getLogger().addHandler(Keep())
        from pipelines.core.beam_import import complete_beam_import, lean_beam_import
        lean_beam_import([])
        import apache_beam
        from apache_beam.io import mongodbio
        extra["client_before"] = mongodbio.MongoClient is not None
        extra["completed"] = complete_beam_import()
        extra["client_after"] = mongodbio.MongoClient is not None
        extra["exported"] = apache_beam.io.ReadFromMongoDB is mongodbio.ReadFromMongoDB
        extra["warnings"] = [w for w in warnings if "bson" in w]
    """)
    extra = found["extra"]
    assert not extra["client_before"] and extra["warnings"] == []
    assert "apache_beam.io.mongodbio" in extra["completed"]
    assert extra["client_after"] and extra["exported"]


def test_no_lean_import_once_beam_is_imported():
    found = loaded_after("""
        import apache_beam
        from pipelines.core.beam_import import complete_beam_import, lean_beam_import
        extra["arranged"] = lean_beam_import([])
        extra["completed"] = complete_beam_import()
    """)
    assert found["extra"] == {"arranged": False, "completed": []}


def _manifest(run: str) -> list[tuple]:
    from pipelines.core.run_dir import RunDir

    return sorted((r["key"], r["image_sha256"], r["text_hash"], r["split"])
                  for r in RunDir(run).manifest().to_pylist())


@pytest.mark.slow
def test_a_run_with_the_lean_import_writes_what_a_full_import_writes(tmp_path):
    write_images(str(tmp_path / "in"), 3)
    argv = ["images", str(tmp_path / "in"), "--ocr", "none", "--no-charts", "--no-label"]
    lean = loaded_after(cli([*argv, "--out", str(tmp_path / "lean")]))
    # Beam already imported in full: the CLI cannot (and does not) make it lean
    full = loaded_after("import apache_beam\n" + cli([*argv, "--out", str(tmp_path / "full")]))
    if importlib.util.find_spec("google.cloud.storage"):
        assert not lean["modules"]["google.cloud.storage"]
        assert full["modules"]["google.cloud.storage"]
    lean_rows, full_rows = _manifest(str(tmp_path / "lean")), _manifest(str(tmp_path / "full"))
    assert len(lean_rows) == 3 and lean_rows == full_rows
    # the program froze what it had loaded before exiting, and the run is whole
    assert lean["gc_frozen"] and lean["gc_on"]
    from pipelines.core.audit import audit_run

    assert audit_run(str(tmp_path / "lean")).ok


def test_a_renderer_started_ahead_is_the_one_that_renders_the_first_document(tmp_path):
    import pymupdf

    from pipelines.pdf.isolation import IsolatedRenderer, idle_children, start_ahead
    from pipelines.pdf.settings import PdfRenderSettings

    path = str(tmp_path / "one.pdf")
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "started ahead")
    doc.save(path)
    memory_mb = 3001  # its own pool of parked children in this test process
    assert start_ahead(1, memory_mb) == 1
    parked = idle_children(memory_mb).procs
    assert len(parked) == 1
    ahead = parked[0].pid
    renderer = IsolatedRenderer(PdfRenderSettings().to_dict(), max_memory_mb=memory_mb)
    try:
        messages = list(renderer.render(path))
        assert renderer.proc.pid == ahead and not idle_children(memory_mb).procs
    finally:
        renderer.stop()
    assert [m[0] for m in messages] == ["doc", "page", "end"]
    assert "started ahead" in str(messages[1])
    idle_children(memory_mb).close()


PRISM_PROBE = """
    import apache_beam as beam
    from apache_beam.runners.portability import prism_runner
    from pipelines.core.engines import beam_options

    def no_download(*args, **kwargs):  # where Beam fetches Prism: fail at once, offline
        extra["prism_tries"] = extra.get("prism_tries", 0) + 1
        raise OSError("no Prism download in tests")

    prism_runner.PrismJobServer._download_to_local_path = staticmethod(no_download)
    with beam.Pipeline(options={options}) as p:
        _ = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2)
    extra["runner"] = type(p.runner).__name__
"""


@pytest.mark.parametrize("flags", [[], ["--runner=DirectRunner", "--direct_num_workers=2",
                                        "--direct_running_mode=multi_threading"]])
def test_the_direct_runner_never_tries_prism(flags):
    found = loaded_after(PRISM_PROBE.format(options=f"beam_options({flags!r})"))
    assert found["extra"] == {"runner": "FnApiDirectRunner"}


def test_beams_own_direct_runner_tries_prism_first():
    # what FnApiDirectRunner avoids: a download at the start of every run
    found = loaded_after(PRISM_PROBE.format(
        options='beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])'))
    assert found["extra"]["prism_tries"] == 1


@pytest.mark.slow
def test_vlforge_pdf_with_its_renderer_started_ahead_writes_what_the_api_writes(tmp_path):
    import pymupdf

    from pipelines.core.audit import audit_run
    from pipelines.core.runner import run_pipeline
    from pipelines.pdf.pipeline import pdf_refs

    paths = []
    for index in range(2):
        doc = pymupdf.open()
        for page in range(2):  # pages unlike each other (no near-duplicate drops)
            words = [f"w{index}{page}{n}" * (n % 5 + 1) for n in range(40 * (2 * index + page + 1))]
            doc.new_page().insert_textbox(pymupdf.Rect(40, 40, 560, 800), " ".join(words))
        paths.append(str(tmp_path / f"doc{index}.pdf"))
        doc.save(paths[-1])
    loaded_after(cli(["pdf", *paths, "--ocr", "none", "--no-charts", "--no-label",
                  "--out", str(tmp_path / "cli")]))
    run_pipeline("pdf", pdf_refs(paths), {"ocr": None, "charts": False, "label": False},
                 str(tmp_path / "api"))
    assert audit_run(str(tmp_path / "cli")).ok
    cli_rows, api_rows = _manifest(str(tmp_path / "cli")), _manifest(str(tmp_path / "api"))
    assert len(cli_rows) >= 4 and cli_rows == api_rows


def test_a_pdf_run_on_the_in_process_runner_parks_one_renderer_ahead():
    # what run_pipeline asks of the config before Beam's import, planning and the runner's
    # start (`vlforge pdf` has started one before; the bench and DAGs have not)
    from pipelines.pdf.config import PdfConfig
    from pipelines.pdf.isolation import idle_children

    config = PdfConfig(max_memory_mb=3002)  # a pool of this test's own
    pool = idle_children(config.max_memory_mb)
    try:
        config.start_ahead(["--runner=DirectRunner", "--direct_num_workers=2",
                            "--direct_running_mode=multi_processing"])
        assert pool.procs == []  # the stage runs in other processes: nothing to park here
        config.start_ahead([])
        assert len(pool.procs) == 1
        ahead = pool.procs[0].pid
        config.start_ahead(["--runner=DirectRunner"])  # one is parked: no second
        assert [p.pid for p in pool.procs] == [ahead]
    finally:
        pool.close()


def test_the_lean_import_runs_without_the_collector_and_gives_it_back():
    found = loaded_after("""
        import gc
        from pipelines.core.beam_import import lean_beam_import
        during = []
        gc.callbacks.append(lambda phase, info: during.append(phase))
        lean_beam_import([])
        import apache_beam
        extra["collections"] = len(during)
        extra["on"] = gc.isenabled()
        extra["beam_frozen"] = gc.get_freeze_count() > 0
    """)
    # none during Beam's import; the collector on after it, Beam's objects out of its sight
    assert found["extra"] == {"collections": 0, "on": True, "beam_frozen": True}


def test_the_lean_import_leaves_a_paused_collector_paused():
    found = loaded_after("""
        import gc
        from pipelines.core.beam_import import lean_beam_import
        gc.disable()
        lean_beam_import([])
        import apache_beam
        extra["on"] = gc.isenabled()
        extra["frozen"] = gc.get_freeze_count() > 0
    """)
    assert found["extra"] == {"on": False, "frozen": False}


@pytest.mark.parametrize("tasks, shuffles", [(1, 0), (2, 1)])
def test_one_task_list_is_read_without_a_shuffle(tmp_path, tasks, shuffles):
    # one partition has nothing to spread: the whole graph fuses into one stage (one bundle
    # on the FnApiRunner, not two); several partitions are spread over the workers
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from pipelines.core.run_dir import Task
    from pipelines.core.task_lists import ReadTasks

    read = ReadTasks(str(tmp_path), [Task(f"t{i:05d}", [{"input_id": str(i), "locator": "x"}])
                                     for i in range(tasks)])
    with beam.Pipeline() as p:
        assert_that(p | read | beam.Map(lambda task: task[0]),
                    equal_to([f"t{i:05d}" for i in range(tasks)]))
    names = [t.unique_name for t in p.to_runner_api().components.transforms.values()]
    assert sum(name.endswith("SpreadPartitions") for name in names) == shuffles
