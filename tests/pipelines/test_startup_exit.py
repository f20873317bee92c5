"""The start and the end of a `vlforge` process (issues 16 and 17): the collector paused
while a pipeline command starts, and the exit without the interpreter's teardown, which
must lose nothing (every file written, every buffer flushed, every exit handler run).

Each check runs the real CLI in a fresh interpreter: what is paused, frozen or skipped is
per process.
"""

import gc
import os
import subprocess
import sys
import textwrap

import pytest

from pipelines.core import collector
from pipelines.core.process_exit import files_open_for_writing, waited_for_threads
from tests.pipelines.fixtures import write_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Marks what happened at the end of the process, into a file (stdout may be what is tested):
# RETURNED when main() returned to its caller (the normal exit follows), ATEXIT when the
# exit handlers ran. A fast exit runs the handlers and never returns.
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


@pytest.mark.slow
def test_a_run_ends_without_teardown_and_loses_nothing(tmp_path):
    from pipelines.core.audit import audit_run
    from pipelines.core.run_dir import RunDir

    write_images(str(tmp_path / "in"), 3)
    run = str(tmp_path / "run")
    status, stdout, marks, stderr = run_cli(
        tmp_path, ["images", str(tmp_path / "in"), "--ocr", "none", "--no-charts",
                   "--no-label", "--out", run])
    assert status == 0, stderr
    assert marks == ["ATEXIT"]  # the handlers ran; main() never returned
    assert f"run: {run}" in stdout  # the summary, from a block-buffered stdout
    assert audit_run(run).ok
    assert len(RunDir(run).manifest().to_pylist()) == 3


def test_a_failing_command_keeps_its_exit_status(tmp_path):
    status, _, marks, stderr = run_cli(tmp_path, ["audit", str(tmp_path / "missing")])
    assert status == 1 and "not a run directory" in stderr
    assert marks == ["ATEXIT"]


def test_other_commands_keep_the_interpreters_exit(tmp_path):
    # (the training and model commands among them: torch, process groups)
    status, _, marks, stderr = run_cli(tmp_path, ["taxonomy", "show"])
    assert status == 0, stderr
    assert marks == ["RETURNED", "ATEXIT"]


def test_a_file_left_open_for_writing_gets_the_normal_exit(tmp_path):
    # someone's file, never closed: its buffer is the interpreter's business, not skipped
    before = f"""
        pending = open({str(tmp_path / "left-open.txt")!r}, "w")
        pending.write("written before exit")
    """
    status, _, marks, stderr = run_cli(tmp_path, ["audit", str(tmp_path / "missing")], before)
    assert status == 1, stderr
    assert marks == ["RETURNED", "ATEXIT"]  # the normal exit


def test_a_thread_still_working_gets_the_normal_exit(tmp_path):
    done = tmp_path / "thread-done.txt"
    before = f"""
        import threading, time
        import pipelines.cli
        ending = threading.Event()
        real_exit_now = pipelines.cli.exit_now
        def exit_now(code):  # the command is done; the thread is not
            ending.set()
            real_exit_now(code)
        pipelines.cli.exit_now = exit_now
        def work():
            ending.wait()
            time.sleep(0.2)
            with open({str(done)!r}, "w") as handle:
                handle.write("done")
        threading.Thread(target=work).start()
    """
    status, _, marks, stderr = run_cli(tmp_path, ["audit", str(tmp_path / "missing")], before)
    assert status == 1, stderr
    assert done.read_text() == "done"  # the interpreter waited for it
    assert marks == ["RETURNED", "ATEXIT"]


def test_files_open_for_writing_are_found(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("x")
    assert str(path) not in files_open_for_writing()
    with open(path, "a") as handle:
        handle.write("y")
        assert str(path) in files_open_for_writing()
        with open(path) as reading:  # read-only: nothing of ours to lose
            assert reading.read(1) == "x"
            assert files_open_for_writing().count(str(path)) == 1
    assert str(path) not in files_open_for_writing()
    assert waited_for_threads() == [] or all(isinstance(n, str) for n in waited_for_threads())


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
