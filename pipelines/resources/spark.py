"""The Spark session, with Delta Lake's SQL extension and catalog and a persistent metastore."""

import os
import sys
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr
from pyspark.sql import SparkSession

from pipelines.resources.jars import delta_jar_paths
from pipelines.settings import lakehouse_root, spark_master


def build_spark_session(
    master: str,
    warehouse_dir: str,
    app_name: str = "finance-hr-lakehouse",
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Build (or reuse) a Delta-enabled SparkSession.

    Args:
        master: Spark master URL (``local[*]``, ``spark://host:7077``...).
        warehouse_dir: where managed tables and the embedded Derby metastore live.
        app_name: the Spark application name.
        extra_conf: further Spark settings, e.g. test tuning.
    """
    jars = delta_jar_paths()
    # Python workers must run the same interpreter (and packages) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    Path(warehouse_dir).mkdir(parents=True, exist_ok=True) if "://" not in warehouse_dir else None
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.warehouse.dir", warehouse_dir)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
        # Delta's deletion vectors and v2 checkpoints are not read by every engine; analysts read
        # gold with DuckDB and delta-rs too.
        .config("spark.databricks.delta.properties.defaults.enableDeletionVectors", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Our Delta logs are small: Delta's default of 50 partitions for rebuilding a table's
        # snapshot costs seconds per write on a small machine.
        .config("spark.databricks.delta.snapshotPartitions", "4")
    )
    if "://" not in warehouse_dir:
        derby_home = os.path.join(warehouse_dir, "_metastore")
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dderby.system.home={derby_home}"
        ).config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={derby_home}/metastore_db;create=true",
        )
    if master.startswith("local"):
        # Everything stays on loopback: a local run has no business on other interfaces.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()


class SparkResource(ConfigurableResource):
    """A Delta-enabled Spark session; the master comes from ``SPARK_MASTER``."""

    master: str = ""
    warehouse_dir: str = ""
    shuffle_partitions: int = 4

    _session: SparkSession | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        root = lakehouse_root()
        self._session = build_spark_session(
            master=self.master or spark_master(),
            warehouse_dir=self.warehouse_dir or f"{root.rstrip('/')}/_warehouse",
            extra_conf={"spark.sql.shuffle.partitions": str(self.shuffle_partitions)},
        )

    @property
    def session(self) -> SparkSession:
        """The active session (built when the run starts)."""
        if self._session is None:
            raise RuntimeError("SparkResource used outside a Dagster run; call build_spark_session")
        return self._session
