"""Helpers for tests that start real servers (Spark standalone, Thrift Server) on loopback, and
the local-mode lakehouse the cluster test compares with: a date of gold.expense_lines."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyspark
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from cli import whole_steps
from infra.spark import SMALL_DATA_JAVA_OPTIONS
from pipelines.definitions import defs
from sample import close as sample_close
from tests.runs import run_close

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).parent
# The business date the server tests close (a Tuesday: every daily source lands).
DAY = date(2026, 3, 31)
# gold.expense_lines and what it needs: one source's bronze and silver (with its quarantine), the
# fx-rate and roster sources it joins, the enrichment and the publish.
LOCAL_RUN = "*gold_expense_lines"
# The browser tests drive Debian's Chromium with Playwright (not Playwright's own download);
# screenshots go to ARTIFACTS.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "artifacts"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip the test without Chromium; fail instead when ``REQUIRE_BROWSER_TEST`` is set (CI)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("REQUIRE_BROWSER_TEST"):
            pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


# Every JVM the integration tests start (drivers, the standalone master, worker and executor,
# spark-sql, the Thrift Server, beeline; the UI's run worker) lives for a minute on a few hundred
# rows: they run with the small profile's JVM options (infra/spark.py SMALL_DATA_JAVA_OPTIONS:
# C1 only, the parallel collector, the code cache as large as tiered compilation's), the very
# options a driver of the small profile is given, so the two never name different collectors
# (the JVM refuses to start on that). Measured on a shared 2-core machine, A/B in turn: the
# fixture's close of ``DAY`` (8 steps, local[2]) 272 s and 307 s with the JVM's defaults, 149 s
# and 182 s with C1 and the serial collector; spark_sql.sh's one query 33-35 s of CPU, 20-21 s.
# JVM tuning only, like SPARK_PROFILE=small: the code under test and its results are unchanged.
SHORT_JVM_OPTIONS = " ".join(SMALL_DATA_JAVA_OPTIONS)


def project_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        SPARK_HOME=str(SPARK_HOME),
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP="127.0.0.1",
    )
    env.pop("OPENAI_API_KEY", None)
    env.pop("DAGSTER_HOME", None)  # runs go to an ephemeral instance, not the project's
    # The processes under test run on a few rows: the small-data profile, on a cluster too.
    env["SPARK_PROFILE"] = "small"
    env.pop("SPARK_CONF", None)
    env["JAVA_TOOL_OPTIONS"] = f"{env.get('JAVA_TOOL_OPTIONS', '')} {SHORT_JVM_OPTIONS}".strip()
    env.update(overrides)
    return env


def close_command(day: date, select: str) -> list[str]:
    """``cli run`` for one date of ``select`` (a few steps: the servers, not the whole close, are
    under test here)."""
    return [
        sys.executable, "-m", "cli", "run",
        "--date", day.isoformat(), "--days", "1", "--select", select,
    ]  # fmt: skip


@contextmanager
def background(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` in the background for the block, then stop it and its children."""
    with log.open("w") as out:
        process = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 15)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, 9)


def write_sample(root: Path) -> None:
    """The landing zone (and answer keys) of ``DAY``: small, and the same for every root."""
    sample_close.generate_close(
        root,
        DAY,
        DAY,
        seed=5,
        gl_lines_per_day=150,
        employees=30,
        expense_rows=120,
        with_documents=False,  # gold.expense_lines and what it needs: no documents
    )


def run_command(cmd: list[str], env: dict[str, str], log: Path) -> None:
    """Run ``cmd`` in the project to the end, its output in ``log``; it must succeed."""
    done = subprocess.run(cmd, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="session")
def local_lakehouse(tmp_path_factory: pytest.TempPathFactory, spark) -> Path:
    """``DAY`` of gold.expense_lines and what it needs (``LOCAL_RUN``), closed in local mode: the
    definitions' job in this process, on the test session's Spark (``local[2]``).

    Read-only for its users: the cluster test compares a cluster run with it and starts from its
    landing zone and reference silver.
    """
    root = tmp_path_factory.mktemp("local") / "lakehouse"
    write_sample(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_ROOT", str(root))
    mp.delenv("OPENAI_API_KEY", raising=False)
    try:
        result = run_close(
            {
                ASSET_PARTITION_RANGE_START_TAG: DAY.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: DAY.isoformat(),
            },
            # Resolved as ``cli run --select`` resolves it.
            asset_selection=sorted(whole_steps(LOCAL_RUN).resolve(defs.resolve_asset_graph())),
        )
        assert result.success, [e.step_key for e in result.get_step_failure_events()]
    finally:
        mp.undo()
    return root
