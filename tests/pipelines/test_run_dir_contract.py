"""Only `pipelines.core` opens a tar or a run's parquet files: everything else uses RunDir.

A static check over the source tree (AST, no imports): it fails when a module outside
the core imports `tarfile`, names one of the run directory's own files, imports the
manifest/input/outcome schemas, reaches into RunDir's private table access, or opens a
run's files through its filesystem handle. Reading or writing *user* parquet files (a URL
list, an instruction set to import) or a step's own scratch files is allowed in the modules
listed below.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKED = ("pipelines", "training", "model", "dags", "taxonomy")
CORE = os.path.join("pipelines", "core") + os.sep
CONTRACT_FILES = ("manifest.parquet", "inputs.parquet", "outcomes.parquet")
CONTRACT_NAMES = {"MANIFEST_SCHEMA", "INPUT_SCHEMA", "OUTCOME_SCHEMA", "ShardIndex",
                  "read_shard_groups", "iter_shard_groups", "_read_table", "_write_table"}
# pyarrow.parquet on files a user hands in (not run directories), and on a step's own
# scratch files in its own output directory (dedup's spilled bucket memberships and its
# per-pass candidate parts, sorted and merged in row groups): never a run's files, which
# the name check below still guards.
USER_PARQUET = {os.path.join("pipelines", "web", "urls.py"),
                os.path.join("pipelines", "sft", "pipeline.py"),
                os.path.join("pipelines", "images", "captions.py"),
                os.path.join("pipelines", "dedup", "pipeline.py")}


def source_files() -> list[str]:
    found = []
    for top in CHECKED:
        for base, _, names in os.walk(os.path.join(ROOT, top)):
            found += [os.path.relpath(os.path.join(base, n), ROOT)
                      for n in names if n.endswith(".py")]
    return sorted(found)


def violations(relpath: str, source: str) -> list[str]:
    """What `relpath` does that only the core may do (empty for core modules)."""
    if relpath.startswith(CORE):
        return []
    tree = ast.parse(source, relpath)
    found = []
    for node in ast.walk(tree):
        where = f"{relpath}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "tarfile":
                    found.append(f"{where}: imports tarfile")
                if alias.name == "pyarrow.parquet" and relpath not in USER_PARQUET:
                    found.append(f"{where}: imports pyarrow.parquet")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module == "tarfile":
                found.append(f"{where}: imports tarfile")
            if (module == "pyarrow.parquet" or (module == "pyarrow" and any(
                    a.name == "parquet" for a in node.names))) and relpath not in USER_PARQUET:
                found.append(f"{where}: imports pyarrow.parquet")
            for alias in node.names:
                if alias.name in CONTRACT_NAMES:
                    found.append(f"{where}: imports {alias.name} from {module}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # docstrings may describe the layout; code may not spell its file names
            if any(name in node.value for name in CONTRACT_FILES) and not _is_docstring(
                    node, tree):
                found.append(f"{where}: names a run directory file ({node.value[:40]!r})")
        elif isinstance(node, ast.Attribute):
            if node.attr in CONTRACT_NAMES:
                found.append(f"{where}: uses {node.attr}")
            if node.attr in ("fs", "root") and isinstance(node.value, ast.Name) and \
                    "run" in node.value.id.lower():
                found.append(f"{where}: reaches into {node.value.id}.{node.attr}")
    return found


def _is_docstring(node: ast.Constant, tree: ast.AST) -> bool:
    for parent in ast.walk(tree):
        if isinstance(parent, (ast.Module, ast.ClassDef, ast.FunctionDef,
                               ast.AsyncFunctionDef)) and parent.body:
            first = parent.body[0]
            if isinstance(first, ast.Expr) and first.value is node:
                return True
    return False


def test_no_module_outside_the_core_opens_a_tar_or_a_manifest():
    problems = []
    for relpath in source_files():
        with open(os.path.join(ROOT, relpath), encoding="utf-8") as handle:
            problems += violations(relpath, handle.read())
    assert not problems, "go through pipelines.core.run_dir.RunDir instead:\n" + \
        "\n".join(problems)


@pytest.mark.parametrize("code, what", [
    ("import tarfile\n", "imports tarfile"),
    ("import pyarrow.parquet as pq\npq.read_table('x')\n", "imports pyarrow.parquet"),
    ("from pyarrow import parquet\n", "imports pyarrow.parquet"),
    ("from pipelines.core.run_dir import MANIFEST_SCHEMA\n", "imports MANIFEST_SCHEMA"),
    ("def f(run):\n    return run.exists('manifest.parquet')\n", "names a run directory"),
    ("def f(run):\n    return run._read_table('x')\n", "uses _read_table"),
    ("def f(run):\n    return run.fs.open(run.path('a.tar'))\n", "reaches into run.fs"),
])
def test_the_check_catches_each_way_around_the_contract(code, what):
    found = violations(os.path.join("pipelines", "web", "example.py"), code)
    assert any(what in line for line in found), found


def test_the_core_and_docstrings_may_name_the_files():
    assert violations(os.path.join("pipelines", "core", "x.py"), "import tarfile\n") == []
    assert violations(os.path.join("pipelines", "web", "x.py"),
                      '"""Writes manifest.parquet."""\n') == []
