"""Expense report lines: landing -> bronze -> silver (+ quarantine) -> staging -> gold.

Each asset handles every business date of its run in turn (a backfill runs several dates in one
run and one Spark session); the per-date work is in plain functions below the assets.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, business_dates, daily_partitions
from assets.publishing import publish_asset
from assets.sources import (
    SilverDay,
    ingest_day,
    repeated_files_on,
    roster_names_on,
    write_silver_day,
)
from enrichment.prompts import EXPENSE_LINE_TASK
from expectations.expense_lines import (
    CONSTRAINTS,
    LABEL_DRIFT_LOOKBACK_DAYS,
    NOT_NULL_COLUMNS,
    all_rule_names,
    gold_expense_lines_suite,
    silver_expense_lines_suite,
)
from expectations.runner import ValidationReport
from infra import wap
from infra.checks import (
    markdown_preview,
    suite_check_results,
    suite_check_specs,
    validation_metadata,
)
from infra.enrichment import (
    EnrichmentResource,
    EnrichmentRun,
    budget_metadata,
    enrichment_rollup,
    over_budget_warnings,
)
from infra.lakehouse import LakehouseResource, TableRef
from infra.spark import SparkResource
from transforms.conform import day_rates
from transforms.contracts import EXPENSE_LINES, FX_RATES
from transforms.expenses import (
    LABEL_HISTORY_DAYS,
    classify_expense_rows,
    expense_text,
    silver_expense_lines,
    to_gold_expense_lines,
)

BRONZE = TableRef("bronze", "expense_lines")
SILVER = TableRef("silver", "expense_lines")
QUARANTINE = TableRef("silver", "quarantine")
FX_SILVER = TableRef("silver", FX_RATES.name)
GOLD = wap.GoldTable("expense_lines", not_null=NOT_NULL_COLUMNS, checks=tuple(CONSTRAINTS.items()))
GOLD_RULES = all_rule_names()
SILVER_RULES = [
    (r.name, r.severity, r.description) for r in silver_expense_lines_suite(date(2000, 1, 1)).rules
]
PREVIEW_COLUMNS = ["report_id", "line_id", "merchant", "amount", "currency", "spend_category",
                   "confidence", "justification_summary", "source"]  # fmt: skip


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    group_name="bronze",
    kinds={"spark", "delta"},
    description="Expense report lines as landed: every declared column a string, plus "
    "_source_file, _ingested_at, _row_hash. Grain: one row per landed line. Partition: "
    "business_date.",
)
def bronze_expense_lines(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
) -> MaterializeResult:
    rows = {}
    for day in business_dates(context):
        rows[day.isoformat()], drift = ingest_day(spark.session, lakehouse, EXPENSE_LINES, day)
        if drift.get("has_drift"):
            context.log.warning(f"expense_lines {day}: {drift.get('description')}")
    version = lakehouse.version(spark.session, BRONZE)
    return MaterializeResult(
        metadata={
            "rows": sum(rows.values()),
            "rows_by_date": MetadataValue.json(rows),
            "delta_version": version,
            "table": BRONZE.qualified,
            "location": lakehouse.path(BRONZE),
        }
    )


def build_silver_day(
    session: SparkSession, lakehouse: LakehouseResource, day: date, run_id: str
) -> SilverDay:
    """Type, validate and dedupe one date of bronze into silver and quarantine, then audit it."""
    rates = day_rates(lakehouse.read_partition(session, FX_SILVER, day), day)
    repeats = repeated_files_on(session, lakehouse, EXPENSE_LINES, day)
    return write_silver_day(
        session,
        lakehouse,
        EXPENSE_LINES,
        day,
        lakehouse.read_partition(session, BRONZE, day).transform(
            classify_expense_rows(day, rates, repeats)
        ),
        silver_expense_lines,
        silver_expense_lines_suite(day),
        run_id,
    )


@multi_asset(
    specs=[
        AssetSpec(
            "silver_expense_lines",
            deps=[bronze_expense_lines, AssetKey("silver_fx_rates")],
            group_name="silver",
            kinds={"spark", "delta"},
            description="Typed, validated expense lines, converted to USD at the day's rate. "
            "Grain: one row per (report_id, line_id) per business_date.",
        ),
        AssetSpec(
            "quarantine_expense_lines",
            # Same parents as silver: a missing FX rate is a quarantine reason. (Dagster also
            # refuses a UI backfill of a multi-asset whose keys have different parents.)
            deps=[bronze_expense_lines, AssetKey("silver_fx_rates")],
            group_name="silver",
            kinds={"spark", "delta"},
            description="Expense lines rejected on the way to silver, each with its reason_code; "
            "the expense_lines rows of silver.quarantine.",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    check_specs=[
        AssetCheckSpec(
            "bronze_rows_conserved",
            asset="silver_expense_lines",
            description="bronze rows = silver rows + quarantined rows: nothing silently dropped.",
            blocking=True,
        ),
        *suite_check_specs("silver_expense_lines", SILVER_RULES),
    ],
)
def silver_expense_lines_assets(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    days = {
        day: build_silver_day(spark.session, lakehouse, day, context.run_id)
        for day in business_dates(context)
    }
    reasons: dict[str, int] = {}
    for result in days.values():
        for code, count in result.reasons.items():
            reasons[code] = reasons.get(code, 0) + count
    last = days[max(days)]
    yield MaterializeResult(
        asset_key="silver_expense_lines",
        metadata={
            "rows": sum(d.silver_rows for d in days.values()),
            "bronze_rows": sum(d.bronze_rows for d in days.values()),
            "quarantined_rows": sum(d.quarantine_rows for d in days.values()),
            "delta_version": last.silver_version,
            "table": SILVER.qualified,
            **validation_metadata([d.report for _, d in sorted(days.items())]),
        },
    )
    yield MaterializeResult(
        asset_key="quarantine_expense_lines",
        metadata={
            "rows": sum(d.quarantine_rows for d in days.values()),
            "top_reasons": MetadataValue.json(dict(sorted(reasons.items(), key=lambda kv: -kv[1]))),
            "table": QUARANTINE.qualified,
        },
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
        asset_key="silver_expense_lines",
        check_name="bronze_rows_conserved",
        passed=not unbalanced,
        metadata={
            "bronze": sum(d.bronze_rows for d in days.values()),
            "silver": sum(d.silver_rows for d in days.values()),
            "quarantine": sum(d.quarantine_rows for d in days.values()),
            "dates_not_conserved": MetadataValue.json(unbalanced),
        },
    )
    yield from suite_check_results(
        {day: (d.report, d.silver_version) for day, d in days.items()},
        "silver_expense_lines",
        [name for name, _, _ in SILVER_RULES],
    )


def recent_label_counts(
    lakehouse: LakehouseResource, session: SparkSession, day: date
) -> dict[str, int]:
    """Label counts in gold over the days before ``day``: the reference for drift."""
    if not lakehouse.exists(session, GOLD.gold):
        return {}
    window = lakehouse.read(session, GOLD.gold).where(
        (F.col("business_date") < F.lit(day))
        & (F.col("business_date") >= F.lit(day - timedelta(days=LABEL_DRIFT_LOOKBACK_DAYS)))
        & F.col("spend_category").isNotNull()
    )
    return {r[0]: r[1] for r in window.groupBy("spend_category").count().collect()}


@dataclass
class StagedDay:
    """What one date's enrichment and audit did."""

    staged_version: int
    report: ValidationReport
    run: EnrichmentRun


