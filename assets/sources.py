"""Bronze and silver assets for every declared finance and HR source, from its contract.

Adding a source is declaring its contract (``transforms/contracts.py``) and its own rules
(``transforms/sources.py``): this module builds a bronze asset (files as landed, drift reported) and
a silver asset (typed, converted to USD, deduplicated, rejected rows in ``silver.quarantine`` with a
reason, audited by the source's suite) for each. Expense lines keep their own module.
"""

from collections.abc import Callable, Sequence
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
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from expectations.runner import ValidationReport, validate_dates
from expectations.sources import silver_rule_specs, silver_source_suite
from expectations.suite import Suite
from infra import versions, wap
from infra.checks import suite_check_results, suite_check_specs, validation_metadata
from infra.lakehouse import LakehouseResource, TableRef
from infra.spark import SparkResource
from transforms import contracts as c
from transforms.conform import rates_on
from transforms.deliveries import FINGERPRINT_COLUMNS, delivery_fingerprints, repeated_deliveries
from transforms.frames import local_frame
from transforms.hr_cases import roster_names_by_date
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


def roster_names_on_dates(
    lakehouse: LakehouseResource, session: SparkSession, days: Sequence[date]
) -> dict[date, list[str]]:
    """The names on each date's HRIS roster (none before the roster first lands): what is
    redacted from that date's text, for all ``days`` in one query."""
    if not lakehouse.exists(session, _ROSTER):
        return {day: [] for day in days}
    return roster_names_by_date(lakehouse.read_dates(session, _ROSTER, list(days)), days)


def union_all(frames: list[DataFrame]) -> DataFrame:
    """The rows of every frame (columns matched by name): one plan for a run's dates."""
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def ingest_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    contract: c.SourceContract,
    days: list[date],
) -> tuple[dict[date, int], dict[date, dict]]:
    """Land a run's dates of a source in bronze in one commit; rows and drift per date.

    Each landed file's rows and content fingerprint go to ``ops.landed_files`` (one commit too),
    so silver can tell a file that repeats an earlier delivery.
    """
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    frames, drift = [], {}
    for day in days:
        raw, report = lakehouse.read_landing_checked(session, contract, day)
        frames.append(raw.transform(with_ingestion_metadata(contract, day, ingested_at)))
        drift[day] = report.as_metadata()
    table = TableRef("bronze", contract.name)
    commit = lakehouse.write_dates(union_all(frames), table, days)
    fingerprints = (
        lakehouse.read_dates(session, table, days, commit.version)
        .transform(delivery_fingerprints())
        .select(
            F.lit(contract.name).alias("source"),
            *FINGERPRINT_COLUMNS,
            F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        )
    )
    # One row per landed file: collected once, it gives the rows per date too.
    files = fingerprints.collect()
    lakehouse.write_rows(
        session, files, fingerprints.schema, LANDED_FILES, days, {"source": contract.name}
    )
    rows = {day: 0 for day in days}
    for f in files:
        rows[f["business_date"]] += f["rows"]
    return rows, drift


def ingest_day(
    session: SparkSession, lakehouse: LakehouseResource, contract: c.SourceContract, day: date
) -> tuple[int, dict]:
    """``ingest_dates`` for one date: rows written and the drift report."""
    rows, drift = ingest_dates(session, lakehouse, contract, [day])
    return rows[day], drift[day]


def repeated_files_in(
    session: SparkSession,
    lakehouse: LakehouseResource,
    contract: c.SourceContract,
    days: list[date],
) -> DataFrame | None:
    """The run's files whose content an earlier file of the source already brought, by date;
    None when there are none (the common case: classification then needs no join)."""
    if contract.deliveries_may_repeat or not lakehouse.exists(session, LANDED_FILES):
        return None
    landed = lakehouse.read(session, LANDED_FILES).where(
        (F.col("source") == contract.name) & (F.col("business_date") <= F.lit(max(days)))
    )
    repeats = repeated_deliveries(landed.select(*FINGERPRINT_COLUMNS))
    found = repeats.where(F.col("business_date").isin([F.lit(d) for d in days]))
    # A few rows at most: collected once, so classification joins a small local frame rather
    # than re-running the fingerprint window over the source's whole history.
    rows = found.collect()
    return local_frame(session, rows, found.schema) if rows else None


