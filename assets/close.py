"""The nightly close: HRIS history, the reconciliations, and their gold tables through the gate.

Assets stay thin: the rules are in ``transforms/recon/`` (one module per reconciliation) and
``transforms/hris.py``; the suites in ``expectations/reconciliation.py``.
"""

from dataclasses import dataclass, fields
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, business_dates, daily_partitions
from assets.publishing import published_metadata
from assets.sources import rows_written
from expectations import reconciliation as suites
from expectations.runner import ValidationReport
from infra import wap
from infra.checks import (
    markdown_preview,
    suite_check_results,
    suite_check_specs,
    validation_metadata,
)
from infra.lakehouse import LakehouseResource, TableRef
from infra.spark import SparkResource
from transforms import contracts as c
from transforms.hris import hris_history
from transforms.recon.ap import ap_control_balances
from transforms.recon.close import CloseInputs, run_close, windowed
from transforms.recon.summary import close_summary

HRIS_HISTORY = TableRef("silver", "hris_history")
MATCHES = wap.GoldTable(
    "recon_matches",
    not_null=suites.MATCHES_NOT_NULL,
    checks=tuple(suites.MATCHES_CONSTRAINTS.items()),
)
EXCEPTIONS = wap.GoldTable(
    "recon_exceptions",
    not_null=suites.EXCEPTIONS_NOT_NULL,
    checks=tuple(suites.EXCEPTIONS_CONSTRAINTS.items()),
)
SUMMARY = wap.GoldTable(
    "close_summary",
    not_null=suites.SUMMARY_NOT_NULL,
    checks=tuple(suites.SUMMARY_CONSTRAINTS.items()),
)
# (gold table, suite factory) in the order they are staged: the summary reads the other two.
GATED = (
    (MATCHES, suites.recon_matches_suite),
    (EXCEPTIONS, suites.recon_exceptions_suite),
    (SUMMARY, suites.close_summary_suite),
)
_ANY_DAY = date(2000, 1, 1)
INPUT_SOURCES = (
    c.FX_RATES,
    c.BANK_STATEMENT_LINES,
    c.GL_JOURNAL_LINES,
    c.AP_INVOICES,
    c.AP_PAYMENTS,
    c.PAYROLL_REGISTER,
    c.HRIS_ROSTER,
    c.EXPENSE_LINES,
)


def _silver(lakehouse: LakehouseResource, session: SparkSession, contract: c.SourceContract):
    return lakehouse.read(session, TableRef("silver", contract.name))


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    deps=[AssetKey("silver_hris_roster")],
    group_name="silver",
    kinds={"spark", "delta"},
    description="HRIS history as known on the business date (SCD type 2 from the daily roster "
    "snapshots): one row per employee version with valid_from / valid_to / is_current, so "
    "'who was active, in which cost centre, on which date' is one query. No names or e-mails.",
)
def silver_hris_history(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
) -> MaterializeResult:
    rows = {
        day.isoformat(): build_hris_history_day(spark.session, lakehouse, day)
        for day in business_dates(context)
    }
    return MaterializeResult(
        metadata={
            "versions": MetadataValue.json(rows),
            "table": HRIS_HISTORY.qualified,
        }
    )


def build_hris_history_day(session: SparkSession, lakehouse: LakehouseResource, day: date) -> int:
    """Write the HRIS history as known on ``day``; return the number of versions written."""
    snapshots = _silver(lakehouse, session, c.HRIS_ROSTER).where(
        F.col("business_date") <= F.lit(day)
    )
    history = hris_history(snapshots).withColumn("business_date", F.lit(day))
    lakehouse.write_partition(history, HRIS_HISTORY, day)
    return rows_written(lakehouse, session, HRIS_HISTORY)


@dataclass
class StagedClose:
    """One date's staged versions and audit reports, per gold table."""

    versions: dict[str, int]
    reports: dict[str, ValidationReport]
    exception_counts: dict[str, int]


