"""Start-up of a `vlforge` run: a one-page run's wall and CPU-s next to a bare baseline,
and where that time goes.

Every row is a fresh interpreter, run ``--repeats`` times (default 5); the median is
printed, wall and CPU-s (the whole process tree: this process's children waited for with
``wait4``, which includes the renderer children they reaped, or the tree sampled with
psutil, whichever is larger). Inputs are generated here: a one-page PDF with a few text
lines and a 800x600 PNG.

- ``python``: ``python -c pass`` (the interpreter itself);
- ``bare pdf``: ``import pymupdf``, open the page, render it to PNG: the bare loop's
  start-up (``bench/pdf_throughput.py``'s baseline side);
- ``vlforge pdf``: ``vlforge pdf ONE.pdf --out D --ocr none --no-charts --no-label`` (post
  stages off, as pdf_throughput runs the pipeline; every other default: DirectRunner,
  renderer children);
- ``bare image`` / ``vlforge images``: the same for one PNG (Pillow open + PNG encode);
- ``vlforge --help`` and ``vlforge pdf --help``.

Ratios are against the bare row of the same family. Then the breakdown of one ``vlforge
pdf`` and one ``vlforge images`` run (medians of the repeats; own-process CPU beside wall:
the renderer children's CPU is only in the tree total): interpreter start, CLI + command
module import, argument parsing + planning, pipeline construction (stage building, options,
graph), runner start (to the first task's expansion), first element (to its first record
reaching WriteRun), the rest of the work, runner shutdown (last record written to the
runner returning: DoFn teardown, renderer children parked), finalize (manifest, stats,
_SUCCESS), interpreter exit (from the command's end: exit handlers, and the teardown where
`vlforge` does not skip it). ``import apache_beam`` is timed wherever it happens (its
seconds are inside one of those phases) and so are the modules Beam would import for
Google Cloud IO and pandas (present or not after the run).

The breakdown patches timing wrappers onto the runner's functions in its own child process
(an in-process DirectRunner runs the DoFns in that process); nothing is changed for the
measured rows.

    .venv/bin/python bench/startup.py [--repeats 5] [--skip-breakdown] [--json]
"""

import time

_CHILD_START = time.monotonic()  # first statement: the breakdown child's interpreter start

import argparse  # after the timestamp on purpose
import atexit
import functools
import importlib
import importlib.abc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POST_STAGES_OFF = ["--ocr", "none", "--no-charts", "--no-label"]
WATCHED_MODULES = ("apache_beam", "pandas", "google.cloud.pubsub", "google.cloud.storage",
                   "google.cloud.bigquery", "google.cloud.dataflow", "pymongo", "torch",
                   "playwright")