def stage_and_audit_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    day: date,
    run_id: str,
) -> StagedDay:
    """Enrich one date of silver, write the candidate to staging once, and audit that version."""
    silver = lakehouse.read_partition(session, SILVER, day)
    # Claims coded by employees over the last LABEL_HISTORY_DAYS: the model's labelled history.
    history = lakehouse.read(session, SILVER).where(
        (F.col("business_date") < F.lit(day))
        & (F.col("business_date") >= F.lit(day - timedelta(days=LABEL_HISTORY_DAYS)))
    )
    run = enrichment.enrich_with_history(
        lakehouse,
        silver,
        text=expense_text(),
        task=EXPENSE_LINE_TASK,
        business_date=day,
        run_id=run_id,
        history=history,
        label_col="claimed_category",
        names=roster_names_on(lakehouse, session, day),
    )
    staged_version = wap.stage(lakehouse, run.rows.transform(to_gold_expense_lines), GOLD, day)
    suite = gold_expense_lines_suite(day, recent_label_counts(lakehouse, session, day))
    report = wap.audit(lakehouse, session, GOLD, day, staged_version, suite, run_id)
    return StagedDay(staged_version, report, run)


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    deps=[AssetKey("silver_expense_lines"), AssetKey("silver_hris_roster")],
    group_name="staging",
    kinds={"spark", "delta", "openai"},
    check_specs=suite_check_specs("staging_expense_lines", GOLD_RULES),
    pool="llm",
    description="Candidate gold partition: silver expense lines enriched with a spend category "
    "(with confidence) and a one-sentence justification summary, audited by the "
    "gold_expense_lines suite before anything reaches gold.",
)
def staging_expense_lines(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
):
    session = spark.session
    context.log.info(f"enrichment by {enrichment.describe()}")
    days = {
        day: stage_and_audit_day(session, lakehouse, enrichment, day, context.run_id)
        for day in business_dates(context)
    }
    for warning in over_budget_warnings([d.run for d in days.values()]):
        context.log.warning(warning)
    staged = lakehouse.read(session, GOLD.staging).where(F.col("business_date").isin(list(days)))
    last = days[max(days)]
    reports = [d.report for _, d in sorted(days.items())]
    yield MaterializeResult(
        metadata={
            "rows": sum(rep.rows for rep in reports),
            "staged_delta_version": last.staged_version,
            "table": GOLD.staging.qualified,
            "enrichment_provider": enrichment.describe(),
            "distinct_inputs": sum(d.run.distinct_inputs for d in days.values()),
            "cache_hits": sum(d.run.cache_hits for d in days.values()),
            "computed_now": sum(d.run.computed for d in days.values()),
            **budget_metadata([d.run for d in days.values()], enrichment),
            "history_model": last.run.history_model or "none (too little labelled history)",
            "labelled_by_history_model": sum(d.run.model_labelled for d in days.values()),
            "routed_to_provider": sum(
                d.run.routed_to_provider if d.run.history_model else d.run.distinct_inputs
                for d in days.values()
            ),
            **enrichment_rollup(staged),
            **validation_metadata(reports),
            "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
        }
    )
    yield from suite_check_results(
        {day: (d.report, d.staged_version) for day, d in days.items()},
        "staging_expense_lines",
        [name for name, _, _ in GOLD_RULES],
    )


gold_expense_lines = publish_asset(
    GOLD,
    staging_expense_lines,
    "Published, enriched expense lines. Grain: one row per (report_id, line_id) per "
    "business_date. Every row carries enrichment provenance (model, source, confidence). Only "
    "partitions whose staging audit passed are published.",
)
