"""Expense report lines: landing -> bronze -> silver (+ quarantine) -> staging -> gold.

Each asset handles every business date of its run together (a backfill runs several dates in one
run and one Spark session: one read, one write); the enrichment scores the run's dates of one
training week in one pass, with that week's model. The work is in plain functions below the
assets.
"""

from collections.abc import Sequence
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from assets.publishing import publish_asset
from assets.sources import (
    SilverDay,
    bronze_asset,
    record_conformed,
    repeated_files_in,
    roster_names_on,
    silver_step,
    union_all,
    write_silver_dates,
)
from assets.staging import Staged, staged_gold_asset
from enrichment.prompts import EXPENSE_LINE_TASK
from expectations.expense_lines import (
    CONSTRAINTS,
    LABEL_DRIFT_LOOKBACK_DAYS,
    NOT_NULL_COLUMNS,
    all_rule_names,
    gold_expense_lines_suite,
    silver_expense_lines_suite,
)
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
from infra.spark import SparkResource
from transforms.conform import day_rates
from transforms.contracts import EXPENSE_LINES, FX_RATES
from transforms.expenses import (
    LABEL_HISTORY_DAYS,
    classify_expense_rows,
    expense_text,
    silver_expense_lines,
    to_gold_expense_lines,
)
from transforms.hr_cases import roster_names
from transforms.human_labels import HISTORY_LABEL, with_human_labels
from transforms.training_window import history_reach_days, training_window

BRONZE = TableRef("bronze", "expense_lines")
SILVER = TableRef("silver", "expense_lines")
QUARANTINE = TableRef("silver", "quarantine")
ROSTER = TableRef("silver", "hris_roster")
FX_SILVER = TableRef("silver", FX_RATES.name)
GOLD = wap.GoldTable("expense_lines", not_null=NOT_NULL_COLUMNS, checks=tuple(CONSTRAINTS.items()))
GOLD_RULES = all_rule_names()
SILVER_RULES = [
    (r.name, r.severity, r.description) for r in silver_expense_lines_suite(date(2000, 1, 1)).rules
]
PREVIEW_COLUMNS = ["report_id", "line_id", "merchant", "amount", "currency", "spend_category",
                   "confidence", "justification_summary", "source"]  # fmt: skip


# Bronze through the generic contract path, like every other source.
bronze_expense_lines = bronze_asset(EXPENSE_LINES)
SILVER_STEP = silver_step(EXPENSE_LINES)
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


def build_silver_dates(
    session: SparkSession, lakehouse: LakehouseResource, days: list[date], run_id: str
) -> dict[date, SilverDay]:
    """Type, validate and dedupe a run's dates of bronze into silver and quarantine; audit."""
    repeats = repeated_files_in(session, lakehouse, EXPENSE_LINES, days)

    def classify(day: date):
        rates = day_rates(lakehouse.read_partition(session, FX_SILVER, day), day)
        return lakehouse.read_partition(session, BRONZE, day).transform(
            classify_expense_rows(day, rates, repeats.get(day))
        )

    return write_silver_dates(
        session,
        lakehouse,
        EXPENSE_LINES,
        days,
        classify,
        silver_expense_lines,
        silver_expense_lines_suite,
        run_id,
    )


def build_silver_day(
    session: SparkSession, lakehouse: LakehouseResource, day: date, run_id: str
) -> SilverDay:
    """``build_silver_dates`` for one date."""
    return build_silver_dates(session, lakehouse, [day], run_id)[day]


