"""Shim for Beam's ``--setup_file=./setup.py``: Beam builds an sdist of vlforge with it and
installs that on every worker. All metadata lives in pyproject.toml."""

from setuptools import setup

setup()
