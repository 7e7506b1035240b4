"""What analysts and operators reach on a lakehouse the pipeline closed on a Spark cluster (one
file: its tests run on one worker, so the cluster run is made once).

1. The same code on a Spark cluster: a standalone master and worker on loopback.

One business date of expense lines from its landing file to gold runs through the CLI with
``SPARK_MASTER=spark://127.0.0.1:<port>``, the configuration alone telling it where to run: the
source's bronze and silver steps (typed, converted to USD, its rejected rows in
``silver.quarantine``; its quality checks), the enrichment (staging_expense_lines: the redaction
pandas UDF and the provider in ``mapInPandas``, Arrow batches in Python workers on the cluster's
executor; the quality gate) and the write-audit-publish of gold_expense_lines behind its Great
Expectations gate, reading and writing Delta (and the ops ledgers) from the cluster. Its silver,
quarantine, staging and gold must equal the local-mode result (values and enrichment; not this
run's timings, nor where its lakehouse lives): the session's ``local_lakehouse``, the same date
closed from the same landing files in local mode (the definitions' job on the test session's
Spark).

The fx-rate and roster sources the enrichment joins are the same kind of step as the expense
lines' bronze and silver: the cluster run reads their silver from the local run, and they run
end to end in ``tests/e2e/``, as do the reconciliations.

2. Analysts' SQL paths: ``make sql`` (spark-sql), and the Thrift Server queried with beeline.

The cluster run's lakehouse: its date of gold.expense_lines was published by the pipeline (in a
subprocess, which has exited: the embedded metastore admits one driver at a time) and registered
in the catalog under ``LAKEHOUSE_ROOT/_warehouse``. ``scripts/spark_sql.sh`` and then
``scripts/thrift_server.sh`` open that catalog, and each answers the analysts' query.
"""

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from tests.integration.conftest import (
    DAY,
    PROJECT_ROOT,
    SPARK_HOME,
    background,
    close_command,
    free_port,
    project_env,
    run_command,
    wait_for_port,
)

pytestmark = pytest.mark.slow

# The steps the cluster runs: one source's bronze and silver (with its quarantine), the
# enrichment (Python on the executors) and the publish. ``*gold_expense_lines`` less the fx-rate
# and roster sources, whose silver the cluster run reads from the local run.
SELECT = " or ".join(
    f"key:{step}"
    for step in (
        "bronze_expense_lines",
        "silver_expense_lines",
        "staging_expense_lines",
        "gold_expense_lines",
    )
)
COPIED = ["landing", "silver/fx_rates", "silver/hris_roster"]
# This run's timings and costs (and whether an answer came from the cache this time), and when
# its rows were ingested.
RUN_SPECIFIC = {
    "latency_ms",
    "source",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "attempts",
    "_ingested_at",
}
COMPARED = [
    "silver/expense_lines",
    "silver/quarantine",
    "staging/expense_lines",
    "gold/expense_lines",
]


def _rows(root: Path, table: str) -> list[tuple]:
    """The table's rows, sorted; ``_source_file`` relative to the lakehouse (the two runs' landing
    files are the same files under different roots). Quarantine: the expense lines' rows."""
    data = DeltaTable(str(root / table)).to_pyarrow_table()
    if table == "silver/quarantine":
        data = data.filter(pc.equal(data["source"], "expense_lines"))
    columns = [c for c in data.column_names if c not in RUN_SPECIFIC]
    values = {c: data.column(c).to_pylist() for c in columns}
    values["_source_file"] = [path.replace(str(root), "<root>") for path in values["_source_file"]]
    return sorted(zip(*values.values(), strict=True), key=repr)


@dataclass(frozen=True)
class ClusterRun:
    """The cluster run's lakehouse, and where its master, worker and executor wrote."""

    root: Path
    logs: Path


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory: pytest.TempPathFactory, local_lakehouse: Path) -> ClusterRun:
    """``DAY``'s ``SELECT`` run through the CLI on a standalone master and worker on loopback."""
    logs = tmp_path_factory.mktemp("cluster")
    master_port, worker_port = free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    env = project_env(SPARK_NO_DAEMONIZE="1")
    master_cmd = [
        spark_class,
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        str(master_port),
        "--webui-port",
        str(free_port()),
    ]
    url = f"spark://127.0.0.1:{master_port}"
    worker_cmd = [
        spark_class,
        "org.apache.spark.deploy.worker.Worker",
        url,
        "--host",
        "127.0.0.1",
        "--port",
        str(worker_port),
        "--webui-port",
        str(free_port()),
        "--cores",
        "2",
        "--memory",
        "2g",
        "--work-dir",
        str(logs / "work"),
    ]
    # The landing zone and the fx-rate and roster silver of the local run, not its expense lines'
    # bronze, silver or quarantine, its ops ledgers or catalog: with the recorded input versions
    # the run would skip the date as unchanged, and with the LLM cache no record would reach the
    # provider on the executors.
    root = logs / "lakehouse"
    for path in COPIED:
        shutil.copytree(local_lakehouse / path, root / path)
    assert not (root / "silver" / "quarantine").exists()
    assert not (root / "gold").exists()
    with background(master_cmd, env, logs / "master.log") as master:
        wait_for_port(master_port, master)
        with background(worker_cmd, env, logs / "worker.log") as worker:
            wait_for_port(worker_port, worker)
            run_command(
                close_command(DAY, SELECT),
                project_env(LAKEHOUSE_ROOT=str(root), SPARK_MASTER=url),
                logs / "cluster-run.log",
            )
    return ClusterRun(root, logs)


def test_one_date_on_a_standalone_cluster_equals_local_mode(
    cluster_run: ClusterRun, local_lakehouse: Path
):
    master_log = (cluster_run.logs / "master.log").read_text()
    assert "Registered app" in master_log or "Registering app" in master_log
    # The worker launched an executor for the run (work/<app id>/<executor id>/): the tasks, and
    # the Python workers of the pandas UDFs, ran there, not in the driver.
    assert list((cluster_run.logs / "work").glob("app-*/*/stderr")), "no executor was launched"

    gold = _rows(cluster_run.root, "gold/expense_lines")
    assert len(gold) > 100
    assert _rows(cluster_run.root, "silver/quarantine"), "the sample's rejected lines"
    for table in COMPARED:
        assert _rows(cluster_run.root, table) == _rows(local_lakehouse, table), table


def test_beeline_queries_gold_through_the_thrift_server(
    tmp_path, cluster_run: ClusterRun, local_lakehouse: Path
):
    root = cluster_run.root
    answer_key = local_lakehouse / "answer_keys" / "expense_lines" / f"{DAY}.json"
    key = json.loads(answer_key.read_text())
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
