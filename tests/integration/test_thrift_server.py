"""Analysts' SQL paths: ``make sql`` (spark-sql), and the Thrift Server queried with beeline.

The session's ``published_lakehouse``: a date of gold.expense_lines published by the pipeline (in a
subprocess, which has exited: the embedded metastore admits one driver at a time; only that table
and what it needs, since the catalog, not the close, is under test here) and registered in the
catalog under ``LAKEHOUSE_ROOT/_warehouse``. ``scripts/spark_sql.sh`` and then
``scripts/thrift_server.sh`` open that catalog, and each answers the analysts' query.
"""

import json
import subprocess

import pytest

from tests.integration.conftest import (
    DAY,
    PROJECT_ROOT,
    SPARK_HOME,
    background,
    free_port,
    project_env,
    wait_for_port,
)

pytestmark = pytest.mark.slow


def test_beeline_queries_gold_through_the_thrift_server(tmp_path, published_lakehouse):
    root = published_lakehouse
    key = json.loads((root / "answer_keys" / "expense_lines" / f"{DAY}.json").read_text())
    expected = str(len(key["valid_keys"]))
    env = project_env(LAKEHOUSE_ROOT=str(root), SPARK_MASTER="local[2]")

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
    assert spark_sql.stdout.split() == ["n", expected]

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
    assert lines[-1] == expected
