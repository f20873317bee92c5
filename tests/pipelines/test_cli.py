"""The vlforge command as a user meets it."""

import json
import os
import subprocess
import sys

import pytest

from tests.pipelines.fixtures import write_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def vlforge(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_top_level_help_lists_every_command():
    from pipelines.cli import COMMANDS

    out = vlforge("--help").stdout
    for name in COMMANDS:
        assert f"  {name} " in out


def test_unknown_command_is_a_clear_error():
    result = vlforge("frobnicate", check=False)
    assert result.returncode == 2 and "unknown command 'frobnicate'" in result.stderr


@pytest.mark.slow
def test_images_then_audit_then_inspect_as_json(tmp_path):
    write_images(str(tmp_path / "in"), 3)
    out = str(tmp_path / "run")
    stats = json.loads(vlforge("images", str(tmp_path / "in"), "--out", out, "--json").stdout)
    assert stats["written"] == 3
    audit = json.loads(vlforge("audit", out, "--json").stdout)
    assert audit["ok"] and audit["inputs"] == 3
    info = json.loads(vlforge("shards", "inspect", out, "--json").stdout)
    assert info["samples"] == 3


def test_missing_input_is_a_clear_error(tmp_path):
    result = vlforge("images", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "o"),
                     check=False)
    assert result.returncode == 1
    assert "no input files found" in result.stderr


def test_audit_of_a_non_run_is_a_clear_error(tmp_path):
    result = vlforge("audit", str(tmp_path), check=False)
    assert result.returncode == 1 and "not a run directory" in result.stderr
