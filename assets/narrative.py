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

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, business_dates, daily_partitions
from assets.publishing import publish_asset
from enrichment.prompts import CLOSE_NARRATIVE_TASK
from expectations import reconciliation as suites
from expectations.runner import ValidationReport
from infra import wap
from infra.checks import (
    markdown_preview,
    suite_check_results,
    suite_check_specs,
    validation_metadata,
)
from infra.enrichment import EnrichmentResource
from infra.lakehouse import LakehouseResource, TableRef
from infra.spark import SparkResource
from transforms.recon.narrative import close_narratives, exception_lines

NARRATIVE = wap.GoldTable(
    "close_narrative",
    not_null=suites.NARRATIVE_NOT_NULL,
    checks=tuple(suites.NARRATIVE_CONSTRAINTS.items()),
)
EXCEPTIONS = TableRef("gold", "recon_exceptions")
SUMMARY = TableRef("gold", "close_summary")
RULES = suites.rule_specs(suites.close_narrative_suite())


@dataclass
class StagedNarrative:
    """One night's paragraphs: where they were staged, their audit, what they cost."""

    staged_version: int
    report: ValidationReport
    tokens: int


def stage_narrative_day(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    day: date,
    run_id: str,
) -> StagedNarrative:
    """Write one night's paragraphs to staging once, and audit them."""
    lines = exception_lines(
        lakehouse.read_partition(session, EXCEPTIONS, day),
        lakehouse.read_partition(session, SUMMARY, day),
        day,
    )
    written = close_narratives(lines, day, enrichment.provider_config(), CLOSE_NARRATIVE_TASK)
    staged_version = wap.stage(lakehouse, written, NARRATIVE, day)
    staged = lakehouse.read_partition(session, NARRATIVE.staging, day, staged_version)
    tokens = staged.agg(F.sum(F.col("tokens_in") + F.col("tokens_out"))).first()[0] or 0
    enrichment.record_spend(int(tokens))
    report = wap.audit(
        lakehouse, session, NARRATIVE, day, staged_version, suites.close_narrative_suite(), run_id
    )
    return StagedNarrative(staged_version, report, int(tokens))


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    deps=[AssetKey("gold_recon_exceptions"), AssetKey("gold_close_summary")],
    group_name="staging",
    kinds={"spark", "delta", "openai"},
    check_specs=suite_check_specs("staging_close_narrative", RULES),
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
    days = {
        day: stage_narrative_day(session, lakehouse, enrichment, day, context.run_id)
        for day in business_dates(context)
    }
    last = days[max(days)]
    staged = lakehouse.read_partition(session, NARRATIVE.staging, max(days), last.staged_version)
    yield MaterializeResult(
        metadata={
            "rows": sum(d.report.rows for d in days.values()),
            "staged_delta_version": last.staged_version,
            "table": NARRATIVE.staging.qualified,
            "written_by": enrichment.describe()
            if enrichment.api_key
            else "template (no OPENAI_API_KEY set: no LLM used)",
            "llm_tokens": sum(d.tokens for d in days.values()),
            **validation_metadata([d.report for _, d in sorted(days.items())]),
            "preview": MetadataValue.md(
                markdown_preview(staged.select("legal_entity", "narrative", "source", "model"))
            ),
        }
    )
    yield from suite_check_results(
        {day: (d.report, d.staged_version) for day, d in days.items()},
        "staging_close_narrative",
        [name for name, _, _ in RULES],
    )


gold_close_narrative = publish_asset(
    NARRATIVE,
    staging_close_narrative,
    "One paragraph per legal entity and night on the close, with who wrote it "
    "(template, model or LLM), its prompt version, the stages it took and its token cost.",
)
