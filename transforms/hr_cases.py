"""HR cases: the text sent for enrichment, and the enriched gold shape.

Two tasks enrich a case (``enrichment/prompts.py``): its type with a summary for the case handler
(``HR_CASE_TASK``) and how urgently HR must act (``HR_CASE_URGENCY_TASK``). Both see the same
redacted text; each keeps its own provenance, because a row's type may come from the cache and its
urgency from a fresh call, or one may fail while the other succeeds.

Gold keeps no free text from the source: the subject and description stay in silver (where access
is restricted), gold carries the redacted summary and what was redacted.
"""

from collections.abc import Iterable
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.enrich import PROVENANCE_COLUMNS, with_failure_kind

KEY = ("case_id",)
# Provenance columns of one enrichment outcome, as ``EnrichmentResource.enrich`` returns them.
URGENCY_PREFIX = "urgency_"

GOLD_HR_CASE_COLUMNS = [
    "case_id",
    "business_date",
    "opened_at",
    "employee_id",
    "channel",
    "case_type",
    "case_type_confidence",
    "case_summary",
    "urgency",
    "urgency_confidence",
    "urgency_rationale",
    "redactions",
    "injection_suspected",
    *PROVENANCE_COLUMNS,
    *[URGENCY_PREFIX + c for c in PROVENANCE_COLUMNS],
]


def hr_case_text() -> Column:
    """What the model reads of a case: its subject and description, labelled."""
    return F.concat_ws(
        "\n",
        F.concat(F.lit("Subject: "), F.coalesce(F.col("subject"), F.lit(""))),
        F.concat(F.lit("Description: "), F.coalesce(F.col("description"), F.lit(""))),
    )


def roster_names(roster: DataFrame) -> list[str]:
    """Every employee name on a roster: what the redactor must recognise as a person."""
    rows = roster.where(F.col("name").isNotNull()).select("name").distinct().collect()
    return sorted(r["name"] for r in rows)


def roster_names_by_date(roster: DataFrame, days: Iterable[date]) -> dict[date, list[str]]:
    """``roster_names`` of each date's roster (``business_date``), in one query for all ``days``;
    a date without a roster gets none."""
    wanted = sorted(set(days))
    rows = (
        roster.where(F.col("business_date").isin([F.lit(d) for d in wanted]))
        .where(F.col("name").isNotNull())
        .select("business_date", "name")
        .distinct()
        .collect()
    )
    names: dict[date, list[str]] = {day: [] for day in wanted}
    for row in rows:
        names[row["business_date"]].append(row["name"])
    return {day: sorted(found) for day, found in names.items()}


def to_gold_hr_cases(case_type: DataFrame, urgency: DataFrame) -> DataFrame:
    """Join a case's two enrichment outcomes into the gold shape (one row per case).

    ``case_type`` and ``urgency`` are the same silver rows, each enriched by its task; the urgency
    outcome's provenance columns are prefixed ``urgency_``.
    """
    typed = case_type.transform(with_failure_kind)
    # By case and date: a run's dates are enriched together, and a case may recur on them.
    on = [*KEY, "business_date"]
    urgent = urgency.transform(with_failure_kind).select(
        *on,
        F.col("label").alias("urgency"),
        F.col("confidence").alias("urgency_confidence"),
        F.col("rationale").alias("urgency_rationale"),
        *[F.col(c).alias(URGENCY_PREFIX + c) for c in PROVENANCE_COLUMNS],
    )
    return (
        typed.withColumnRenamed("label", "case_type")
        .withColumnRenamed("confidence", "case_type_confidence")
        .withColumnRenamed("summary", "case_summary")
        .join(urgent, on, "left")
        .select(*GOLD_HR_CASE_COLUMNS)
    )