# -- inputs ----------------------------------------------------------------------------------
def make_inputs(directory: str) -> dict[str, str]:
    """A one-page PDF (a heading and text lines) and an 800x600 PNG, written to `directory`."""
    import pymupdf
    from PIL import Image, ImageDraw

    pdf = os.path.join(directory, "one-page.pdf")
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Start-up of a one-page run", fontsize=18)
    for line in range(20):
        page.insert_text((72, 110 + 18 * line), f"Line {line}: the quick brown fox jumps over "
                         "the lazy dog, again and again.", fontsize=11)
    doc.save(pdf)
    image = os.path.join(directory, "one-image.png")
    picture = Image.new("RGB", (800, 600), (240, 240, 230))
    draw = ImageDraw.Draw(picture)
    for i in range(0, 800, 40):
        draw.rectangle((i, 600 - i // 2, i + 30, 600), fill=(40, 90, 160))
    draw.text((20, 20), "a start-up bench image", fill=(0, 0, 0))
    picture.save(image)
    return {"pdf": pdf, "image": image}


# -- measuring a fresh process ---------------------------------------------------------------
def vlforge_command() -> list[str]:
    """The installed `vlforge` script beside this interpreter, else ``python -m pipelines.cli``."""
    script = os.path.join(os.path.dirname(sys.executable), "vlforge")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "pipelines.cli"]


def tree_env(tree: str | None, **extra: str) -> dict[str, str]:
    """The environment of a measured process: the code of `tree` (a checkout of vlforge, via
    PYTHONPATH, ahead of the installed one) or, for None, the checkout this file is in."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tree or ROOT, env.get("PYTHONPATH")) if p)
    return env


def measure(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Wall s and CPU s (process tree) of one run of `argv`; raises if it fails."""
    import psutil

    started = time.monotonic()
    cwd = (env or {}).get("STARTUP_BENCH_TREE") or ROOT
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    seen: dict[int, float] = {}
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            tree = psutil.Process(proc.pid)
            for member in [tree, *tree.children(recursive=True)]:
                times = member.cpu_times()
                seen[member.pid] = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    errors = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {errors[-2000:]}")
    cpu = max(usage.ru_utime + usage.ru_stime, sum(seen.values()))
    return {"wall_s": wall, "cpu_s": cpu}


def median_of(runs: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}


BARE_PDF = ("import sys, pymupdf\n"
            "doc = pymupdf.open(sys.argv[1])\n"
            "for page in doc:\n"
            "    scale = 1024 / max(page.rect.width, page.rect.height)\n"
            "    page.get_pixmap(matrix=pymupdf.Matrix(scale, scale)).tobytes('png')\n")
BARE_IMAGE = ("import io, sys\nfrom PIL import Image\n"
              "picture = Image.open(sys.argv[1]); picture.load()\n"
              "picture.convert('RGB').save(io.BytesIO(), 'PNG')\n")


def rows(inputs: dict[str, str], workdir: str) -> list[tuple[str, str, list[str]]]:
    """(name, family, argv) of every measured row; a run's --out is filled in per repeat."""
    vlforge = vlforge_command()
    return [
        ("python -c pass", "", [sys.executable, "-c", "pass"]),
        ("vlforge --help", "", [*vlforge, "--help"]),
        ("vlforge pdf --help", "", [*vlforge, "pdf", "--help"]),
        ("bare pdf (pymupdf)", "pdf", [sys.executable, "-c", BARE_PDF, inputs["pdf"]]),
        ("vlforge pdf", "pdf", [*vlforge, "pdf", inputs["pdf"], *POST_STAGES_OFF, "--out"]),
        ("bare image (PIL)", "image", [sys.executable, "-c", BARE_IMAGE, inputs["image"]]),
        ("vlforge images", "image",
         [*vlforge, "images", inputs["image"], *POST_STAGES_OFF, "--out"]),
    ]


def run_rows(inputs: dict[str, str], workdir: str, repeats: int,
             baseline_tree: str | None = None) -> dict[str, dict]:
    """Median wall/CPU of each row, the rows interleaved within each repeat so a change in
    the machine's load hits every row alike. With `baseline_tree`, each vlforge row is also
    run on that checkout (``NAME [before]``), side by side."""
    table = [(name, family, argv, None) for name, family, argv in rows(inputs, workdir)]
    if baseline_tree:
        table += [(f"{name} [before]", family, argv, baseline_tree)
                  for name, family, argv, _ in table if "vlforge" in name]
    runs: dict[str, list[dict]] = {name: [] for name, _, _, _ in table}
    for repeat in range(repeats):
        for name, _, argv, tree in table:
            if argv[-1] == "--out":
                argv = [*argv, os.path.join(workdir, f"run-{len(os.listdir(workdir))}")]
            env = tree_env(tree, STARTUP_BENCH_TREE=tree or ROOT)
            runs[name].append(measure(argv, env))
    result = {}
    bare = {family: median_of(runs[name]) for name, family, argv, _ in table
            if family and argv[0] == sys.executable}
    for name, family, argv, _ in table:
        row = median_of(runs[name])
        if family and argv[0] != sys.executable:
            row["x_bare_wall"] = round(row["wall_s"] / bare[family]["wall_s"], 2)
            row["x_bare_cpu"] = round(row["cpu_s"] / bare[family]["cpu_s"], 2)
        result[name] = row
    return result


# -- the breakdown (a child process running the CLI with timing wrappers) ------------------
PHASES = ("interpreter start", "CLI + command import", "arguments + planning",
          "pipeline construction", "runner start", "first element", "rest of the work",
          "runner shutdown", "finalize", "interpreter exit")


def breakdown(argv_tail: list[str], repeats: int, tree: str | None = None) -> dict:
    """Median seconds (wall, own CPU) of each phase of `vlforge ARGV_TAIL --out D` runs
    (on the checkout `tree`, else this one)."""
    samples = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="startup-phases-") as tmp:
            marks_path = os.path.join(tmp, "marks.json")
            started = time.monotonic()
            env = tree_env(tree, STARTUP_BENCH_MARKS=marks_path,
                           STARTUP_BENCH_TREE=tree or ROOT)
            total = measure([sys.executable, os.path.abspath(__file__), "--_phases",
                             *argv_tail, "--out", os.path.join(tmp, "run")], env)
            ended = started + total["wall_s"]
            with open(marks_path) as handle:
                marks = json.load(handle)
            samples.append(phases_of(marks, started, ended) | {"tree CPU": total["cpu_s"],
                                                               "modules": marks["modules"]})
    result: dict = {}
    for phase in (*PHASES, "apache_beam import"):
        walls = [s[phase][0] for s in samples if phase in s]
        cpus = [s[phase][1] for s in samples if phase in s]
        if walls:
            result[phase] = (round(statistics.median(walls), 3), round(statistics.median(cpus), 3))
    result["total wall"] = round(sum(result[p][0] for p in PHASES if p in result), 3)
    result["tree CPU"] = round(statistics.median(s["tree CPU"] for s in samples), 3)
    result["apache_beam imported in"] = samples[-1].get("beam_phase")
    result["modules"] = samples[-1]["modules"]
    return result


