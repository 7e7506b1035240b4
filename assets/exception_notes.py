"""Notes on the night's open reconciliation exceptions: probable reason and an analyst sentence.

Staged, audited and published like every gold table. The text and shape are in
``transforms/recon/notes.py``, the task in ``enrichment/prompts.py``, the rules in
``expectations/reconciliation.py``.
"""

from datetime import date

from dagster import MetadataValue
from pyspark.sql import DataFrame, SparkSession

from assets.publishing import publish_asset
from assets.sources import roster_names_on_dates
from assets.staging import Staged, staged_gold_asset
from enrichment.prompts import EXCEPTION_NOTE_TASK
from expectations import reconciliation as suites
from infra import review, versions, wap
from infra.checks import markdown_preview
from infra.enrichment import EnrichmentResource, enrichment_rollup
from infra.lakehouse import LakehouseResource, TableRef
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


def stage_notes_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: list[date],
    run_id: str,
) -> Staged:
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
            roster_names_on_dates(lakehouse, session, days),
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
    return Staged(staged_version, reports, runs)


def describe_notes(staged: DataFrame, done: Staged, enrichment: EnrichmentResource) -> dict:
    """The notes' own figures: notes by probable reason, the enrichment rollup, a preview."""
    reasons = {str(r[0]): r[1] for r in staged.groupBy("probable_reason").count().collect()}
    return {
        "notes_by_reason": MetadataValue.json(reasons),
        **enrichment_rollup(staged),
        "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
    }


staging_recon_exception_notes = staged_gold_asset(
    name="staging_recon_exception_notes",
    table=NOTES,
    step=STAGING_STEP,
    rules=RULES,
    deps=["gold_recon_exceptions"],
    stage=stage_notes_dates,
    describe=describe_notes,
    description="Candidate notes on the night's open reconciliation exceptions: a probable "
    "reason (with confidence and provenance) and one sentence an analyst can act on. An item "
    "carried open from night to night is enriched once (the cache).",
)


gold_recon_exception_notes = publish_asset(
    NOTES,
    staging_recon_exception_notes,
    "One note per open reconciliation exception per night: probable reason, "
    "confidence, an analyst sentence, and who produced them (model or LLM) at what cost. Join "
    "to gold.recon_exceptions on exception_id and business_date. An analyst's decision on the "
    "probable reason (make review) is published on top of the model's (source = human, "
    "reviewed_by, reviewed_at).",
    reviewed=review.REVIEWED_TABLES["recon_exception_notes"],
)
