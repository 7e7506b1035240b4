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

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from assets.publishing import publish_asset
from assets.sources import roster_names_on
from enrichment.prompts import EXCEPTION_NOTE_TASK
from expectations import reconciliation as suites
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
from infra.spark import SparkResource
from transforms.recon.notes import exception_text, open_exceptions, to_gold_exception_notes

NOTES = wap.GoldTable(
    "recon_exception_notes",
    not_null=suites.NOTES_NOT_NULL,
    checks=tuple(suites.NOTES_CONSTRAINTS.items()),
)
EXCEPTIONS = TableRef("gold", "recon_exceptions")
RULES = suites.rule_specs(suites.exception_notes_suite())
# A night's notes read its published exceptions and that day's roster (names to redact).
STAGING_STEP = versions.Step(
    "staging_recon_exception_notes",
    __name__,
    (versions.Upstream("gold_reconciliation"), versions.Upstream("silver_hris_roster")),
)
PREVIEW_COLUMNS = ["exception_type", "legal_entity", "probable_reason", "reason_confidence",
                   "analyst_note", "source"]  # fmt: skip


@dataclass
class StagedNotes:
    """A run's notes: where they were staged, each night's audit, the enrichment runs."""

    staged_version: int
    reports: dict[date, ValidationReport]
    runs: list[EnrichmentRun]


def stage_notes_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: list[date],
    run_id: str,
) -> StagedNotes:
    """Enrich a run's open exceptions, stage the notes in one commit and audit each night."""
    # One enrichment over the run's nights, each exception redacted with its night's roster.
    runs = [
        enrichment.enrich(
            lakehouse,
            open_exceptions(lakehouse.read_dates(session, EXCEPTIONS, days)),
            exception_text(),
            EXCEPTION_NOTE_TASK,
            days,
            run_id,
            {day: roster_names_on(lakehouse, session, day) for day in days},
        )
    ]
    candidate = runs[0].rows.transform(to_gold_exception_notes)
    staged_version = wap.stage_dates(lakehouse, candidate, NOTES, days)
    reports = wap.audit_dates(
        lakehouse,
        session,
        NOTES,
        days,
        staged_version,
        lambda _: suites.exception_notes_suite(),
        run_id,
    )
    return StagedNotes(staged_version, reports, runs)


def stage_notes_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    day: date,
    run_id: str,
) -> StagedNotes:
    """``stage_notes_dates`` for one night."""
    return stage_notes_dates(session, lakehouse, enrichment, [day], run_id)


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    code_version=STAGING_STEP.code_version,
    deps=[AssetKey("gold_recon_exceptions")],
    group_name="staging",
    kinds={"spark", "delta", "openai"},
    check_specs=suite_check_specs("staging_recon_exception_notes", RULES, gated_per_date=True),
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
    plan = versions.plan_run(
        context, session, lakehouse, STAGING_STEP, config=enrichment.version_config()
    )
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    context.log.info(f"enrichment by {enrichment.describe()}")
    days = plan.to_run
    done = stage_notes_dates(session, lakehouse, enrichment, days, context.run_id)
    staged = lakehouse.read_dates(session, NOTES.staging, days, done.staged_version)
    versions.record_audited(
        session, lakehouse, plan, done.reports, context.run_id, enrichment.fell_back(staged)
    )
    runs = done.runs
    for warning in over_budget_warnings(runs):
        context.log.warning(warning)
    reasons = {str(r[0]): r[1] for r in staged.groupBy("probable_reason").count().collect()}
    yield MaterializeResult(
        metadata={
            **plan.metadata(),
            "rows": sum(r.rows for r in done.reports.values()),
            "staged_delta_version": done.staged_version,
            "table": NOTES.staging.qualified,
            "enrichment_provider": enrichment.describe(),
            "computed_now": sum(r.computed for r in runs),
            "cache_hits": sum(r.cache_hits for r in runs),
            "notes_by_reason": MetadataValue.json(reasons),
            **budget_metadata(runs, enrichment),
            **enrichment_rollup(staged),
            **validation_metadata([r for _, r in sorted(done.reports.items())]),
            "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
        }
    )
    yield from suite_check_results(
        {day: (report, done.staged_version) for day, report in done.reports.items()},
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
