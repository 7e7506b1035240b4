"""``make setup`` installs the locked packages with their bytecode compiled (scripts/bootstrap.sh):
with PYTHONDONTWRITEBYTECODE set, as on CI's machines, Python would otherwise compile every module
it imports from source at each start of a run, a test worker or a test's child process."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("module", ["dagster", "pyspark", "great_expectations", "pandas"])
def test_installed_packages_have_their_bytecode(module: str) -> None:
    if not Path(sys.prefix, ".synced-bytecode").exists():
        pytest.skip("not the project's .venv (make setup)")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    cached = importlib.util.cache_from_source(spec.origin)
    assert os.path.exists(cached), f"{module} has no compiled bytecode at {cached}: run make setup"
