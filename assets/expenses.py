"""Expense report lines: landing -> bronze -> silver (+ quarantine) -> staging -> gold."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pyspark.sql import functions as F

from assets.partitions import business_date, daily_partitions
from enrichment.prompts import EXPENSE_LINE_TASK
from expectations.expense_lines import CONSTRAINTS, NOT_NULL_COLUMNS, expense_lines_suite
from expectations.suite import ERROR
from pipelines import wap
from pipelines.resources.enrichment import EnrichmentResource
from pipelines.resources.lakehouse import LakehouseResource, TableRef
from pipelines.resources.spark import SparkResource
from transforms.contracts import EXPENSE_LINES
from transforms.expenses import (
    classify_expense_rows,
    quarantined_expense_lines,
    silver_expense_lines,
    to_gold_expense_lines,
)
from transforms.ingest import with_ingestion_metadata

BRONZE = TableRef("bronze", "expense_lines")
SILVER = TableRef("silver", "expense_lines")
QUARANTINE = TableRef("silver", "quarantine")
GOLD = wap.GoldTable("expense_lines", not_null=NOT_NULL_COLUMNS, checks=tuple(CONSTRAINTS.items()))
SUITE_CHECKS = [
    AssetCheckSpec(
        name=rule.name,
        asset="staging_expense_lines",
        description=f"[{rule.severity}] {rule.description}",
        blocking=rule.severity == ERROR,
    )
    for rule in expense_lines_suite(datetime(2000, 1, 1).date()).rules
]


@asset(
    partitions_def=daily_partitions,
    group_name="bronze",
    kinds={"spark", "delta"},
    description="Expense report lines as landed: every declared column a string, plus "
    "_source_file, _ingested_at, _row_hash. Grain: one row per landed line. Partition: "
    "business_date.",
)
def bronze_expense_lines(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
) -> MaterializeResult:
    day = business_date(context)
    raw = lakehouse.read_landing(spark.session, EXPENSE_LINES, day)
    bronze = raw.transform(
        with_ingestion_metadata(EXPENSE_LINES, day, datetime.now(UTC).replace(tzinfo=None))
    )
    version = lakehouse.write_partition(bronze, BRONZE, day)
    metrics = lakehouse.last_commit_metrics(spark.session, BRONZE)
    return MaterializeResult(
        metadata={
            "rows": int(metrics.get("numOutputRows", 0)),
            "delta_version": version,
            "table": BRONZE.qualified,
            "location": lakehouse.path(BRONZE),
        }
    )


@multi_asset(
    specs=[
        AssetSpec(
            "silver_expense_lines",
            deps=[bronze_expense_lines],
            group_name="silver",
            kinds={"spark", "delta"},
            description="Typed, validated expense lines. Grain: one row per (report_id, line_id) "
            "per business_date.",
        ),
        AssetSpec(
            "quarantine_expense_lines",
            deps=[bronze_expense_lines],
            group_name="silver",
            kinds={"spark", "delta"},
            description="Expense lines rejected on the way to silver, each with its reason_code; "
            "the expense_lines rows of silver.quarantine.",
        ),
    ],
    partitions_def=daily_partitions,
    check_specs=[
        AssetCheckSpec(
            "bronze_rows_conserved",
            asset="silver_expense_lines",
            description="bronze rows = silver rows + quarantined rows: nothing silently dropped.",
            blocking=True,
        )
    ],
)
def silver_expense_lines_assets(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    day = business_date(context)
    session = spark.session
    bronze = lakehouse.read_partition(session, BRONZE, day)
    classified = bronze.transform(classify_expense_rows(day)).cache()
    silver_version = lakehouse.write_partition(silver_expense_lines(classified), SILVER, day)
    silver_rows = int(lakehouse.last_commit_metrics(session, SILVER).get("numOutputRows", 0))
    quarantine_version = lakehouse.write_partition(
        quarantined_expense_lines(classified), QUARANTINE, day, {"source": EXPENSE_LINES.name}
    )
    quarantine_rows = int(
        lakehouse.last_commit_metrics(session, QUARANTINE).get("numOutputRows", 0)
    )
    bronze_rows = classified.count()
    classified.unpersist()
    reasons = (
        lakehouse.read_partition(session, QUARANTINE, day)
        .where(F.col("source") == EXPENSE_LINES.name)
        .groupBy("reason_code")
        .count()
        .orderBy(F.col("count").desc())
        .collect()
    )
    yield MaterializeResult(
        asset_key="silver_expense_lines",
        metadata={
            "rows": silver_rows,
            "bronze_rows": bronze_rows,
            "quarantined_rows": quarantine_rows,
            "delta_version": silver_version,
            "table": SILVER.qualified,
        },
    )
    yield MaterializeResult(
        asset_key="quarantine_expense_lines",
        metadata={
            "rows": quarantine_rows,
            "top_reasons": MetadataValue.json({r["reason_code"]: r["count"] for r in reasons}),
            "delta_version": quarantine_version,
            "table": QUARANTINE.qualified,
        },
    )
    yield AssetCheckResult(
        asset_key="silver_expense_lines",
        check_name="bronze_rows_conserved",
        passed=bronze_rows == silver_rows + quarantine_rows,
        metadata={"bronze": bronze_rows, "silver": silver_rows, "quarantine": quarantine_rows},
    )


@asset(
    partitions_def=daily_partitions,
    deps=[AssetKey("silver_expense_lines")],
    group_name="staging",
    kinds={"spark", "delta", "openai"},
    check_specs=SUITE_CHECKS,
    pool="llm",
    description="Candidate gold partition: silver expense lines enriched with a spend category "
    "(with confidence) and a one-sentence justification summary, audited by the "
    "expense_lines suite before anything reaches gold.",
)
def staging_expense_lines(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
):
    day = business_date(context)
    session = spark.session
    silver = lakehouse.read_partition(session, SILVER, day)
    context.log.info(f"enrichment by {enrichment.describe()}")
    run = enrichment.enrich(
        lakehouse,
        silver,
        text=F.concat_ws(
            "\n",
            F.concat(F.lit("Merchant: "), F.col("merchant")),
            F.concat(F.lit("Justification: "), F.coalesce(F.col("justification"), F.lit(""))),
        ),
        task=EXPENSE_LINE_TASK,
        business_date=day,
        run_id=context.run_id,
    )
    staged_version = wap.stage(lakehouse, run.rows.transform(to_gold_expense_lines), GOLD, day)
    report = wap.audit(
        lakehouse, session, GOLD, day, staged_version, expense_lines_suite(day), context.run_id
    )
    staged = lakehouse.read_partition(session, GOLD.staging, day, staged_version)
    rollup = enrichment_rollup(staged)
    yield MaterializeResult(
        metadata={
            "rows": report.rows,
            "staged_delta_version": staged_version,
            "table": GOLD.staging.qualified,
            "enrichment_provider": run.provider,
            "distinct_inputs": run.distinct_inputs,
            "cache_hits": run.cache_hits,
            "computed_now": run.computed,
            **rollup,
            "validation_passed": report.passed,
            "rules_failed": ", ".join(r.name for r in report.results if not r.success) or "none",
        }
    )
    for result in report.results:
        yield AssetCheckResult(
            check_name=result.name,
            passed=result.success,
            severity=AssetCheckSeverity.ERROR
            if result.severity == ERROR
            else AssetCheckSeverity.WARN,
            metadata={
                "rows_checked": result.element_count or 0,
                "unexpected": result.unexpected_count or 0,
                "sample": MetadataValue.json(result.sample),
                "staged_delta_version": staged_version,
            },
        )


def enrichment_rollup(staged) -> dict:
    """Rows by status and source, tokens, cost and latency percentiles of the staged partition."""
    row = staged.agg(
        F.sum("tokens_in").alias("tokens_in"),
        F.sum("tokens_out").alias("tokens_out"),
        F.sum("cost_usd").alias("cost_usd"),
        F.percentile_approx("latency_ms", [0.5, 0.95]).alias("latency"),
    ).first()
    statuses = {r[0]: r[1] for r in staged.groupBy("enrichment_status").count().collect()}
    sources = {r[0]: r[1] for r in staged.groupBy("source").count().collect()}
    latency = row["latency"] or [0.0, 0.0]
    return {
        "rows_by_status": MetadataValue.json(statuses),
        "rows_by_source": MetadataValue.json(sources),
        "llm_tokens_in": int(row["tokens_in"] or 0),
        "llm_tokens_out": int(row["tokens_out"] or 0),
        "llm_cost_usd": float(row["cost_usd"] or 0.0),
        "latency_ms_p50": float(latency[0] or 0.0),
        "latency_ms_p95": float(latency[1] or 0.0),
    }


@asset(
    partitions_def=daily_partitions,
    deps=[staging_expense_lines],
    group_name="gold",
    kinds={"spark", "delta"},
    description="Published, enriched expense lines. Grain: one row per (report_id, line_id) per "
    "business_date. Every row carries enrichment provenance (model, source, confidence). Only "
    "partitions whose staging audit passed are published.",
)
def gold_expense_lines(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
) -> MaterializeResult:
    day = business_date(context)
    staged_version, gold_version = wap.publish(lakehouse, spark.session, GOLD, day, context.run_id)
    metrics = lakehouse.last_commit_metrics(spark.session, GOLD.gold)
    return MaterializeResult(
        metadata={
            "rows": int(metrics.get("numOutputRows", 0)),
            "published_from_staged_version": staged_version,
            "delta_version": gold_version,
            "table": GOLD.gold.qualified,
            "location": lakehouse.path(GOLD.gold),
        }
    )
