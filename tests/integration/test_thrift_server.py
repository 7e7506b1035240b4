"""Analysts' SQL paths: ``make sql`` (spark-sql), and the Thrift Server queried with beeline.

A date of gold.expense_lines is published by the pipeline (in a subprocess, which then exits: the
embedded metastore admits one driver at a time; only that table and what it needs, since the
catalog, not the close, is under test here), then ``scripts/thrift_server.sh`` serves the same
catalog and beeline runs the analysts' query over JDBC.
"""

import json
import subprocess
from datetime import date

import pytest

from sample import close as sample_close
from tests.integration.conftest import (
    PROJECT_ROOT,
    SPARK_HOME,
    background,
    close_command,
    free_port,
    project_env,
    wait_for_port,
)

pytestmark = pytest.mark.slow

DAY = date(2026, 3, 31)


def test_beeline_queries_gold_through_the_thrift_server(tmp_path):
    root = tmp_path / "lakehouse"
    sample_close.generate_close(
        root, DAY, DAY, seed=3, gl_lines_per_day=100, employees=20, expense_rows=80
    )
    key = json.loads((root / "answer_keys" / "expense_lines" / f"{DAY}.json").read_text())
    env = project_env(LAKEHOUSE_ROOT=str(root), SPARK_MASTER="local[2]")
    run = subprocess.run(
        close_command(DAY),
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    # The terminal path: make sql QUERY='…' (scripts/spark_sql.sh runs Spark's spark-sql).
    query = (
        "SELECT count(*) AS n FROM gold.expense_lines "
        f"WHERE business_date = DATE'{DAY.isoformat()}'"
    )
    spark_sql = subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "spark_sql.sh")],
        env={**env, "QUERY": query},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert spark_sql.returncode == 0, spark_sql.stderr[-3000:]
    assert spark_sql.stdout.split() == ["n", str(len(key["valid_keys"]))]

    port = free_port()
    server_env = {**env, "THRIFT_PORT": str(port), "THRIFT_HOST": "127.0.0.1"}
    cmd = ["bash", str(PROJECT_ROOT / "scripts" / "thrift_server.sh")]
    with background(cmd, server_env, tmp_path / "thrift.log") as server:
        wait_for_port(port, server, timeout_s=180)
        beeline = subprocess.run(
            [
                str(SPARK_HOME / "bin" / "beeline"),
                "-u",
                f"jdbc:hive2://127.0.0.1:{port}/default",
                "--outputformat=csv2",
                "--silent=true",
                "-e",
                query,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert beeline.returncode == 0, beeline.stderr[-3000:]
    lines = [line for line in beeline.stdout.splitlines() if line.strip()]
    # csv2 output: the header (after beeline's prompt) and the count.
    assert lines[-2].endswith("n")
    assert lines[-1] == str(len(key["valid_keys"]))
