"""The same code on a Spark cluster: a standalone master and worker on loopback.

The enrichment of one business date of expense lines and its publication (staging_expense_lines:
the redaction pandas UDF and the provider in ``mapInPandas``, in Python workers on the cluster's
executor, the quality gate; then gold_expense_lines) runs through the CLI with
``SPARK_MASTER=spark://127.0.0.1:<port>``, reading silver (Delta) and writing staging, gold and the
ops ledgers (Delta) from the cluster. Its staging and gold must equal the local-mode result
(values and enrichment; not this run's timings): the session's ``published_lakehouse``, which the
Thrift test queries too, closed the same date from the landing files in local mode.

Only those two steps run on the cluster, on a copy of the local run's silver tables: the steps
before them (landing files to bronze and silver) are Spark SQL with no Python of their own to ship
to executors, and run end to end in ``tests/e2e/``, as do the reconciliations.
"""

import shutil
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.integration.conftest import (
    DAY,
    SPARK_HOME,
    background,
    close_command,
    free_port,
    project_env,
    run_command,
    wait_for_port,
)

pytestmark = pytest.mark.slow

# The steps the cluster runs: the enrichment (Python on the executors) and the publish.
SELECT = "key:staging_expense_lines or key:gold_expense_lines"
# This run's timings and costs (and whether an answer came from the cache this time).
RUN_SPECIFIC = {"latency_ms", "source", "tokens_in", "tokens_out", "cost_usd", "attempts"}
COMPARED = ["gold/expense_lines", "staging/expense_lines"]


def _rows(root: Path, table: str) -> list[tuple]:
    data = DeltaTable(str(root / table)).to_pyarrow_table()
    columns = [c for c in data.column_names if c not in RUN_SPECIFIC]
    return sorted(zip(*(data.column(c).to_pylist() for c in columns), strict=True), key=repr)


def test_one_date_on_a_standalone_cluster_equals_local_mode(tmp_path, published_lakehouse):
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
        str(tmp_path / "work"),
    ]
    # The landing zone and silver of the local run, not its ops ledgers or catalog: with the
    # recorded input versions the run would skip the date as unchanged, and with the LLM cache
    # no record would reach the provider on the executors.
    cluster_root = tmp_path / "cluster"
    for layer in ("landing", "silver"):
        shutil.copytree(published_lakehouse / layer, cluster_root / layer)
    assert not (cluster_root / "gold").exists()
    with background(master_cmd, env, tmp_path / "master.log") as master:
        wait_for_port(master_port, master)
        with background(worker_cmd, env, tmp_path / "worker.log") as worker:
            wait_for_port(worker_port, worker)
            run_command(
                close_command(DAY, SELECT),
                project_env(LAKEHOUSE_ROOT=str(cluster_root), SPARK_MASTER=url),
                tmp_path / "cluster-run.log",
            )
    master_log = (tmp_path / "master.log").read_text()
    assert "Registered app" in master_log or "Registering app" in master_log
    # The worker launched an executor for the run (work/<app id>/<executor id>/): the tasks, and
    # the Python workers of the pandas UDFs, ran there, not in the driver.
    assert list((tmp_path / "work").glob("app-*/*/stderr")), "no executor was launched"

    gold = _rows(cluster_root, "gold/expense_lines")
    assert len(gold) > 100
    for table in COMPARED:
        assert _rows(cluster_root, table) == _rows(published_lakehouse, table), table
