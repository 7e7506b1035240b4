"""The Spark session, with Delta Lake's SQL extension and catalog and a persistent metastore."""

import hashlib
import os
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr
from pyspark.sql import SparkSession

from infra.jars import delta_jar_paths, jar_cache_dir
from infra.settings import (
    PROJECT_ROOT,
    audit_window_properties,
    lakehouse_root,
    spark_conf_overrides,
    spark_driver_memory,
    spark_master,
    spark_profile,
)
from transforms.recon.common import Runner

T = TypeVar("T")
LOG4J_CONFIG = PROJECT_ROOT / "conf" / "log4j2.properties"

# What reads that may not need Spark take: a session, or a function that builds (or returns) one
# when called. A local lakehouse's ledgers and Delta logs are read without Spark, so a step that
# finds every date unchanged never calls it, and a run that computes nothing never starts the JVM;
# an object store reads through Spark and calls it. ``SparkResource.get_session`` is one.
SessionSource = Callable[[], SparkSession]


def session_of(spark: SparkSession | SessionSource) -> SparkSession:
    """The session of ``spark``: itself, or the one its source builds now."""
    return spark if isinstance(spark, SparkSession) else spark()


# The ``small`` profile (``SPARK_PROFILE``; the default on a local master): Spark tuned for a few
# thousand rows a date. Compiling generated code for each of the reconciliations' hundreds of
# operators costs more than interpreting them (a carry-forward test took 8.5 s per collect with
# code generation and adaptive execution, 5 s without; `make run --days 1` took 322 s with
# Spark's defaults and 237 s with these); one shuffle partition, no UI. A million GL lines a date
# wants the ``large`` profile (Spark's defaults), as `make bench-close` sets.
SMALL_DATA_CONF = {
    "spark.sql.shuffle.partitions": "1",
    "spark.ui.enabled": "false",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
    # PySpark records the Python call site of every Column function it builds (a stack walk and
    # about five JVM round trips each) so that a runtime error in a query names the Python line
    # that built the failing expression. Building the review queue's candidates made 17,900 round
    # trips with it and 6,000 without (2.0 s -> 1.0 s). Off here: an error still carries its
    # Python traceback and the expression, not the call site; SPARK_CONF can turn it back on.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
}


# The small profile's JVM: C1 compilation only and the parallel (throughput) collector. A few-row
# close spends its driver's CPU on planning thousands of small queries, where C2's compilation
# threads compete with the work for two cores and rarely pay back, and so do G1's concurrent
# threads. A Spark test file took 192 s and 133 s with C1 and the serial collector against 269 s
# and 204 s with the JVM's defaults (alternating runs on a shared 2-core machine); the
# integration tests' close 149-182 s against 272-307 s. The serial collector then stopped every
# thread of a one-date close for 11 s (252 young and 16 full collections of a heap growing to
# 1.6 GB); the parallel one does the same pauses on both cores: the close took 129 s and 129 s
# against 134 s and 139 s with the serial one (alternating runs, idle 2-core machine,
# 2026-12-07). The ``large`` profile keeps the JVM's defaults (C2 pays back at a million rows), and
# so does a JVM that lives long (``long_lived``: the Thrift Server). The test suite's sessions
# (one per worker, about 18 minutes each) were long-lived too until C1 was measured again with
# the code cache below: the suite took 1,090 s with C1 against 1,138 s with C2, whose compiler
# threads were half of the JVM's CPU (tests/conftest.py).
# C1 alone gets a 48 MB code cache by default (tiered compilation gets 240 MB); a close compiles
# more than that within its first minute, and a full cache disables the compiler for the rest of
# the run ("CodeCache is full. Compiler has been disabled": everything after it interpreted), so
# the cache is the tiered size.
SMALL_DATA_JAVA_OPTIONS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseParallelGC",
    "-XX:ReservedCodeCacheSize=240m",
)


def class_archive_path() -> Path:
    """Where the driver's class archive (``scripts/build_class_archive.py``) is kept: beside the
    Delta jars of the installed pyspark / delta-spark, one per Java installation."""
    from importlib.metadata import version

    import pyspark

    # Spark's launcher runs $JAVA_HOME/bin/java, else the java on PATH.
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java") or "java"
    key = hashlib.sha256(os.path.realpath(java).encode()).hexdigest()[:12]
    folder = jar_cache_dir(None, pyspark.__version__, version("delta-spark"))
    return folder / f"driver-classes-{key}.jsa"