def stage_close_day(
    session: SparkSession, lakehouse: LakehouseResource, day: date, run_id: str
) -> StagedClose:
    """Reconcile one date, stage matches and exceptions, then the summary built from them."""
    inputs = CloseInputs(
        bank=_silver(lakehouse, session, c.BANK_STATEMENT_LINES),
        gl=_silver(lakehouse, session, c.GL_JOURNAL_LINES),
        ap_invoices=_silver(lakehouse, session, c.AP_INVOICES),
        ap_payments=_silver(lakehouse, session, c.AP_PAYMENTS),
        payroll=_silver(lakehouse, session, c.PAYROLL_REGISTER),
        roster=_silver(lakehouse, session, c.HRIS_ROSTER),
        expense_lines=_silver(lakehouse, session, c.EXPENSE_LINES),
        fx_rates=_silver(lakehouse, session, c.FX_RATES),
    )

    # The dates the close reads are materialized once, each reconciliation is computed once, and
    # everything after reads those results (small plans, no repeated scans of the silver tables).
    def materialize(df):
        return df.localCheckpoint()

    window = windowed(inputs, day)
    window = CloseInputs(**{f.name: materialize(getattr(window, f.name)) for f in fields(window)})
    result = run_close(window, day, materialize=materialize)
    # Balances run over every date to D (not the window): the subledger and the control account
    # are cumulative.
    balances = ap_control_balances(inputs.ap_invoices, inputs.ap_payments, inputs.gl, day)
    versions = {
        MATCHES.name: wap.stage(lakehouse, result.matches, MATCHES, day),
        EXCEPTIONS.name: wap.stage(lakehouse, result.exceptions, EXCEPTIONS, day),
    }
    staged_matches = lakehouse.read_partition(session, MATCHES.staging, day, versions[MATCHES.name])
    staged_exceptions = lakehouse.read_partition(
        session, EXCEPTIONS.staging, day, versions[EXCEPTIONS.name]
    )
    summary = close_summary(staged_exceptions, staged_matches, balances, day)
    versions[SUMMARY.name] = wap.stage(lakehouse, summary, SUMMARY, day)
    reports = {
        table.name: wap.audit(
            lakehouse, session, table, day, versions[table.name], suite(day), run_id
        )
        for table, suite in GATED
    }
    counts = (
        staged_exceptions.where(F.col("status") == "open")
        .groupBy("exception_type")
        .count()
        .collect()
    )
    return StagedClose(versions, reports, {r[0]: r[1] for r in counts})


def _staging_key(table: wap.GoldTable) -> str:
    return f"staging_{table.name}"


@multi_asset(
    specs=[
        AssetSpec(
            _staging_key(table),
            deps=[AssetKey(f"silver_{s.name}") for s in INPUT_SOURCES],
            group_name="staging",
            kinds={"spark", "delta"},
            description=f"Candidate partition of gold.{table.name}, audited by its suite before "
            "anything reaches gold.",
        )
        for table, _ in GATED
    ],
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    check_specs=[
        spec
        for table, suite in GATED
        for spec in suite_check_specs(_staging_key(table), suites.rule_specs(suite(_ANY_DAY)))
    ],
)
def staging_reconciliation(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    """Bank ↔ GL, AP ↔ GL, payroll ↔ HRIS and expense policy for each date of the run."""
    session = spark.session
    days = {
        day: stage_close_day(session, lakehouse, day, context.run_id)
        for day in business_dates(context)
    }
    last = days[max(days)]
    for table, suite in GATED:
        reports = [d.reports[table.name] for _, d in sorted(days.items())]
        metadata = {
            "rows": sum(r.rows for r in reports),
            "staged_delta_version": last.versions[table.name],
            "table": table.staging.qualified,
            **validation_metadata(reports),
        }
        if table is EXCEPTIONS:
            totals: dict[str, int] = {}
            for d in days.values():
                for kind, n in d.exception_counts.items():
                    totals[kind] = totals.get(kind, 0) + n
            metadata["open_exceptions_by_type"] = MetadataValue.json(totals)
            staged = lakehouse.read(session, table.staging).where(
                F.col("business_date") == F.lit(max(days))
            )
            metadata["preview"] = MetadataValue.md(
                markdown_preview(
                    staged.select(
                        "exception_type",
                        "legal_entity",
                        "status",
                        "age_days",
                        "amount",
                        "currency",
                        "detail",
                    )
                )
            )
        yield MaterializeResult(asset_key=_staging_key(table), metadata=metadata)
        yield from suite_check_results(
            {day: (d.reports[table.name], d.versions[table.name]) for day, d in days.items()},
            _staging_key(table),
            [name for name, _, _ in suites.rule_specs(suite(_ANY_DAY))],
        )


@multi_asset(
    specs=[
        AssetSpec(
            f"gold_{table.name}",
            # One step publishes the three tables: each waits for the whole staged close (and
            # Dagster refuses a UI backfill of a multi-asset whose keys have different parents).
            deps=[AssetKey(_staging_key(t)) for t, _ in GATED],
            group_name="gold",
            kinds={"spark", "delta"},
            description={
                MATCHES.name: "Matched groups per reconciliation and night, with the rule "
                "that matched them and the records on each side.",
                EXCEPTIONS.name: "One row per reconciliation exception per business date: type, "
                "entity, amounts, the records involved, status (open / closed today), age in "
                "days, and an analyst sentence.",
                SUMMARY.name: "Per legal entity, reconciliation and date: records matched and "
                "unmatched, match rate, open exceptions by type and age, AP control variance.",
            }[table.name],
        )
        for table, _ in GATED
    ],
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
)
def gold_reconciliation(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    """Publish each audited staging partition of the close's gold tables."""
    for table, _ in GATED:
        try:
            done = wap.publish_dates(
                lakehouse, spark.session, table, business_dates(context), context.run_id
            )
        except wap.PublishRefusedError as refused:
            raise Failure(description=str(refused), allow_retries=False) from refused
        yield MaterializeResult(
            asset_key=f"gold_{table.name}",
            metadata=published_metadata(done, table, lakehouse),
        )
