"""Bronze and silver assets for every declared finance and HR source, from its contract.

Adding a source is declaring its contract (``transforms/contracts.py``) and its own rules
(``transforms/sources.py``): this module builds a bronze asset (files as landed, drift reported) and
a silver asset (typed, converted to USD, deduplicated, rejected rows in ``silver.quarantine`` with a
reason, audited by the source's suite) for each. Expense lines keep their own module.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, business_dates, daily_partitions
from expectations.runner import ValidationReport, validate
from expectations.sources import silver_rule_specs, silver_source_suite
from expectations.suite import Suite
from infra import wap
from infra.checks import suite_check_results, suite_check_specs, validation_metadata
from infra.lakehouse import LakehouseResource, TableRef
from infra.spark import SparkResource
from transforms import contracts as c
from transforms.conform import day_rates
from transforms.deliveries import FINGERPRINT_COLUMNS, delivery_fingerprints, repeated_deliveries
from transforms.hr_cases import roster_names
from transforms.ingest import with_ingestion_metadata
from transforms.quarantine import quarantined_rows
from transforms.sources import classify_source, silver_source

QUARANTINE = TableRef("silver", "quarantine")
# One row per landed file per source and date: rows and content fingerprint (repeat detection).
LANDED_FILES = TableRef("ops", "landed_files")
FX_SILVER = TableRef("silver", c.FX_RATES.name)
# The sources built here, in dependency order (FX first: the others convert with it).
SOURCES = (
    c.FX_RATES,
    c.GL_JOURNAL_LINES,
    c.AP_INVOICES,
    c.AP_PAYMENTS,
    c.BANK_STATEMENT_LINES,
    c.HRIS_ROSTER,
    c.PAYROLL_REGISTER,
    c.HR_CASES,
)


_ROSTER = TableRef("silver", c.HRIS_ROSTER.name)


def rows_written(lakehouse: LakehouseResource, session: SparkSession, table: TableRef) -> int:
    """Rows the table's latest commit wrote."""
    return int(lakehouse.last_commit_metrics(session, table).get("numOutputRows", 0))


def roster_names_on(lakehouse: LakehouseResource, session: SparkSession, day: date) -> list[str]:
    """The names on the day's HRIS roster (none before the roster first lands): redacted."""
    if not lakehouse.exists(session, _ROSTER):
        return []
    return roster_names(lakehouse.read_partition(session, _ROSTER, day))


def ingest_day(
    session: SparkSession, lakehouse: LakehouseResource, contract: c.SourceContract, day: date
) -> tuple[int, dict]:
    """Land one date of a source in bronze; return rows written and the drift report.

    Each landed file's rows and content fingerprint go to ``ops.landed_files``, so silver can tell
    a file that repeats an earlier delivery.
    """
    raw, drift = lakehouse.read_landing_checked(session, contract, day)
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    table = TableRef("bronze", contract.name)
    version = lakehouse.write_partition(
        raw.transform(with_ingestion_metadata(contract, day, ingested_at)), table, day
    )
    rows = rows_written(lakehouse, session, table)
    files = (
        lakehouse.read_partition(session, table, day, version)
        .transform(delivery_fingerprints())
        .select(
            F.lit(contract.name).alias("source"),
            *FINGERPRINT_COLUMNS,
            F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        )
    )
    lakehouse.write_partition(files, LANDED_FILES, day, {"source": contract.name})
    return rows, drift.as_metadata()


def repeated_files_on(
    session: SparkSession, lakehouse: LakehouseResource, contract: c.SourceContract, day: date
) -> DataFrame | None:
    """The date's files whose content an earlier file of the source already brought.

    None when there are none (the common case: classification then needs no join).
    """
    if contract.deliveries_may_repeat or not lakehouse.exists(session, LANDED_FILES):
        return None
    landed = lakehouse.read(session, LANDED_FILES).where(
        (F.col("source") == contract.name) & (F.col("business_date") <= F.lit(day))
    )
    repeats = repeated_deliveries(landed.select(*FINGERPRINT_COLUMNS))
    found = repeats.where(F.col("business_date") == F.lit(day))
    rows = found.collect()
    return session.createDataFrame(rows, found.schema) if rows else None


@dataclass
class SilverDay:
    """What one date's silver step wrote and concluded."""

    bronze_rows: int
    silver_rows: int
    quarantine_rows: int
    silver_version: int
    reasons: dict[str, int]
    report: ValidationReport


def conform_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    contract: c.SourceContract,
    day: date,
    run_id: str,
) -> SilverDay:
    """Type, check, convert and dedupe one date of bronze into silver + quarantine; audit it."""
    bronze = lakehouse.read_partition(session, TableRef("bronze", contract.name), day)
    rates = None
    if contract.amount_columns:
        rates = day_rates(lakehouse.read_partition(session, FX_SILVER, day), day)
    repeats = repeated_files_on(session, lakehouse, contract, day)
    return write_silver_day(
        session,
        lakehouse,
        contract,
        day,
        bronze.transform(classify_source(contract, day, rates, repeats)),
        silver_source(contract),
        silver_source_suite(contract, day),
        run_id,
    )


