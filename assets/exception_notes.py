"""Notes on the night's open reconciliation exceptions: probable reason and an analyst sentence.

Staged, audited and published like every gold table. The text and shape are in
``transforms/recon/notes.py``, the task in ``enrichment/prompts.py``, the rules in
``expectations/reconciliation.py``.
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
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, business_dates, daily_partitions
from assets.publishing import publish_asset
from assets.sources import roster_names_on
from enrichment.prompts import EXCEPTION_NOTE_TASK
from expectations import reconciliation as suites
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
from transforms.recon.notes import exception_text, open_exceptions, to_gold_exception_notes

NOTES = wap.GoldTable(
    "recon_exception_notes",
    not_null=suites.NOTES_NOT_NULL,
    checks=tuple(suites.NOTES_CONSTRAINTS.items()),
)
EXCEPTIONS = TableRef("gold", "recon_exceptions")
RULES = suites.rule_specs(suites.exception_notes_suite())
PREVIEW_COLUMNS = ["exception_type", "legal_entity", "probable_reason", "reason_confidence",
                   "analyst_note", "source"]  # fmt: skip


@dataclass
class StagedNotes:
    """One night's notes: where they were staged, their audit, the enrichment run."""

    staged_version: int
    report: ValidationReport
    run: EnrichmentRun


def stage_notes_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    day: date,
    run_id: str,
) -> StagedNotes:
    """Enrich one night's open exceptions, stage the notes once and audit them."""
    exceptions = open_exceptions(lakehouse.read_partition(session, EXCEPTIONS, day))
    run = enrichment.enrich(
        lakehouse,
        exceptions,
        exception_text(),
        EXCEPTION_NOTE_TASK,
        day,
        run_id,
        roster_names_on(lakehouse, session, day),
    )
    staged_version = wap.stage(lakehouse, run.rows.transform(to_gold_exception_notes), NOTES, day)
    report = wap.audit(
        lakehouse, session, NOTES, day, staged_version, suites.exception_notes_suite(), run_id
    )
    return StagedNotes(staged_version, report, run)


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    deps=[AssetKey("gold_recon_exceptions")],
    group_name="staging",
    kinds={"spark", "delta", "openai"},
    check_specs=suite_check_specs("staging_recon_exception_notes", RULES),
    pool="llm",
    description="Candidate notes on the night's open reconciliation exceptions: a probable "
    "reason (with confidence and provenance) and one sentence an analyst can act on. An item "
    "carried open from night to night is enriched once (the cache).",
)
def staging_recon_exception_notes(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
):
    session = spark.session
    context.log.info(f"enrichment by {enrichment.describe()}")
    days = {
        day: stage_notes_day(session, lakehouse, enrichment, day, context.run_id)
        for day in business_dates(context)
    }
    runs = [d.run for d in days.values()]
    for warning in over_budget_warnings(runs):
        context.log.warning(warning)
    staged = lakehouse.read(session, NOTES.staging).where(F.col("business_date").isin(list(days)))
    reasons = {str(r[0]): r[1] for r in staged.groupBy("probable_reason").count().collect()}
    last = days[max(days)]
    yield MaterializeResult(
        metadata={
            "rows": sum(d.report.rows for d in days.values()),
            "staged_delta_version": last.staged_version,
            "table": NOTES.staging.qualified,
            "enrichment_provider": enrichment.describe(),
            "computed_now": sum(r.computed for r in runs),
            "cache_hits": sum(r.cache_hits for r in runs),
            "notes_by_reason": MetadataValue.json(reasons),
            **budget_metadata(runs, enrichment),
            **enrichment_rollup(staged),
            **validation_metadata([d.report for _, d in sorted(days.items())]),
            "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
        }
    )
    yield from suite_check_results(
        {day: (d.report, d.staged_version) for day, d in days.items()},
        "staging_recon_exception_notes",
        [name for name, _, _ in RULES],
    )


gold_recon_exception_notes = publish_asset(
    NOTES,
    staging_recon_exception_notes,
    "One note per open reconciliation exception per night: probable reason, "
    "confidence, an analyst sentence, and who produced them (model or LLM) at what cost. Join "
    "to gold.recon_exceptions on exception_id and business_date.",
)