@multi_asset(
    specs=[
        AssetSpec(
            "silver_expense_lines",
            code_version=SILVER_STEP.code_version,
            deps=[AssetKey("bronze_expense_lines"), AssetKey("silver_fx_rates")],
            group_name="silver",
            kinds={"spark", "delta"},
            description="Typed, validated expense lines, converted to USD at the day's rate. "
            "Grain: one row per (report_id, line_id) per business_date.",
        ),
        AssetSpec(
            "quarantine_expense_lines",
            code_version=SILVER_STEP.code_version,
            # Same parents as silver: a missing FX rate is a quarantine reason. (Dagster also
            # refuses a UI backfill of a multi-asset whose keys have different parents.)
            deps=[AssetKey("bronze_expense_lines"), AssetKey("silver_fx_rates")],
            group_name="silver",
            kinds={"spark", "delta"},
            description="Expense lines rejected on the way to silver, each with its reason_code; "
            "the expense_lines rows of silver.quarantine.",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    check_specs=[
        AssetCheckSpec(
            "bronze_rows_conserved",
            asset="silver_expense_lines",
            description="bronze rows = silver rows + quarantined rows: nothing silently dropped.",
            blocking=True,
        ),
        *suite_check_specs("silver_expense_lines", SILVER_RULES),
    ],
)
def silver_expense_lines_assets(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    plan = versions.plan_run(context, spark.session, lakehouse, SILVER_STEP)
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    days = build_silver_dates(spark.session, lakehouse, plan.to_run, context.run_id)
    record_conformed(spark.session, lakehouse, plan, days, context.run_id)
    reasons: dict[str, int] = {}
    for result in days.values():
        for code, count in result.reasons.items():
            reasons[code] = reasons.get(code, 0) + count
    last = days[max(days)]
    yield MaterializeResult(
        asset_key="silver_expense_lines",
        metadata={
            **plan.metadata(),
            "rows": sum(d.silver_rows for d in days.values()),
            "bronze_rows": sum(d.bronze_rows for d in days.values()),
            "quarantined_rows": sum(d.quarantine_rows for d in days.values()),
            "delta_version": last.silver_version,
            "table": SILVER.qualified,
            **validation_metadata([d.report for _, d in sorted(days.items())]),
        },
    )
    yield MaterializeResult(
        asset_key="quarantine_expense_lines",
        metadata={
            "rows": sum(d.quarantine_rows for d in days.values()),
            "top_reasons": MetadataValue.json(dict(sorted(reasons.items(), key=lambda kv: -kv[1]))),
            "table": QUARANTINE.qualified,
        },
    )
    unbalanced = {
        str(day): {
            "bronze": d.bronze_rows,
            "silver": d.silver_rows,
            "quarantine": d.quarantine_rows,
        }
        for day, d in days.items()
        if d.bronze_rows != d.silver_rows + d.quarantine_rows
    }
    yield AssetCheckResult(
        asset_key="silver_expense_lines",
        check_name="bronze_rows_conserved",
        passed=not unbalanced,
        metadata={
            "bronze": sum(d.bronze_rows for d in days.values()),
            "silver": sum(d.silver_rows for d in days.values()),
            "quarantine": sum(d.quarantine_rows for d in days.values()),
            "dates_not_conserved": MetadataValue.json(unbalanced),
        },
    )
    yield from suite_check_results(
        {day: (d.report, d.silver_version) for day, d in days.items()},
        "silver_expense_lines",
        [name for name, _, _ in SILVER_RULES],
    )


def recent_label_counts(
    lakehouse: LakehouseResource, session: SparkSession, day: date
) -> dict[str, int]:
    """Label counts in gold over the days before ``day``: the reference for drift."""
    if not lakehouse.exists(session, GOLD.gold):
        return {}
    window = lakehouse.read(session, GOLD.gold).where(
        (F.col("business_date") < F.lit(day))
        & (F.col("business_date") >= F.lit(day - timedelta(days=LABEL_DRIFT_LOOKBACK_DAYS)))
        & F.col("spend_category").isNotNull()
    )
    return {r[0]: r[1] for r in window.groupBy("spend_category").count().collect()}


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
        names={day: roster_names_on(lakehouse, session, day) for day in days},
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
    references = {day: recent_label_counts(lakehouse, session, day) for day in days}
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
    context: AssetExecutionContext, session: SparkSession, lakehouse: LakehouseResource
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