def write_silver_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    contract: c.SourceContract,
    day: date,
    classified: DataFrame,
    to_silver: Callable[[DataFrame], DataFrame],
    suite: Suite,
    run_id: str,
) -> SilverDay:
    """Write one date's classified rows to silver and quarantine, count them back, audit silver.

    ``classified`` carries each row's reason code (null when accepted); it is computed once.
    """
    classified = classified.cache()
    silver = TableRef("silver", contract.name)
    version = lakehouse.write_partition(classified.transform(to_silver), silver, day)
    quarantine_version = lakehouse.write_partition(
        classified.transform(quarantined_rows(contract)),
        QUARANTINE,
        day,
        {"source": contract.name},
    )
    classified.unpersist()
    # Conservation is checked on what the tables hold now, not on what the step meant to write.
    bronze_rows = lakehouse.read_partition(session, TableRef("bronze", contract.name), day).count()
    silver_rows = lakehouse.read_partition(session, silver, day, version).count()
    quarantined = lakehouse.read_partition(session, QUARANTINE, day, quarantine_version).where(
        F.col("source") == contract.name
    )
    reasons = quarantined.groupBy("reason_code").count().collect()
    report = validate(
        lakehouse.read_partition(session, silver, day, version), suite, lakehouse.data_docs_dir
    )
    wap.record_validation(lakehouse, session, silver, day, version, report, run_id)
    return SilverDay(
        bronze_rows=bronze_rows,
        silver_rows=silver_rows,
        quarantine_rows=sum(r["count"] for r in reasons),
        silver_version=version,
        reasons={r["reason_code"]: r["count"] for r in reasons},
        report=report,
    )


def _bronze_asset(contract: c.SourceContract) -> AssetsDefinition:
    @asset(
        name=f"bronze_{contract.name}",
        partitions_def=daily_partitions,
        backfill_policy=BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY,
        group_name="bronze",
        kinds={"spark", "delta"},
        description=f"{contract.description} As landed ({contract.file_format}): every declared "
        "column a string, undeclared columns kept in _extra_columns, plus _source_file, "
        "_ingested_at, _row_hash. A missing or retyped required column fails the step with the "
        "drift named.",
    )
    def _bronze(
        context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
    ) -> MaterializeResult:
        rows, drift = {}, {}
        for day in business_dates(context):
            rows[day.isoformat()], report = ingest_day(spark.session, lakehouse, contract, day)
            if report.get("has_drift"):
                drift[day.isoformat()] = report
                context.log.warning(f"{contract.name} {day}: {report.get('description')}")
        table = TableRef("bronze", contract.name)
        return MaterializeResult(
            metadata={
                "rows": sum(rows.values()),
                "rows_by_date": MetadataValue.json(rows),
                "schema_drift": MetadataValue.json(drift or {"none": True}),
                "table": table.qualified,
                "location": lakehouse.path(table),
                "file_format": contract.file_format,
            }
        )

    return _bronze


def _silver_asset(contract: c.SourceContract) -> AssetsDefinition:
    name = f"silver_{contract.name}"
    rules = silver_rule_specs(contract)
    deps = [AssetKey(f"bronze_{contract.name}")]
    if contract.amount_columns:
        deps.append(AssetKey(f"silver_{c.FX_RATES.name}"))

    @asset(
        name=name,
        deps=deps,
        partitions_def=daily_partitions,
        backfill_policy=BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY,
        group_name="silver",
        kinds={"spark", "delta"},
        check_specs=[
            AssetCheckSpec(
                "bronze_rows_conserved",
                asset=name,
                description="bronze rows = silver rows + quarantined rows: nothing dropped.",
                blocking=True,
            ),
            *suite_check_specs(name, rules),
        ],
        description=f"{contract.description} Typed, checked"
        + (", converted to USD at the day's rate" if contract.amount_columns else "")
        + f", one row per {', '.join(contract.key)}; rejected rows in silver.quarantine.",
    )
    def _silver(context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource):
        days = {
            day: conform_day(spark.session, lakehouse, contract, day, context.run_id)
            for day in business_dates(context)
        }
        reasons: dict[str, int] = {}
        for d in days.values():
            for code, count in d.reasons.items():
                reasons[code] = reasons.get(code, 0) + count
        last = days[max(days)]
        yield MaterializeResult(
            metadata={
                "rows": sum(d.silver_rows for d in days.values()),
                "bronze_rows": sum(d.bronze_rows for d in days.values()),
                "quarantined_rows": sum(d.quarantine_rows for d in days.values()),
                "quarantine_reasons": MetadataValue.json(
                    dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
                ),
                "delta_version": last.silver_version,
                "table": f"silver.{contract.name}",
                **validation_metadata([d.report for _, d in sorted(days.items())]),
            }
        )
        unbalanced = {
            str(day): {
                "bronze": d.bronze_rows,
                "silver": d.silver_rows,
                "quarantine": d.quarantine_rows,
            }
            for day, d in days.items()
            if d.bronze_rows != d.silver_rows + d.quarantine_rows
        }
        yield AssetCheckResult(
            asset_key=name,
            check_name="bronze_rows_conserved",
            passed=not unbalanced,
            metadata={"dates_not_conserved": MetadataValue.json(unbalanced)},
        )
        yield from suite_check_results(
            {day: (d.report, d.silver_version) for day, d in days.items()},
            name,
            [rule for rule, _, _ in rules],
        )

    return _silver


source_assets: list[AssetsDefinition] = [
    built for contract in SOURCES for built in (_bronze_asset(contract), _silver_asset(contract))
]