def spark_conf(
    master: str,
    warehouse_dir: str,
    extra_conf: dict[str, str] | None = None,
    long_lived: bool = False,
    use_class_archive: bool = True,
) -> dict[str, str]:
    """Every Spark setting the project runs with: Delta, the metastore, logging, loopback.

    The same settings serve the pipeline, the SQL shell and the Thrift Server. The profile's
    tuning (``SPARK_PROFILE``), then ``extra_conf`` (a caller's) and then ``SPARK_CONF`` (the
    operator's) override them. ``long_lived``: a driver that serves for long keeps the JVM's own
    compiler and collector in the small profile too. ``use_class_archive``: a driver on this
    machine maps the class archive ``make setup`` built (when it exists) instead of loading those
    classes from the jars.
    """
    jars = delta_jar_paths()
    conf = {
        "spark.master": master,
        # Read when the driver JVM starts; Spark's 1 GB default does not hold a close of a million
        # GL lines, and in local mode the executors share this heap.
        "spark.driver.memory": spark_driver_memory(),
        "spark.jars": ",".join(jars),
        # Also on the driver's system classpath: the Thrift Server resolves the Delta catalog
        # before jars added at run time are visible.
        "spark.driver.extraClassPath": os.pathsep.join(jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.warehouse.dir": warehouse_dir,
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Deletion vectors are not read by every engine; analysts read gold with delta-rs and
        # DuckDB too.
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
        # The audit window: each new table keeps its history and the files of its older versions
        # this long (Delta's defaults: 30 days of log, 7 of files). Delta's own check that refuses
        # a VACUUM with a shorter RETAIN stays on (retentionDurationCheck is never disabled).
        **{
            f"spark.databricks.delta.properties.defaults.{key.removeprefix('delta.')}": value
            for key, value in audit_window_properties().items()
        },
        "spark.ui.showConsoleProgress": "false",
        # A local lakehouse is written through Hadoop's raw local file system, not its checksummed
        # one: the checksummed one writes a hidden ``.<name>.crc`` beside every data and log file
        # (202 of a one-date close's 813 files) and, with no native Hadoop library here, starts a
        # ``chmod`` process for each. Delta's own ``_delta_log/*.crc`` (table checksums) are not
        # these and are still written; object stores never had them. Files written before keep
        # their sidecars (VACUUM leaves hidden files).
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.apache.hadoop.fs.local.RawLocalFs",
        # Our Delta logs are small: Delta's default of 50 partitions for rebuilding a table's
        # snapshot costs seconds per write on a small machine.
        "spark.databricks.delta.snapshotPartitions": "4",
        # Spark's 200 is for clusters with hundreds of cores; a cluster sets its own (SPARK_CONF).
        "spark.sql.shuffle.partitions": "4",
        "spark.pyspark.python": sys.executable,
    }
    java_options = [f"-Dlog4j.configurationFile={LOG4J_CONFIG}"]
    if "://" not in warehouse_dir:
        # The embedded metastore lives with the warehouse, not in the current directory.
        derby_home = os.path.join(warehouse_dir, "_metastore")
        java_options.append(f"-Dderby.system.home={derby_home}")
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={derby_home}/metastore_db;create=true"
        )
    # Class data sharing: the classes a driver loads before and during its first queries, parsed
    # and verified once by `make setup` (scripts/build_class_archive.py). A session started and
    # its first Delta write and read done: 9.4 s without, 5.7 s with it (2 cores, 2026-12-07). A
    # JVM that does not match the archive (another build, another class path) ignores it.
    archive = class_archive_path() if use_class_archive else None
    if archive is not None and archive.is_file():
        java_options.append(f"-XX:SharedArchiveFile={archive}")
    small = spark_profile(master) == "small"
    if small and not long_lived:
        java_options.extend(SMALL_DATA_JAVA_OPTIONS)
    conf["spark.driver.extraJavaOptions"] = " ".join(java_options)
    if small:
        conf.update(SMALL_DATA_CONF)
    if master.startswith("local"):
        # Everything stays on loopback: a local run has no business on other interfaces.
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        # The Python workers fork from a daemon that has the UDFs' modules imported
        # (infra/spark_daemon.py). Local only: a cluster's executors may not have this package.
        conf["spark.python.daemon.module"] = "infra.spark_daemon"
    conf.update(extra_conf or {})
    conf.update(spark_conf_overrides())
    return conf