@dataclass
class SilverDay:
    """What one date's silver step wrote and concluded."""

    bronze_rows: int
    silver_rows: int
    quarantine_rows: int
    silver_version: int
    reasons: dict[str, int]
    report: ValidationReport


def conform_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    contract: c.SourceContract,
    days: list[date],
    run_id: str,
) -> dict[date, SilverDay]:
    """Type, check, convert and dedupe a run's dates of bronze into silver + quarantine; audit.

    One plan over all the dates: bronze read once for the range, rates joined by date.
    """
    rates = None
    if contract.amount_columns:
        rates = rates_on(lakehouse.read_dates(session, FX_SILVER, days), days)
    classified = lakehouse.read_dates(session, TableRef("bronze", contract.name), days).transform(
        classify_source(contract, rates, repeated_files_in(session, lakehouse, contract, days))
    )
    return write_silver_dates(
        session,
        lakehouse,
        contract,
        days,
        classified,
        silver_source(contract),
        lambda day: silver_source_suite(contract, day),
        run_id,
    )


def conform_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    contract: c.SourceContract,
    day: date,
    run_id: str,
) -> SilverDay:
    """``conform_dates`` for one date."""
    return conform_dates(session, lakehouse, contract, [day], run_id)[day]


def write_silver_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    contract: c.SourceContract,
    days: list[date],
    classified: DataFrame,
    to_silver: Callable[[DataFrame], DataFrame],
    suite_for: Callable[[date], Suite],
    run_id: str,
) -> dict[date, SilverDay]:
    """Write a run's classified rows to silver and quarantine, count them back, audit silver.

    ``classified`` holds the run's rows with each row's reason code (null when accepted); the
    dates are written together (one commit per table) from one cached plan.
    """
    classified = classified.cache()
    silver = TableRef("silver", contract.name)
    version = lakehouse.write_dates(classified.transform(to_silver), silver, days).version
    quarantine_version = lakehouse.write_dates(
        classified.transform(quarantined_rows(contract)),
        QUARANTINE,
        days,
        {"source": contract.name},
    ).version
    classified.unpersist()
    # Conservation is checked on what the tables hold now, not on what the step meant to write:
    # bronze, silver and quarantine counted per date (and reason) in one job.
    written = lakehouse.read_dates(session, silver, days, version)

    def tally(df: DataFrame, layer: str, reason: Column) -> DataFrame:
        return df.groupBy("business_date", reason.alias("reason")).agg(
            F.count(F.lit(1)).alias("rows"), F.lit(layer).alias("layer")
        )

    none = F.lit(None).cast("string")
    counts = (
        tally(lakehouse.read_dates(session, TableRef("bronze", contract.name), days), "b", none)
        .unionByName(tally(written, "s", none))
        .unionByName(
            tally(
                lakehouse.read_dates(session, QUARANTINE, days, quarantine_version).where(
                    F.col("source") == contract.name
                ),
                "q",
                F.col("reason_code"),
            )
        )
        .collect()
    )
    reports = validate_dates(written, suite_for, days, lakehouse.data_docs_dir)
    wap.record_validations(lakehouse, session, silver, reports, version, run_id)
    out = {}
    for day in days:
        mine = [r for r in counts if r["business_date"] == day]
        reasons = {r["reason"]: r["rows"] for r in mine if r["layer"] == "q"}
        out[day] = SilverDay(
            bronze_rows=sum(r["rows"] for r in mine if r["layer"] == "b"),
            silver_rows=sum(r["rows"] for r in mine if r["layer"] == "s"),
            quarantine_rows=sum(reasons.values()),
            silver_version=version,
            reasons=reasons,
            report=reports[day],
        )
    return out


