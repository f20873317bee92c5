"""Worker packaging: the Dockerfile agrees with the Makefile and pyproject; the setup shim
builds an sdist that holds the packages workers import."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _makefile_value(name: str) -> str:
    match = re.search(rf"^{name}\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, f"Makefile has no {name}"
    return match.group(1).strip()


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_installs_the_makefiles_debian_packages():
    wanted = set(_makefile_value("APT_PACKAGES").split())
    install = re.search(r"apt-get install[^\n]*\\\n(.*?)\\\n", _dockerfile(), re.S)
    assert install, "no apt-get install line"
    packages = {p for p in install.group(1).split() if not p.startswith("-")}
    assert packages == wanted


def test_dockerfile_pins_the_makefiles_torch_and_installs_real_extras():
    docker = _dockerfile()
    assert _makefile_value("TORCH") in docker
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                 ["optional-dependencies"])
    used = set()
    for group in re.findall(r'"\.\[([^\]]+)\]"', docker):
        used.update(group.split(","))
    assert used and used <= extras, (used, extras)
    assert "distributed" in used  # workers write runs to object stores (s3fs)
    for package in ("pipelines", "taxonomy", "model", "training"):
        assert re.search(rf"^COPY {package} ", docker, re.M), package


@pytest.mark.slow
def test_setup_file_builds_an_sdist_with_the_packages(tmp_path):
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True)
    [sdist] = list(tmp_path.glob("vlforge-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for path in ("pipelines/core/runner.py", "pipelines/core/task_lists.py",
                 "pipelines/pdf/pipeline.py", "taxonomy/__init__.py"):
        assert path in names, path
    assert any(n.startswith("taxonomy/") and n.endswith(".yaml") for n in names)
