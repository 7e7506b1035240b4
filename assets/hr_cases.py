"""HR cases: silver -> staging (type, urgency, summary; redacted first) -> gold.

The text of a case is redacted with the names on that date's HRIS roster before it is hashed,
cached or sent anywhere (``transforms/enrich.py``); the tasks are in ``enrichment/prompts.py``, the
shape in ``transforms/hr_cases.py`` and the rules in ``expectations/hr_cases.py``.
"""

from datetime import date

from dagster import MetadataValue
from pyspark.sql import DataFrame, SparkSession

from assets.publishing import publish_asset
from assets.sources import roster_names_on_dates
from assets.staging import Staged, staged_gold_asset
from enrichment.prompts import HR_CASE_TASK, HR_CASE_URGENCY_TASK
from expectations.hr_cases import CONSTRAINTS, NOT_NULL_COLUMNS, all_rule_names, gold_hr_cases_suite
from infra import versions, wap
from infra.checks import markdown_preview
from infra.enrichment import EnrichmentResource, EnrichmentRun, enrichment_rollup
from infra.lakehouse import LakehouseResource, TableRef
from infra.review import REVIEWED_TABLES
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
    names = roster_names_on_dates(lakehouse, session, days)
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
) -> Staged:
    """Enrich a run's dates of cases, stage them in one commit and audit each date."""
    candidate, runs = enrich_cases_dates(session, lakehouse, enrichment, days, run_id)
    staged_version = wap.stage_dates(lakehouse, candidate, GOLD, days)
    reports = wap.audit_dates(
        lakehouse, session, GOLD, days, staged_version, lambda _: gold_hr_cases_suite(), run_id
    )
    return Staged(staged_version, reports, runs)


def describe_cases(staged: DataFrame, done: Staged, enrichment: EnrichmentResource) -> dict:
    """The cases' own figures: by type and urgency, both outcomes' rollups, a preview."""
    by_type: dict[str, int] = {}
    by_urgency: dict[str, int] = {}
    for row in staged.groupBy("case_type", "urgency").count().collect():  # one job for both
        by_type[row[0]] = by_type.get(row[0], 0) + row[2]
        by_urgency[row[1]] = by_urgency.get(row[1], 0) + row[2]
    return {
        "cases_by_type": MetadataValue.json({str(k): v for k, v in by_type.items()}),
        "cases_by_urgency": MetadataValue.json({str(k): v for k, v in by_urgency.items()}),
        **enrichment_rollup(staged),
        **enrichment_rollup(staged, URGENCY_PREFIX),
        "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
    }


staging_hr_cases = staged_gold_asset(
    name="staging_hr_cases",
    table=GOLD,
    step=STAGING_STEP,
    rules=RULES,
    deps=["silver_hr_cases", "silver_hris_roster"],
    stage=stage_and_audit_hr_cases_dates,
    describe=describe_cases,
    description="Candidate gold partition of HR cases: case type and urgency (each with "
    "confidence and provenance) and a summary for the case handler, all computed from text "
    "with personal data redacted (roster names, e-mails, phones, ids, account numbers, "
    "salaries). Audited by the gold_hr_cases suite before anything reaches gold.",
)


gold_hr_cases = publish_asset(
    GOLD,
    staging_hr_cases,
    "Published, enriched HR cases: one row per case per business_date with case "
    "type, urgency, a redacted summary, what was redacted, and per-output provenance (model, "
    "source, confidence). No free text from the source: subject and description stay in silver.",
    reviewed=REVIEWED_TABLES["hr_cases"],
)
