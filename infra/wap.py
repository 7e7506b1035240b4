"""Write-audit-publish on Delta: the one gate every gold table goes through.

1. ``stage``: write the candidate partition to ``staging.<table>`` once.
2. ``audit``: validate the staged partition, at that Delta version, with the table's suite.
3. ``publish``: only if the audit of that exact version passed, replace the date in
   ``gold.<table>`` in one Delta commit and record it in ``ops.wap_ledger``.
"""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from expectations.runner import ValidationReport, validate
from expectations.suite import Suite
from infra.lakehouse import LakehouseResource, TableRef

WAP_LEDGER = TableRef("ops", "wap_ledger")
VALIDATION_RESULTS = TableRef("ops", "validation_results")
_RESULTS_SCHEMA = (
    "suite string, table string, business_date date, table_version long, rule string, "
    "severity string, success boolean, rows_checked long, unexpected_count long, "
    "offending_keys string, observed_value string, run_id string, at timestamp"
)
_LEDGER_SCHEMA = (
    "table string, business_date date, event string, staged_version long, passed boolean, "
    "rules_failed string, gold_version long, run_id string, at timestamp"
)


class PublishRefusedError(RuntimeError):
    """The staged partition has not passed its audit; gold is left as it was."""


@dataclass(frozen=True)
class GoldTable:
    """A gold table, its staging twin and the Delta constraints it must always meet."""

    name: str
    not_null: tuple[str, ...] = ()
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def staging(self) -> TableRef:
        """Where candidate partitions wait for their audit."""
        return TableRef("staging", self.name)

    @property
    def gold(self) -> TableRef:
        """What analysts query."""
        return TableRef("gold", self.name)


def _ledger(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, business_date: date, **row
) -> None:
    record = {
        "table": table.name,
        "business_date": business_date,
        "event": row["event"],
        "staged_version": row.get("staged_version"),
        "passed": row.get("passed"),
        "rules_failed": row.get("rules_failed"),
        "gold_version": row.get("gold_version"),
        "run_id": row.get("run_id"),
        "at": datetime.now(UTC).replace(tzinfo=None),
    }
    df = spark.createDataFrame([record], _LEDGER_SCHEMA)
    df.write.format("delta").mode("append").save(lakehouse.path(WAP_LEDGER))
    lakehouse.register(spark, WAP_LEDGER)


def record_validation(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: TableRef,
    business_date: date,
    table_version: int,
    report: ValidationReport,
    run_id: str,
) -> None:
    """Append every rule's verdict, with the offending keys, to ``ops.validation_results``."""
    at = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "suite": report.suite,
            "table": table.qualified,
            "business_date": business_date,
            "table_version": table_version,
            "rule": r.name,
            "severity": r.severity,
            "success": r.success,
            "rows_checked": r.element_count,
            "unexpected_count": r.unexpected_count,
            "offending_keys": json.dumps(r.offending_keys, default=str)
            if r.offending_keys
            else None,
            "observed_value": None if r.observed_value is None else str(r.observed_value),
            "run_id": run_id,
            "at": at,
        }
        for r in report.results
    ]
    df = spark.createDataFrame(rows, _RESULTS_SCHEMA)
    df.write.format("delta").mode("append").partitionBy("business_date").save(
        lakehouse.path(VALIDATION_RESULTS)
    )
    lakehouse.register(spark, VALIDATION_RESULTS)


def stage(
    lakehouse: LakehouseResource, candidate: DataFrame, table: GoldTable, business_date: date
) -> int:
    """Write the candidate partition to staging once; return the staged Delta version."""
    return lakehouse.write_partition(candidate, table.staging, business_date)


def audit(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: GoldTable,
    business_date: date,
    staged_version: int,
    suite: Suite,
    run_id: str,
) -> ValidationReport:
    """Validate the staged partition as of ``staged_version`` and record the verdict."""
    staged = lakehouse.read_partition(spark, table.staging, business_date, staged_version)
    report = validate(staged, suite, lakehouse.data_docs_dir)
    record_validation(
        lakehouse, spark, table.staging, business_date, staged_version, report, run_id
    )
    _ledger(
        lakehouse,
        spark,
        table,
        business_date,
        event="audited",
        staged_version=staged_version,
        passed=report.passed,
        rules_failed=",".join(r.name for r in report.results if not r.success) or None,
        run_id=run_id,
    )
    return report


def latest_audit(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, business_date: date
) -> tuple[int, bool] | None:
    """``(staged_version, passed)`` of the latest audit of a date, or None if never audited."""
    if not lakehouse.exists(spark, WAP_LEDGER):
        return None
    row = (
        lakehouse.read(spark, WAP_LEDGER)
        .where(
            (F.col("table") == table.name)
            & (F.col("business_date") == F.lit(business_date))
            & (F.col("event") == "audited")
        )
        .orderBy(F.col("at").desc(), F.col("staged_version").desc())
        .select("staged_version", "passed")
        .first()
    )
    return None if row is None else (int(row["staged_version"]), bool(row["passed"]))


def _ensure_gold(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, schema
) -> None:
    if lakehouse.exists(spark, table.gold):
        return
    # Constraints go on before the first row, so no write can ever slip past them.
    fields = [
        StructField(f.name, f.dataType, nullable=f.name not in table.not_null)
        for f in schema.fields
    ]
    (
        DeltaTable.createIfNotExists(spark)
        .location(lakehouse.path(table.gold))
        .addColumns(StructType(fields))
        .partitionedBy("business_date")
        .execute()
    )
    lakehouse.register(spark, table.gold)
    for name, expression in table.checks:
        spark.sql(f"ALTER TABLE {table.gold.qualified} ADD CONSTRAINT {name} CHECK ({expression})")


def publish(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: GoldTable,
    business_date: date,
    run_id: str,
) -> tuple[int, int]:
    """Publish the latest audited staging version of a date to gold, if its audit passed.

    Returns ``(staged_version, gold_version)``. Raises ``PublishRefusedError`` otherwise.
    """
    verdict = latest_audit(lakehouse, spark, table, business_date)
    if verdict is None:
        raise PublishRefusedError(f"{table.staging.qualified} {business_date} was never audited")
    staged_version, passed = verdict
    if not passed:
        raise PublishRefusedError(
            f"{table.staging.qualified} {business_date} version {staged_version} failed its audit; "
            f"gold.{table.name} is unchanged"
        )
    staged = lakehouse.read_partition(spark, table.staging, business_date, staged_version)
    _ensure_gold(lakehouse, spark, table, staged.schema)
    gold_version = lakehouse.write_partition(staged, table.gold, business_date)
    _ledger(
        lakehouse,
        spark,
        table,
        business_date,
        event="published",
        staged_version=staged_version,
        passed=True,
        gold_version=gold_version,
        run_id=run_id,
    )
    return staged_version, gold_version


@dataclass
class Published:
    """What publishing a run's dates did: staged version published per date, rows, last version."""

    staged_versions: dict[str, int]
    rows: int
    gold_version: int | None


def publish_dates(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: GoldTable,
    business_dates: list[date],
    run_id: str,
) -> Published:
    """Publish each date in turn; the first refused date raises ``PublishRefusedError``."""
    done = Published({}, 0, None)
    for day in business_dates:
        staged_version, done.gold_version = publish(lakehouse, spark, table, day, run_id)
        done.staged_versions[day.isoformat()] = staged_version
        metrics = lakehouse.last_commit_metrics(spark, table.gold)
        done.rows += int(metrics.get("numOutputRows", 0))
    return done
