"""The same code on a Spark cluster: a standalone master and worker on loopback.

One business date of gold.expense_lines (landing files, bronze, silver with FX, enrichment in
Python workers on the cluster's executor, the quality gate, gold) runs through the CLI with
``SPARK_MASTER=spark://127.0.0.1:<port>``, and gold must equal the local-mode result (values and
enrichment; not this run's timings). The reconciliations are Spark SQL only, with nothing of
their own to ship to executors; they run end to end in ``tests/test_close.py``.
"""

import subprocess
from datetime import date

import pytest
from deltalake import DeltaTable

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
# This run's timings and costs, and the landing file's path (each run has its own root).
RUN_SPECIFIC = {
    "latency_ms",
    "source",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "attempts",
    "_source_file",
}


def _run_date(root, master: str, log) -> None:
    sample_close.generate_close(
        root, DAY, DAY, seed=5, gl_lines_per_day=150, employees=30, expense_rows=120
    )
    env = project_env(LAKEHOUSE_ROOT=str(root), SPARK_MASTER=master)
    done = subprocess.run(
        close_command(DAY), env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    log.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]


def _gold(root, name: str = "expense_lines") -> list[tuple]:
    table = DeltaTable(str(root / "gold" / name)).to_pyarrow_table()
    columns = [c for c in table.column_names if c not in RUN_SPECIFIC]
    return sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def test_one_date_on_a_standalone_cluster_equals_local_mode(tmp_path):
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
    with background(master_cmd, env, tmp_path / "master.log") as master:
        wait_for_port(master_port, master)
        with background(worker_cmd, env, tmp_path / "worker.log") as worker:
            wait_for_port(worker_port, worker)
            _run_date(tmp_path / "cluster", url, tmp_path / "cluster-run.log")
    assert (
        "Registered app" in (tmp_path / "master.log").read_text()
        or "Registering app" in (tmp_path / "master.log").read_text()
    )
    _run_date(tmp_path / "local", "local[2]", tmp_path / "local-run.log")
    cluster, local = _gold(tmp_path / "cluster"), _gold(tmp_path / "local")
    assert len(cluster) > 100
    assert cluster == local
