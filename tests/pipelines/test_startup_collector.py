"""The start of a `vlforge` process (issues 16 and 17): the collector paused while a
pipeline command imports and plans, on again (with start-up frozen) for its graph.

Each check runs the real CLI in a fresh interpreter: what is paused or frozen is per
process.
"""

import gc
import os
import subprocess
import sys
import textwrap

import pytest

from pipelines.core import collector
from tests.pipelines.fixtures import write_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Marks what the process saw, into a file, from its exit handlers (ATEXIT when they ran)
PROBE = """
import atexit, os, sys
MARKS = os.environ["EXIT_MARKS"]
def mark(what):
    fd = os.open(MARKS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, what.encode() + b"\\n")
    os.close(fd)
atexit.register(mark, "ATEXIT")
"""


def run_cli(tmp_path, argv: list[str], before: str = "", stdout_file: bool = True):
    """Run ``vlforge ARGV`` as its script does, after `before`; (status, stdout, marks)."""
    marks = tmp_path / "marks.txt"
    script = PROBE + textwrap.dedent(before) + textwrap.dedent(f"""
        from pipelines.cli import main
        sys.argv = ["vlforge", *{argv!r}]
        code = main()
        mark("RETURNED")
        sys.exit(code)
    """)
    out_path = tmp_path / "stdout.txt"
    with open(out_path, "wb") as out:  # a file: block-buffered, as when redirected
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=300,
                                env=dict(os.environ, EXIT_MARKS=str(marks)), check=False,
                                stdout=out if stdout_file else subprocess.PIPE,
                                stderr=subprocess.PIPE)
    found = marks.read_text().split() if marks.exists() else []
    return result.returncode, out_path.read_text(), found, result.stderr.decode()


COLLECTOR_WATCH = """
import gc
seen = {}
from pipelines.core import run_dir, task_graph
plan = run_dir.RunDir.plan_pending
def plan_pending(self, *args, **kwargs):
    seen["planning"] = gc.isenabled()
    return plan(self, *args, **kwargs)
run_dir.RunDir.plan_pending = plan_pending
build = task_graph.build_pipeline
def build_pipeline(*args, **kwargs):
    seen["graph"] = (gc.isenabled(), gc.get_freeze_count() > 0)
    return build(*args, **kwargs)
task_graph.build_pipeline = build_pipeline
atexit.register(lambda: mark(f"SEEN {seen} END {gc.isenabled()}"))
"""


@pytest.mark.slow
def test_a_pipeline_command_starts_without_the_collector_and_runs_with_it(tmp_path):
    write_images(str(tmp_path / "in"), 2)
    status, _, marks, stderr = run_cli(
        tmp_path, ["images", str(tmp_path / "in"), "--ocr", "none", "--no-charts",
                   "--no-label", "--out", str(tmp_path / "run")], COLLECTOR_WATCH)
    assert status == 0, stderr
    seen = " ".join(marks)
    # planning without it; the graph, the runner and the stages with it, start-up frozen
    assert "'planning': False" in seen and "'graph': (True, True)" in seen
    assert "END True" in seen


def test_the_pause_ends_on_a_command_that_fails_before_running(tmp_path):
    status, _, marks, _ = run_cli(tmp_path, ["images", str(tmp_path / "none"), "--out",
                                             str(tmp_path / "run"), "--task-size", "0"],
                                  COLLECTOR_WATCH)
    assert status != 0
    assert "END True" in " ".join(marks)


def test_a_collector_turned_off_by_the_program_stays_off():
    was_on = gc.isenabled()
    gc.disable()
    try:
        assert not collector.pause_for_startup()
        assert not collector.end_startup()
        assert not gc.isenabled()
    finally:
        if was_on:
            gc.enable()
    if was_on:
        assert collector.pause_for_startup() and not gc.isenabled()
        assert not collector.pause_for_startup()  # one pause at a time
        assert collector.end_startup() and gc.isenabled()
        assert not collector.end_startup()
        gc.unfreeze()  # what end_startup froze: this test process goes on


def test_the_pause_is_counted_across_holders():
    # the render stage's reader threads unpickle at once: one done must not turn the
    # collector on under another; the last one out does
    if not gc.isenabled():
        pytest.skip("this test process runs without the collector")
    with collector.paused() as was_on:
        assert was_on and not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the other holder is still inside
    assert gc.isenabled()
    gc.disable()  # a program's own choice is kept
    try:
        with collector.paused() as was_on:
            assert not was_on
        assert not gc.isenabled()
    finally:
        gc.enable()
