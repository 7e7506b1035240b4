"""Build the Spark driver's class archive (JVM class data sharing) for this machine's Java.

A Spark driver with Delta, Hive and Catalyst loads some 15,000 classes before its first query and
thousands more as the first queries are planned; the JVM reads, parses and verifies each one from
its jar. A dynamic CDS archive (``-XX:ArchiveClassesAtExit``) holds those classes already parsed
and verified; a driver started with ``-XX:SharedArchiveFile`` maps it instead (``infra/spark.py``
adds the flag when the archive exists). The archive belongs to one JVM build and one class path:
a JVM that does not match it ignores it and loads classes from the jars as before, so a stale
archive costs the saving, never correctness.

The archive is written by a driver that runs a small Delta workload (writes, a replaceWhere, a
merge, partition-filtered reads, joins and aggregations, a pandas batch UDF, the metastore) and
then exits: the classes that workload loads are the ones archived.

    .venv/bin/python scripts/build_class_archive.py [--if-missing] [--force]   # make setup
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from infra.spark import class_archive_path  # noqa: E402

# How long the driver may take to write the archive once the workload has ended.
DUMP_TIMEOUT_S = 180


def workload(archive: str) -> None:
    """Run in a child process: a driver that writes ``archive`` when it exits."""
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    from infra.spark import spark_conf

    # Python workers run this interpreter (as infra.spark.build_spark_session arranges).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    root = Path(tempfile.mkdtemp(prefix="class-archive-"))
    conf = spark_conf("local[2]", str(root / "warehouse"), use_class_archive=False)
    conf["spark.driver.extraJavaOptions"] += f" -XX:ArchiveClassesAtExit={archive}"
    builder = SparkSession.builder.appName("class-archive")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    # The parent waits for this process to end: it writes the archive as it exits.
    print(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid(), flush=True)
    from delta.tables import DeltaTable

    path = str(root / "table")
    rows = spark.range(200).select(
        (F.col("id") % 3).cast("int").alias("part"),
        F.col("id"),
        F.concat(F.lit("row "), F.col("id").cast("string")).alias("text"),
        (F.col("id") * 1.5).cast("decimal(18,2)").alias("amount"),
        F.current_date().alias("business_date"),
    )
    rows.write.format("delta").partitionBy("part").save(path)
    rows.where("part = 1").write.format("delta").mode("overwrite").option(
        "replaceWhere", "part = 1"
    ).save(path)
    DeltaTable.forPath(spark, path).alias("t").merge(
        rows.where("id < 10").alias("s"), "t.id = s.id"
    ).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    table = spark.read.format("delta").load(path)
    (
        table.where(F.col("part").isin(0, 2))
        .join(table.groupBy("part").agg(F.sum("amount").alias("total")), "part")
        .withColumn("rank", F.row_number().over(Window.partitionBy("part").orderBy("id")))
        .localCheckpoint()
        .collect()
    )

    def upper(batches):
        for batch in batches:
            yield batch.assign(text=batch["text"].str.upper())

    table.mapInPandas(upper, table.schema).toPandas()
    spark.sql("CREATE DATABASE IF NOT EXISTS archive")
    spark.sql(f"CREATE TABLE archive.t USING DELTA LOCATION '{path}'")
    spark.sql("SELECT part, count(*) FROM archive.t GROUP BY part").collect()
    DeltaTable.forPath(spark, path).history().collect()


def build(target: Path) -> bool:
    """Write ``target``; True when the JVM wrote an archive."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, __file__, "--workload", str(partial)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    lines, pid = child.stdout.split(), None
    if lines and lines[0].isdigit():
        # The driver outlives its Python process by the time it takes to write the archive.
        pid = int(lines[0])
        while _alive(pid) and time.monotonic() - started < DUMP_TIMEOUT_S:
            time.sleep(0.2)
    if child.returncode != 0:
        partial.unlink(missing_ok=True)
        print(f"class archive: the workload failed:\n{child.stderr[-2000:]}", file=sys.stderr)
        return False
    if pid is None or _alive(pid) or not partial.exists():
        partial.unlink(missing_ok=True)
        print("class archive: the JVM wrote none; drivers load classes from the jars")
        return False
    partial.replace(target)
    size = target.stat().st_size / 2**20
    print(f"class archive: {target} ({size:.0f} MiB) in {time.monotonic() - started:.0f} s")
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--if-missing", action="store_true", help="keep an existing archive")
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload:
        workload(args.workload)
        return 0
    target = class_archive_path()
    if args.if_missing and target.exists():
        return 0
    build(target)
    # No archive is not an error: Spark runs without it, a few seconds slower to start.
    return 0


if __name__ == "__main__":
    sys.exit(main())