def build_spark_session(
    master: str,
    warehouse_dir: str,
    app_name: str = "finance-hr-lakehouse",
    extra_conf: dict[str, str] | None = None,
    long_lived: bool = False,
) -> SparkSession:
    """Build (or reuse) a Delta-enabled SparkSession.

    Args:
        master: Spark master URL (``local[*]``, ``spark://host:7077``...).
        warehouse_dir: where managed tables and the embedded Derby metastore live.
        app_name: the Spark application name.
        extra_conf: further Spark settings, e.g. test tuning.
        long_lived: the driver serves for long (``spark_conf``).
    """
    conf = spark_conf(master, warehouse_dir, extra_conf, long_lived)
    # Python workers must run the same interpreter (and packages) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if "://" not in warehouse_dir:
        Path(warehouse_dir).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()


def lakehouse_session(
    master: str = "", warehouse_dir: str = "", shuffle_partitions: int | None = None
) -> SparkSession:
    """The pipeline's session on ``LAKEHOUSE_ROOT`` (the process's own when it has one):
    ``SPARK_MASTER`` and the lakehouse's warehouse unless given."""
    root = lakehouse_root()
    return build_spark_session(
        master=master or spark_master(),
        warehouse_dir=warehouse_dir or f"{root.rstrip('/')}/_warehouse",
        extra_conf=(
            {"spark.sql.shuffle.partitions": str(shuffle_partitions)} if shuffle_partitions else {}
        ),
    )


# Independent Spark actions of one step (``in_threads``) at once: on two cores, the planning of one
# runs beside another's job.
TASK_THREADS = 3


def in_threads(workers: int = TASK_THREADS) -> Runner:
    """A ``Runner`` that runs a step's independent tasks in up to ``workers`` threads.

    Spark takes jobs from several threads of one driver, and each thread plans its own queries, so
    tasks that each plan and run small jobs (the close's reconciliations, one table's staging
    beside another's) overlap instead of queueing on one thread. The results come back in the
    tasks' order; the first task that raised raises here, after the others have ended.
    """

    def run(tasks: Sequence[Callable[[], T]]) -> list[T]:
        if len(tasks) <= 1 or workers <= 1:
            return [task() for task in tasks]
        with ThreadPoolExecutor(min(workers, len(tasks)), thread_name_prefix="step-task") as pool:
            futures = [pool.submit(task) for task in tasks]
            wait(futures)
            return [future.result() for future in futures]

    return run


# Steps of a run ask for the session at once: one builds it, the others wait and share it.
_BUILD_LOCK = threading.Lock()


class SparkResource(ConfigurableResource):
    """A Delta-enabled Spark session; the master comes from ``SPARK_MASTER``, the tuning from
    ``SPARK_PROFILE`` (``shuffle_partitions`` overrides the profile's when set).

    The session is built on first use of ``session`` (or ``get_session``), not when the run
    starts: a run whose steps all find their dates unchanged reads only Delta logs and ledgers
    (delta-rs on a local lakehouse) and never starts the JVM. Steps run in threads
    (infra/executor.py): the first use builds it once, under a lock, and the others wait for it.
    """

    master: str = ""
    warehouse_dir: str = ""
    shuffle_partitions: int | None = None

    _session: SparkSession | None = PrivateAttr(default=None)
    _in_run: bool = PrivateAttr(default=False)
    _builds: int = PrivateAttr(default=0)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._in_run = True

    def _build(self) -> SparkSession:
        return lakehouse_session(self.master, self.warehouse_dir, self.shuffle_partitions)

    @property
    def built(self) -> bool:
        """Whether this run has built (or been given) its session yet."""
        return self._session is not None

    @property
    def builds(self) -> int:
        """How many times this resource built a session (0 or 1 in a run)."""
        return self._builds

    def get_session(self) -> SparkSession:
        """The run's session, built on first use (thread-safe): a ``SessionSource``."""
        session = self._session
        if session is not None:
            return session
        if not self._in_run:
            raise RuntimeError("SparkResource used outside a Dagster run; call build_spark_session")
        with _BUILD_LOCK:
            if self._session is None:
                self._session = self._build()
                self._builds += 1
            return self._session

    @property
    def session(self) -> SparkSession:
        """The active session (built on first use)."""
        return self.get_session()