def phases_of(marks: dict, started: float, ended: float) -> dict:
    """(wall s, own CPU s) of each phase from the child's (monotonic, cpu) marks."""
    points = [("start", (started, 0.0)), ("child", marks["child"]), ("imported", marks["imported"]),
              ("execute", marks.get("execute")), ("built", marks.get("built")),
              ("expanded", marks.get("expanded")), ("first_write", marks.get("first_write")),
              ("last_write", marks.get("last_write")), ("executed", marks.get("executed")),
              ("returned", marks["returned"]), ("end", (ended, marks["returned"][1]))]
    out: dict = {}
    for phase, (_, begin), (_, finish) in zip(PHASES, points, points[1:]):
        if begin is not None and finish is not None:
            out[phase] = (finish[0] - begin[0], finish[1] - begin[1])
    if "beam" in marks:
        begin, finish = marks["beam"]
        out["apache_beam import"] = (finish[0] - begin[0], finish[1] - begin[1])
        for phase, (_, b), (_, f) in zip(PHASES, points, points[1:]):
            if b is not None and f is not None and b[0] <= begin[0] < f[0]:
                out["beam_phase"] = phase
    return out


class _ImportWatch(importlib.abc.MetaPathFinder):
    """Calls ``hook(module, begin, end)`` right after a watched module's first execution
    (begin/end: its (monotonic, CPU) marks), wherever the import happens; the import itself
    is left as it is (the module keeps its own loader)."""

    def __init__(self, hooks: dict):
        self.hooks = hooks

    def find_spec(self, name, path=None, target=None):
        hook = self.hooks.pop(name, None)
        if hook is None:
            return None
        index = sys.meta_path.index(self)
        sys.meta_path.remove(self)  # the finders after this one find the real spec
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(index, self)
        if spec is None or spec.loader is None:
            return spec
        real = spec.loader

        class Watched(importlib.abc.Loader):
            def create_module(self, spec):
                return real.create_module(spec)

            def exec_module(self, module):
                begin = _mark()
                try:
                    real.exec_module(module)
                finally:
                    module.__loader__ = module.__spec__.loader = real
                hook(module, begin, _mark())

        spec.loader = Watched()
        return spec


def _mark() -> tuple[float, float]:
    return (time.monotonic(), time.process_time())


def phases_child(argv: list[str]) -> int:
    """Run ``vlforge ARGV`` in this process with timing marks; writes them as JSON."""
    marks: dict = {"child": (_CHILD_START, 0.0)}

    def beam_imported(module, begin, end):
        marks["beam"] = [begin, end]

    def defines(module, name):
        return name in vars(module)  # not a name the module forwards lazily

    def runner_imported(module, begin, end):
        _around(marks, module, "execute", before="execute", after="executed")
        graph_imported(module, begin, end)

    def graph_imported(module, begin, end):
        if defines(module, "build_pipeline"):
            _around(marks, module, "build_pipeline", after="built")
        if defines(module, "ExpandTaskFn"):
            _around(marks, module.ExpandTaskFn, "process", before="expanded")

    def write_run_imported(module, begin, end):
        _around(marks, module.WriteRunFn, "process", before="first_write", after="last_write")

    sys.meta_path.insert(0, _ImportWatch({
        "apache_beam": beam_imported, "pipelines.core.runner": runner_imported,
        "pipelines.core.task_graph": graph_imported,
        "pipelines.core.write_run": write_run_imported}))
    sys.path.insert(0, os.environ.get("STARTUP_BENCH_TREE") or ROOT)
    # the CLI imports the command's module, then parses its arguments: the first parse
    # ends the import phase (so the CLI does its imports in its own order)
    _around(marks, argparse.ArgumentParser, "parse_known_args", before="imported")
    from pipelines import cli

    def report():  # at exit, after the run's own handlers
        marks.setdefault("returned", _mark())
        marks["modules"] = {name: name in sys.modules for name in WATCHED_MODULES}
        with open(os.environ["STARTUP_BENCH_MARKS"], "w") as handle:
            json.dump(marks, handle)

    atexit.register(report)  # runs after the handlers the run registers (LIFO)
    sys.argv = ["vlforge", *argv]
    code = cli.main()  # as the `vlforge` script calls it
    marks.setdefault("returned", _mark())
    return code


