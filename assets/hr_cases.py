"""HR cases: silver -> staging (type, urgency, summary; redacted first) -> gold.

The text of a case is redacted with the names on that date's HRIS roster before it is hashed,
cached or sent anywhere (``transforms/enrich.py``); the tasks are in ``enrichment/prompts.py``, the
shape in ``transforms/hr_cases.py`` and the rules in ``expectations/hr_cases.py``.
"""

from dataclasses import dataclass
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame, SparkSession

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from assets.publishing import publish_asset
from assets.sources import roster_names_on
from enrichment.prompts import HR_CASE_TASK, HR_CASE_URGENCY_TASK
from expectations.hr_cases import CONSTRAINTS, NOT_NULL_COLUMNS, all_rule_names, gold_hr_cases_suite
from expectations.runner import ValidationReport
from infra import versions, wap
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
from infra.review import REVIEWED_TABLES
from infra.spark import SparkResource
from transforms.contracts import HR_CASES
from transforms.hr_cases import URGENCY_PREFIX, hr_case_text, to_gold_hr_cases

SILVER = TableRef("silver", HR_CASES.name)
GOLD = wap.GoldTable("hr_cases", not_null=NOT_NULL_COLUMNS, checks=tuple(CONSTRAINTS.items()))
RULES = all_rule_names()
# A date's cases are read with that day's roster (names to redact).
STAGING_STEP = versions.Step(
    "staging_hr_cases",
    __name__,
    (versions.Upstream("silver_hr_cases"), versions.Upstream("silver_hris_roster")),
)
PREVIEW_COLUMNS = ["case_id", "case_type", "case_type_confidence", "urgency", "case_summary",
                   "redactions", "source", "model"]  # fmt: skip


@dataclass
class StagedCases:
    """What a run's enrichment and audit of HR cases did: staged version, per date verdict."""

    staged_version: int
    reports: dict[date, ValidationReport]
    runs: list[EnrichmentRun]


def enrich_cases_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: list[date],
    run_id: str,
) -> tuple[DataFrame, list[EnrichmentRun]]:
    """Redact, classify (type, urgency) and summarize a run's dates of cases: the gold candidate.

    One enrichment per task over all the dates, each case redacted with its own date's roster.
    """
    cases = lakehouse.read_dates(session, SILVER, days)
    names = {day: roster_names_on(lakehouse, session, day) for day in days}
    runs = [
        enrichment.enrich(lakehouse, cases, hr_case_text(), task, days, run_id, names)
        for task in (HR_CASE_TASK, HR_CASE_URGENCY_TASK)
    ]
    return to_gold_hr_cases(runs[0].rows, runs[1].rows), runs


def stage_and_audit_hr_cases_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: list[date],
    run_id: str,
) -> StagedCases:
    """Enrich a run's dates of cases, stage them in one commit and audit each date."""
    candidate, runs = enrich_cases_dates(session, lakehouse, enrichment, days, run_id)
    staged_version = wap.stage_dates(lakehouse, candidate, GOLD, days)
    reports = wap.audit_dates(
        lakehouse, session, GOLD, days, staged_version, lambda _: gold_hr_cases_suite(), run_id
    )
    return StagedCases(staged_version, reports, runs)


def stage_and_audit_hr_cases_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    day: date,
    run_id: str,
) -> StagedCases:
    """``stage_and_audit_hr_cases_dates`` for one date."""
    return stage_and_audit_hr_cases_dates(session, lakehouse, enrichment, [day], run_id)


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    code_version=STAGING_STEP.code_version,
    deps=[AssetKey("silver_hr_cases"), AssetKey("silver_hris_roster")],
    group_name="staging",
    kinds={"spark", "delta", "openai"},
    check_specs=suite_check_specs("staging_hr_cases", RULES, gated_per_date=True),
    pool="llm",
    description="Candidate gold partition of HR cases: case type and urgency (each with "
    "confidence and provenance) and a summary for the case handler, all computed from text "
    "with personal data redacted (roster names, e-mails, phones, ids, account numbers, "
    "salaries). Audited by the gold_hr_cases suite before anything reaches gold.",
)
def staging_hr_cases(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
):
    session = spark.session
    plan = versions.plan_run(
        context, session, lakehouse, STAGING_STEP, config=enrichment.version_config()
    )
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    context.log.info(f"enrichment by {enrichment.describe()}")
    days = plan.to_run
    done = stage_and_audit_hr_cases_dates(session, lakehouse, enrichment, days, context.run_id)
    staged = lakehouse.read_dates(session, GOLD.staging, days, done.staged_version)
    versions.record_audited(
        session, lakehouse, plan, done.reports, context.run_id, enrichment.fell_back(staged)
    )
    runs = done.runs
    for warning in over_budget_warnings(runs):
        context.log.warning(warning)
    reports = [report for _, report in sorted(done.reports.items())]
    by_type = {r[0]: r[1] for r in staged.groupBy("case_type").count().collect()}
    by_urgency = {r[0]: r[1] for r in staged.groupBy("urgency").count().collect()}
    yield MaterializeResult(
        metadata={
            **plan.metadata(),
            "rows": sum(rep.rows for rep in reports),
            "staged_delta_version": done.staged_version,
            "table": GOLD.staging.qualified,
            "enrichment_provider": enrichment.describe(),
            "computed_now": sum(r.computed for r in runs),
            "cache_hits": sum(r.cache_hits for r in runs),
            **budget_metadata(runs, enrichment),
            "cases_by_type": MetadataValue.json({str(k): v for k, v in by_type.items()}),
            "cases_by_urgency": MetadataValue.json({str(k): v for k, v in by_urgency.items()}),
            **enrichment_rollup(staged),
            **enrichment_rollup(staged, URGENCY_PREFIX),
            **validation_metadata(reports),
            "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
        }
    )
    yield from suite_check_results(
        {day: (report, done.staged_version) for day, report in done.reports.items()},
        "staging_hr_cases",
        [name for name, _, _ in RULES],
    )


gold_hr_cases = publish_asset(
    GOLD,
    staging_hr_cases,
    "Published, enriched HR cases: one row per case per business_date with case "
    "type, urgency, a redacted summary, what was redacted, and per-output provenance (model, "
    "source, confidence). No free text from the source: subject and description stay in silver.",
    reviewed=REVIEWED_TABLES["hr_cases"],
)
