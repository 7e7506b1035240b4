"""The close narrative: one paragraph per legal entity and night, staged, audited, published.

The rows and the template are in ``transforms/recon/narrative.py``, the staged summarization in
``enrichment/group_summary.py``, the prompt in ``enrichment/prompts.py`` and the rules in
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

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from assets.publishing import publish_asset
from assets.sources import union_all
from enrichment.prompts import CLOSE_NARRATIVE_TASK
from enrichment.providers.base import EMBEDDED
from expectations import reconciliation as suites
from expectations.runner import ValidationReport
from infra import versions, wap
from infra.checks import (
    markdown_preview,
    suite_check_results,
    suite_check_specs,
    validation_metadata,
)
from infra.enrichment import EnrichmentResource
from infra.lakehouse import LakehouseResource, TableRef
from infra.spark import SparkResource
from transforms.recon.narrative import NARRATIVE_GROUP, close_narratives, exception_lines

NARRATIVE = wap.GoldTable(
    "close_narrative",
    not_null=suites.NARRATIVE_NOT_NULL,
    checks=tuple(suites.NARRATIVE_CONSTRAINTS.items()),
)
EXCEPTIONS = TableRef("gold", "recon_exceptions")
SUMMARY = TableRef("gold", "close_summary")
RULES = suites.rule_specs(suites.close_narrative_suite())
# A night's paragraphs read its published exceptions and summaries.
STAGING_STEP = versions.Step(
    "staging_close_narrative", __name__, (versions.Upstream("gold_reconciliation"),)
)


@dataclass
class StagedNarrative:
    """A run's paragraphs: where they were staged, each night's audit, what they cost."""

    staged_version: int
    reports: dict[date, ValidationReport]
    tokens: int


def stage_narrative_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: list[date],
    run_id: str,
) -> StagedNarrative:
    """Write a run's nightly paragraphs to staging in one commit, and audit each night."""
    lines = union_all(
        [
            exception_lines(
                lakehouse.read_partition(session, EXCEPTIONS, day),
                lakehouse.read_partition(session, SUMMARY, day),
                day,
            )
            for day in days
        ]
    )
    summaries = None
    if enrichment.provider_kind != EMBEDDED:
        # Summarized once, served from the cache on a re-run; the template needs neither.
        summaries = enrichment.summarize_groups(
            lakehouse,
            lines,
            CLOSE_NARRATIVE_TASK,
            group_cols=NARRATIVE_GROUP,
            text_col="line",
            order_col="seq",
            label_col="legal_entity",
        )
    written = close_narratives(
        lines, summaries, fallback=enrichment.fallback_for(CLOSE_NARRATIVE_TASK)
    )
    staged_version = wap.stage_dates(lakehouse, written, NARRATIVE, days)
    staged = lakehouse.read_dates(session, NARRATIVE.staging, days, staged_version)
    tokens = staged.agg(F.sum(F.col("tokens_in") + F.col("tokens_out"))).first()[0] or 0
    enrichment.record_spend(int(tokens))
    reports = wap.audit_dates(
        lakehouse,
        session,
        NARRATIVE,
        days,
        staged_version,
        lambda _: suites.close_narrative_suite(),
        run_id,
    )
    return StagedNarrative(staged_version, reports, int(tokens))


def stage_narrative_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    day: date,
    run_id: str,
) -> StagedNarrative:
    """``stage_narrative_dates`` for one night."""
    return stage_narrative_dates(session, lakehouse, enrichment, [day], run_id)


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    code_version=STAGING_STEP.code_version,
    deps=[AssetKey("gold_recon_exceptions"), AssetKey("gold_close_summary")],
    group_name="staging",
    kinds={"spark", "delta", "openai"},
    check_specs=suite_check_specs("staging_close_narrative", RULES, gated_per_date=True),
    pool="llm",
    description="Candidate paragraphs for gold.close_narrative: per legal entity, the night's "
    "open exceptions told for the controller. An LLM summarizes them in stages when one is "
    "configured; otherwise a template fills the paragraph from the same rows (source = rule).",
)
def staging_close_narrative(
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
    days = plan.to_run
    done = stage_narrative_dates(session, lakehouse, enrichment, days, context.run_id)
    fell_back = enrichment.fell_back(
        lakehouse.read_dates(session, NARRATIVE.staging, days, done.staged_version)
    )
    versions.record_audited(session, lakehouse, plan, done.reports, context.run_id, fell_back)
    staged = lakehouse.read_partition(session, NARRATIVE.staging, max(days), done.staged_version)
    yield MaterializeResult(
        metadata={
            **plan.metadata(),
            "rows": sum(r.rows for r in done.reports.values()),
            "staged_delta_version": done.staged_version,
            "table": NARRATIVE.staging.qualified,
            "written_by": enrichment.describe()
            if enrichment.api_key
            else "template (no OPENAI_API_KEY set: no LLM used)",
            "llm_tokens": done.tokens,
            **validation_metadata([r for _, r in sorted(done.reports.items())]),
            "preview": MetadataValue.md(
                markdown_preview(staged.select("legal_entity", "narrative", "source", "model"))
            ),
        }
    )
    yield from suite_check_results(
        {day: (report, done.staged_version) for day, report in done.reports.items()},
        "staging_close_narrative",
        [name for name, _, _ in RULES],
    )


gold_close_narrative = publish_asset(
    NARRATIVE,
    staging_close_narrative,
    "One paragraph per legal entity and night on the close, with who wrote it "
    "(template, model or LLM), its prompt version, the stages it took and its token cost.",
)