def record_conformed(
    session: SparkSession,
    lakehouse: LakehouseResource,
    plan: versions.VersionPlan,
    days: dict[date, SilverDay],
    run_id: str,
) -> None:
    """Record the dates whose silver passed its suite and conserved every bronze row."""
    done = [
        day
        for day, d in days.items()
        if d.report.passed and d.bronze_rows == d.silver_rows + d.quarantine_rows
    ]
    failed = [day for day in days if day not in done]
    versions.record(session, lakehouse, plan, done, run_id, failed)


def bronze_step(contract: c.SourceContract) -> versions.Step:
    """What the bronze step of a source depends on: its landed files (and its code)."""
    return versions.Step(f"bronze_{contract.name}", __name__)


def silver_step(contract: c.SourceContract) -> versions.Step:
    """The silver step's inputs: the date's bronze, the day's FX rates where it converts, and
    the source's earlier bronze dates (a file repeating an earlier delivery is quarantined)."""
    upstream = [
        versions.Upstream(
            f"bronze_{contract.name}", None if not contract.deliveries_may_repeat else 0
        )
    ]
    if contract.amount_columns:
        upstream.append(versions.Upstream(f"silver_{c.FX_RATES.name}"))
    return versions.Step(f"silver_{contract.name}", __name__, tuple(upstream))


def bronze_asset(contract: c.SourceContract) -> AssetsDefinition:
    step = bronze_step(contract)

    @asset(
        code_version=step.code_version,
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
    def _bronze(context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource):
        plan = versions.plan_landed_run(context, spark.get_session, lakehouse, step, contract.name)
        if not plan.to_run:
            yield from plan.unchanged_results(context)
            return
        rows, reports = ingest_dates(spark.session, lakehouse, contract, plan.to_run)
        versions.record(spark.session, lakehouse, plan, plan.to_run, context.run_id)
        drift = {day.isoformat(): r for day, r in reports.items() if r.get("has_drift")}
        for day, report in drift.items():
            context.log.warning(f"{contract.name} {day}: {report.get('description')}")
        table = TableRef("bronze", contract.name)
        yield MaterializeResult(
            metadata={
                **plan.metadata(),
                "rows": sum(rows.values()),
                "rows_by_date": MetadataValue.json({d.isoformat(): n for d, n in rows.items()}),
                "delta_version": lakehouse.version(spark.session, table),
                "schema_drift": MetadataValue.json(drift or {"none": True}),
                "table": table.qualified,
                "location": lakehouse.path(table),
                "file_format": contract.file_format,
            }
        )

    return _bronze


def silver_asset(contract: c.SourceContract) -> AssetsDefinition:
    """The silver step of a source: typed, checked, deduplicated rows and their quarantine."""
    name = f"silver_{contract.name}"
    step = silver_step(contract)
    rules = silver_rule_specs(contract)
    deps = [AssetKey(f"bronze_{contract.name}")]
    if contract.amount_columns:
        deps.append(AssetKey(f"silver_{c.FX_RATES.name}"))

    @asset(
        name=name,
        code_version=step.code_version,
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
        plan = versions.plan_run(context, spark.get_session, lakehouse, step)
        if not plan.to_run:
            yield from plan.unchanged_results(context)
            return
        days = conform_dates(spark.session, lakehouse, contract, plan.to_run, context.run_id)
        record_conformed(spark.session, lakehouse, plan, days, context.run_id)
        reasons: dict[str, int] = {}
        for d in days.values():
            for code, count in d.reasons.items():
                reasons[code] = reasons.get(code, 0) + count
        last = days[max(days)]
        yield MaterializeResult(
            metadata={
                **plan.metadata(),
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
    built for contract in SOURCES for built in (bronze_asset(contract), silver_asset(contract))
]
