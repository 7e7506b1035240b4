"""Expense report lines: landing -> bronze -> silver (+ quarantine) -> staging -> gold.

Each asset handles every business date of its run together (a backfill runs several dates in one
run and one Spark session: one read, one write); the enrichment scores the run's dates of one
training week in one pass, with that week's model. The work is in plain functions below the
assets.
"""

from collections.abc import Sequence
from datetime import date, timedelta

from dagster import (
    AssetExecutionContext,
    MetadataValue,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.publishing import publish_asset
from assets.sources import (
    bronze_asset,
    roster_names_on_dates,
    silver_asset,
    union_all,
)
from assets.staging import Staged, staged_gold_asset
from enrichment.prompts import EXPENSE_LINE_TASK
from expectations.expense_lines import (
    CONSTRAINTS,
    LABEL_DRIFT_LOOKBACK_DAYS,
    NOT_NULL_COLUMNS,
    all_rule_names,
    gold_expense_lines_suite,
)
from infra import versions, wap
from infra.checks import (
    markdown_preview,
)
from infra.enrichment import (
    EnrichmentResource,
    EnrichmentRun,
    enrichment_rollup,
)
from infra.lakehouse import LakehouseResource, TableRef
from infra.review import (
    REVIEWED_TABLES,
    decisions_frame,
    decisions_on,
    learned_decision_fingerprints,
)
from infra.settings import human_label_weight
from infra.spark import SessionSource
from transforms.contracts import EXPENSE_LINES
from transforms.expenses import LABEL_HISTORY_DAYS, expense_text, to_gold_expense_lines
from transforms.hr_cases import roster_names
from transforms.human_labels import HISTORY_LABEL, with_human_labels
from transforms.training_window import history_reach_days, training_window

BRONZE = TableRef("bronze", "expense_lines")
SILVER = TableRef("silver", "expense_lines")
ROSTER = TableRef("silver", "hris_roster")
GOLD = wap.GoldTable("expense_lines", not_null=NOT_NULL_COLUMNS, checks=tuple(CONSTRAINTS.items()))
GOLD_RULES = all_rule_names()
PREVIEW_COLUMNS = ["report_id", "line_id", "merchant", "amount", "currency", "spend_category",
                   "confidence", "justification_summary", "source"]  # fmt: skip


# Bronze through the generic contract path, like every other source.
bronze_expense_lines = bronze_asset(EXPENSE_LINES)
# A date's candidate reads its silver lines, the labelled history of its week's model (the
# LABEL_HISTORY_DAYS before its Monday: transforms/training_window.py, with the reviewers'
# decisions on those dates: an external input, learned_decision_fingerprints) and the rosters
# (the day's names redact its lines, the window's names the history); the drift reference (gold
# of earlier dates) only informs a warning rule, not the rows, and is not an input.
HISTORY_REACH_DAYS = history_reach_days(LABEL_HISTORY_DAYS)
# The reviewed field whose decisions the history model learns: the category it predicts.
LEARNED_FIELD = "spend_category"
STAGING_STEP = versions.Step(
    "staging_expense_lines",
    __name__,
    (
        versions.Upstream("silver_expense_lines", HISTORY_REACH_DAYS),
        versions.Upstream("silver_hris_roster", HISTORY_REACH_DAYS),
    ),
)


# Silver through the generic contract path too (transforms/sources.py holds the expense rules;
# expectations/expense_lines.py the suite silver and gold share).
silver_expense_lines = silver_asset(EXPENSE_LINES)


def recent_label_counts(
    lakehouse: LakehouseResource, session: SparkSession, days: Sequence[date]
) -> dict[date, dict[str, int]]:
    """Per date of ``days``, the label counts in gold over the ``LABEL_DRIFT_LOOKBACK_DAYS``
    before it: the reference for drift. One query for all the dates."""
    if not days:
        return {}
    if not lakehouse.exists(session, GOLD.gold):
        return {day: {} for day in days}
    lookback = timedelta(days=LABEL_DRIFT_LOOKBACK_DAYS)
    counts = (
        lakehouse.read(session, GOLD.gold)
        .where(
            (F.col("business_date") < F.lit(max(days)))
            & (F.col("business_date") >= F.lit(min(days) - lookback))
            & F.col("spend_category").isNotNull()
        )
        .groupBy("business_date", "spend_category")
        .count()
        .collect()
    )
    out: dict[date, dict[str, int]] = {}
    for day in days:
        totals: dict[str, int] = {}
        for when, label, n in counts:
            if day - lookback <= when < day:
                totals[label] = totals.get(label, 0) + n
        out[day] = totals
    return out


def enrich_week(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: Sequence[date],
    run_id: str,
    decisions: Sequence[dict] = (),
) -> EnrichmentRun:
    """Silver expense lines of ``days`` (dates of one training week) with a spend category and a
    summary (and provenance): the week's model scores them in one pass, each row redacted with
    its own date's roster.

    ``decisions`` are the ledger's rows on expense lines (``ops.review_decisions``): those on the
    history window's lines label them in place of the employee's claim, weighted above it.
    """
    silver = lakehouse.read_dates(session, SILVER, list(days))
    # Claims coded by employees over the LABEL_HISTORY_DAYS before the week, where a reviewer
    # decided a line's category the reviewer's label: the model's labelled history, a function of
    # the week alone (one model per week, whatever the run).
    window = training_window(days[0], LABEL_HISTORY_DAYS)
    spec = REVIEWED_TABLES["expense_lines"]
    history = (
        lakehouse.read(session, SILVER)
        .where(F.col("business_date").between(F.lit(window.first), F.lit(window.last)))
        .transform(
            with_human_labels(
                decisions_frame(session, list(decisions)),
                spec.name,
                spec.key_cols,
                LEARNED_FIELD,
                "claimed_category",
                human_label_weight(),
            )
        )
    )
    return enrichment.enrich_with_history(
        lakehouse,
        silver,
        text=expense_text(),
        task=EXPENSE_LINE_TASK,
        business_date=list(days),
        run_id=run_id,
        history=history,
        label_col=HISTORY_LABEL,
        coded_label_col="claimed_category",
        names=roster_names_on_dates(lakehouse, session, days),
        window=window,
        history_names=roster_names_between(lakehouse, session, window.first, window.last),
    )


def training_weeks(days: Sequence[date]) -> list[list[date]]:
    """A run's dates grouped by the training window that serves them, in date order."""
    weeks: dict[object, list[date]] = {}
    for day in sorted(days):
        weeks.setdefault(training_window(day, LABEL_HISTORY_DAYS), []).append(day)
    return list(weeks.values())


def roster_names_between(
    lakehouse: LakehouseResource, session: SparkSession, first: date, last: date
) -> list[str]:
    """Every name on the HRIS rosters of ``first`` .. ``last``: what the history is redacted with.

    The history's redaction depends on its window only (not on the date that trains the model).
    """
    if not lakehouse.exists(session, ROSTER):
        return []
    return roster_names(
        lakehouse.read(session, ROSTER).where(
            F.col("business_date").between(F.lit(first), F.lit(last))
        )
    )


def stage_and_audit_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: list[date],
    run_id: str,
) -> Staged:
    """Enrich a run's dates, write the candidates to staging in one commit, audit each date."""
    decisions = decisions_on(session, lakehouse, None, "expense_lines")
    runs = [
        enrich_week(session, lakehouse, enrichment, week, run_id, decisions)
        for week in training_weeks(days)
    ]
    candidate = union_all([run.rows.transform(to_gold_expense_lines) for run in runs])
    staged_version = wap.stage_dates(lakehouse, candidate, GOLD, days)
    references = recent_label_counts(lakehouse, session, days)
    reports = wap.audit_dates(
        lakehouse,
        session,
        GOLD,
        days,
        staged_version,
        lambda day: gold_expense_lines_suite(day, references[day]),
        run_id,
    )
    return Staged(staged_version, reports, runs)