def _around(marks: dict, owner, name: str, before: str | None = None,
            after: str | None = None) -> None:
    """Wrap ``owner.name``: mark `before` at its first call, `after` at each return."""
    real = getattr(owner, name)

    @functools.wraps(real)  # Beam reads a DoFn's process signature
    def wrapper(*args, **kwargs):
        if before and before not in marks:
            marks[before] = _mark()
        try:
            return real(*args, **kwargs)
        finally:
            if after:
                marks[after] = _mark()
    setattr(owner, name, wrapper)


# -- report ----------------------------------------------------------------------------------
def print_report(report: dict) -> None:
    print(f"start-up, median of {report['repeats']} fresh processes each, load average "
          f"{report['load'][0]:.1f} -> {report['load'][1]:.1f} on {os.cpu_count()} CPUs "
          "(CPU-s is the steadier figure on a shared machine)")
    print(f"{'run':31s} {'wall s':>8s} {'x bare':>7s} {'CPU s':>8s} {'x bare':>7s}")
    for name, row in report["rows"].items():
        print(f"{name:31s} {row['wall_s']:8.3f} {row.get('x_bare_wall', ''):>7} "
              f"{row['cpu_s']:8.3f} {row.get('x_bare_cpu', ''):>7}")
    for name, phases in report.get("breakdown", {}).items():
        print(f"\nwhere a one-page `{name}` run spends it (wall s | own-process CPU s):")
        for phase in PHASES:
            if phase in phases:
                wall, cpu = phases[phase]
                print(f"  {phase:24s} {wall:7.3f} | {cpu:6.3f}")
        if "apache_beam import" in phases:
            wall, cpu = phases["apache_beam import"]
            print(f"  {'(import apache_beam)':24s} {wall:7.3f} | {cpu:6.3f}   inside "
                  f"'{phases['apache_beam imported in']}'")
        print(f"  {'total':24s} {phases['total wall']:7.3f}   process tree CPU "
              f"{phases['tree CPU']:.3f}")
        loaded = ", ".join(f"{m} {'yes' if v else 'no'}" for m, v in phases["modules"].items())
        print(f"  modules loaded by the end: {loaded}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per row")
    parser.add_argument("--baseline-tree", metavar="DIR",
                        help="a checkout of vlforge to compare with, run side by side (e.g. "
                             "`git archive COMMIT | tar -x -C DIR`; it runs with this venv)")
    parser.add_argument("--skip-breakdown", action="store_true")
    parser.add_argument("--json", action="store_true")
    if sys.argv[1:2] == ["--_phases"]:
        return phases_child(sys.argv[2:])
    args = parser.parse_args()
    tree = os.path.abspath(args.baseline_tree) if args.baseline_tree else None
    report: dict = {"repeats": args.repeats, "load": [os.getloadavg()[0]]}
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        inputs_dir, runs_dir = os.path.join(tmp, "inputs"), os.path.join(tmp, "runs")
        os.makedirs(inputs_dir)
        os.makedirs(runs_dir)
        inputs = make_inputs(inputs_dir)
        report["rows"] = run_rows(inputs, runs_dir, args.repeats, tree)
        if not args.skip_breakdown:
            report["breakdown"] = {}
            for name, tail in (("vlforge pdf", ["pdf", inputs["pdf"], *POST_STAGES_OFF]),
                               ("vlforge images", ["images", inputs["image"],
                                                   *POST_STAGES_OFF])):
                if tree:
                    report["breakdown"][f"{name} [before]"] = breakdown(tail, args.repeats, tree)
                report["breakdown"][name] = breakdown(tail, args.repeats)
    report["load"].append(os.getloadavg()[0])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
