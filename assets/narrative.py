"""The close narrative: one paragraph per legal entity and night, staged, audited, published.

The rows and the template are in ``transforms/recon/narrative.py``, the staged summarization in
``enrichment/group_summary.py``, the prompt in ``enrichment/prompts.py`` and the rules in
``expectations/reconciliation.py``.
"""

from datetime import date

from dagster import MetadataValue
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.publishing import publish_asset
from assets.staging import Staged, staged_gold_asset
from enrichment.prompts import CLOSE_NARRATIVE_TASK
from enrichment.providers.base import EMBEDDED
from expectations import reconciliation as suites
from infra import versions, wap
from infra.checks import markdown_preview
from infra.enrichment import EnrichmentResource
from infra.lakehouse import LakehouseResource, TableRef
from transforms.recon.narrative import NARRATIVE_GROUP, close_narratives, exception_lines_dates

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


def stage_narrative_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: list[date],
    run_id: str,
) -> Staged:
    """Write a run's nightly paragraphs to staging in one commit, and audit each night."""
    lines = exception_lines_dates(
        lakehouse.read_dates(session, EXCEPTIONS, days),
        lakehouse.read_dates(session, SUMMARY, days),
        days,
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
    return Staged(staged_version, reports, other_tokens=int(tokens))


def describe_narrative(staged: DataFrame, done: Staged, enrichment: EnrichmentResource) -> dict:
    """Who wrote the paragraphs, their tokens, and the last night's paragraphs."""
    last = staged.where(F.col("business_date") == F.lit(max(done.reports)))
    return {
        "written_by": enrichment.describe()
        if enrichment.api_key
        else "template (no OPENAI_API_KEY set: no LLM used)",
        "llm_tokens": done.other_tokens,
        "preview": MetadataValue.md(
            markdown_preview(last.select("legal_entity", "narrative", "source", "model"))
        ),
    }


staging_close_narrative = staged_gold_asset(
    name="staging_close_narrative",
    table=NARRATIVE,
    step=STAGING_STEP,
    rules=RULES,
    deps=["gold_recon_exceptions", "gold_close_summary"],
    stage=stage_narrative_dates,
    describe=describe_narrative,
    description="Candidate paragraphs for gold.close_narrative: per legal entity, the night's "
    "open exceptions told for the controller. An LLM summarizes them in stages when one is "
    "configured; otherwise a template fills the paragraph from the same rows (source = rule).",
)


gold_close_narrative = publish_asset(
    NARRATIVE,
    staging_close_narrative,
    "One paragraph per legal entity and night on the close, with who wrote it "
    "(template, model or LLM), its prompt version, the stages it took and its token cost.",
)