def describe_expense_lines(staged: DataFrame, done: Staged, enrichment: EnrichmentResource) -> dict:
    """The history model's part, the enrichment rollup and a preview."""
    runs = done.runs
    return {
        "history_model": runs[-1].history_model or "none (too little labelled history)",
        # One model per week and history content (ops.history_models), scoring the run's
        # dates of its week together; loaded, not retrained, by a later run of the week.
        "history_models_trained": sum(r.history_model_trained for r in runs),
        "labelled_by_history_model": sum(r.model_labelled for r in runs),
        # What the reviewers' labels changed in the model of the run's last week.
        **runs[-1].history_model_learning,
        "routed_to_provider": sum(
            r.routed_to_provider if r.history_model else r.distinct_inputs for r in runs
        ),
        **enrichment_rollup(staged),
        "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
    }


def learned_decisions(
    context: AssetExecutionContext, session: SessionSource, lakehouse: LakehouseResource
) -> dict[date, str]:
    """Per date of the run, a fingerprint of the decisions its training window learns from:
    a new decision there makes the date compute again (its week's model is retrained)."""
    return learned_decision_fingerprints(
        decisions_on(session, lakehouse, None, "expense_lines"),
        {day: training_window(day, LABEL_HISTORY_DAYS) for day in versions.run_dates(context)},
        LEARNED_FIELD,
        human_label_weight(),
    )


staging_expense_lines = staged_gold_asset(
    name="staging_expense_lines",
    table=GOLD,
    step=STAGING_STEP,
    rules=GOLD_RULES,
    deps=["silver_expense_lines", "silver_hris_roster"],
    stage=stage_and_audit_dates,
    describe=describe_expense_lines,
    external=learned_decisions,
    description="Candidate gold partition: silver expense lines enriched with a spend category "
    "(with confidence) and a one-sentence justification summary, audited by the "
    "gold_expense_lines suite before anything reaches gold.",
)


gold_expense_lines = publish_asset(
    GOLD,
    staging_expense_lines,
    "Published, enriched expense lines. Grain: one row per (report_id, line_id) per "
    "business_date. Every row carries enrichment provenance (model, source, confidence). Only "
    "partitions whose staging audit passed are published.",
    reviewed=REVIEWED_TABLES["expense_lines"],
)
