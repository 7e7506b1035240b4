"""The night's close as one paragraph per legal entity, for the controller.

With an LLM configured, the entity's open exceptions (one line each, oldest first) are summarized
in stages past the context window (``enrichment/group_summary.py``, prompt
``CLOSE_NARRATIVE_TASK``) through the group summary cache (``EnrichmentResource.summarize_groups``),
and :func:`close_narratives` is handed those summaries. Without one, the paragraph is a template
filled from the same rows: counts by type, open amounts by currency, the oldest item, what closed
today. It says so: ``source`` = rule and ``model`` names the template, never an LLM. When the
LLM was asked and failed an entity's paragraph, the template writes it instead (``fallback``),
and ``error`` keeps why the LLM did not.
"""

from datetime import date
from decimal import Decimal

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from enrichment.models import SOURCE_RULE, STATUS_FAILED, STATUS_OK
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX

TEMPLATE_MODEL_ID = "template/close-narrative-v1"
NO_OPEN_LINE = "No reconciliation exception is open for this entity tonight."

NARRATIVE_COLUMNS = [
    "business_date",
    "legal_entity",
    "status",
    "narrative",
    "open_exceptions",
    "closed_today",
    "stages",
    "truncated_rows",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "source",
    "model",
    "prompt_version",
    "error",
]
# The lines' key: a night's paragraphs are one per entity; a run's nights are written together.
NARRATIVE_GROUP = ("business_date", "legal_entity")


def exception_lines(exceptions: DataFrame, entities: DataFrame, as_of: date) -> DataFrame:
    """One line per exception of ``as_of`` (open first, oldest first), per entity in ``entities``.

    ``exception_lines_dates`` for the one night ``as_of``; ``entities`` may be undated (every
    entity in it is reported on ``as_of``).
    """
    if "business_date" not in entities.columns:
        entities = entities.withColumn("business_date", F.lit(as_of).cast("date"))
    return exception_lines_dates(exceptions, entities, [as_of])


def exception_lines_dates(
    exceptions: DataFrame, entities: DataFrame, days: list[date]
) -> DataFrame:
    """One line per exception of each night of ``days`` (open first, oldest first), per entity.

    ``entities`` holds the entities to report on each night (``business_date``, ``legal_entity``:
    the night's close summary). An entity with nothing to report on a night gets one line saying
    so, so every entity gets a paragraph. Rows carry ``business_date``: a run's nights are told
    together, in one plan.
    """
    nights = F.col("business_date").isin([F.lit(d) for d in sorted(set(days))])
    day = exceptions.where(nights)
    line = F.format_string(
        "%s (%s) %s %d days, since %s: %s %s. %s",
        F.col("exception_type"),
        F.col("recon"),
        F.when(F.col("status") == "open", F.lit("open")).otherwise(
            F.concat(F.lit("closed today ("), F.col("resolution"), F.lit(") after"))
        ),
        F.col("age_days"),
        F.col("first_seen_date").cast("string"),
        F.col("amount").cast("string"),
        F.col("currency"),
        F.coalesce(F.col("detail"), F.lit("")),
    )
    ordered = F.row_number().over(
        Window.partitionBy("business_date", "legal_entity").orderBy(
            (F.col("status") != "open").cast("int"), F.col("age_days").desc(), "exception_id"
        )
    )
    lines = day.select(
        F.col("business_date").cast("date").alias("business_date"),
        "legal_entity",
        ordered.cast("long").alias("seq"),
        line.alias("line"),
        "exception_type",
        "recon",
        "status",
        F.col("age_days").cast("int"),
        "first_seen_date",
        F.col("amount").cast("decimal(18,2)"),
        "currency",
    )
    night_entity = ["business_date", "legal_entity"]
    quiet = (
        entities.where(nights)
        .select(*night_entity)
        .distinct()
        .join(day.select(*night_entity).distinct(), night_entity, "left_anti")
        .select(
            F.col("business_date").cast("date").alias("business_date"),
            "legal_entity",
            F.lit(0).cast("long").alias("seq"),
            F.lit(NO_OPEN_LINE).alias("line"),
            *[F.lit(None).cast(t).alias(c) for c, t in _NULL_COLUMNS],
        )
    )
    return lines.unionByName(quiet)


_NULL_COLUMNS = [
    ("exception_type", "string"),
    ("recon", "string"),
    ("status", "string"),
    ("age_days", "int"),
    ("first_seen_date", "date"),
    ("amount", "decimal(18,2)"),
    ("currency", "string"),
]


def template_paragraph(entity: str, rows: pd.DataFrame) -> str:
    """The paragraph the template writes for one entity from its exception rows."""
    rows = rows[rows["status"].notna()]
    open_rows = rows[rows["status"] == "open"]
    closed = int((rows["status"] == "closed").sum())
    if open_rows.empty:
        text = f"{entity}: no reconciliation exception is open."
    else:
        kinds = open_rows.groupby("exception_type").size().sort_values(ascending=False)
        by_kind = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        totals: dict[str, Decimal] = {}
        for amount, currency in zip(open_rows["amount"], open_rows["currency"], strict=True):
            if amount is not None and currency:
                totals[currency] = totals.get(currency, Decimal(0)) + abs(Decimal(str(amount)))
        money = " and ".join(f"{c} {v:,.2f}" for c, v in sorted(totals.items()))
        oldest = open_rows.sort_values("age_days", ascending=False).iloc[0]
        text = (
            f"{entity}: {len(open_rows)} reconciliation exception"
            f"{'s are' if len(open_rows) != 1 else ' is'} open ({by_kind}), "
            f"{money or 'no amount'} unexplained in absolute terms. The oldest is "
            f"{oldest['exception_type']} in {oldest['recon']}, open {int(oldest['age_days'])} "
            f"days since {oldest['first_seen_date']}."
        )
    if closed:
        text += f" {closed} exception{'s' if closed != 1 else ''} closed today."
    return text


def _narrate(pdf: pd.DataFrame) -> pd.DataFrame:
    """The template's paragraph for one entity and night (``applyInPandas``)."""
    entity = str(pdf["legal_entity"].iloc[0])
    return pd.DataFrame(
        [
            {
                "business_date": pdf["business_date"].iloc[0],
                "legal_entity": entity,
                "status": STATUS_OK,
                "narrative": template_paragraph(entity, pdf),
                "stages": 0,
                "truncated_rows": 0,
                "tokens_in": 0,
                "tokens_out": 0,
                "cost_usd": 0.0,
                "source": SOURCE_RULE,
                "model": TEMPLATE_MODEL_ID,
                "prompt_version": None,
                "error": None,
            }
        ]
    )


_TEMPLATE_SCHEMA = (
    "business_date date, legal_entity string, status string, narrative string, stages int, "
    "truncated_rows int, tokens_in int, tokens_out int, cost_usd double, source string, "
    "model string, prompt_version string, error string"
)


def _template_where_failed(template: DataFrame):
    """Replace the failed paragraphs of a summaries frame by the template's, marked."""
    group = list(NARRATIVE_GROUP)
    answered = ("narrative", "source", "model")
    spare = template.select(*group, *[F.col(c).alias(f"_template_{c}") for c in answered])

    def transform(summaries: DataFrame) -> DataFrame:
        fell = (F.col("status") == STATUS_FAILED) & F.col("_template_narrative").isNotNull()
        why = F.concat(F.lit(FALLBACK_ERROR_PREFIX), F.coalesce(F.col("error"), F.lit("failed")))
        return (
            summaries.join(spare, group, "left")
            .withColumns(
                {
                    **{
                        c: F.when(fell, F.col(f"_template_{c}")).otherwise(F.col(c))
                        for c in answered
                    },
                    "status": F.when(fell, F.lit(STATUS_OK)).otherwise(F.col("status")),
                    "prompt_version": F.when(fell, F.lit(None)).otherwise(F.col("prompt_version")),
                    "error": F.when(fell, why).otherwise(F.col("error")),
                }
            )
            .drop(*[f"_template_{c}" for c in answered])
        )

    return transform


def close_narratives(
    lines: DataFrame, summaries: DataFrame | None = None, fallback: bool = False
) -> DataFrame:
    """One paragraph per entity and night of ``exception_lines``.

    Args:
        lines: ``exception_lines`` of one night or of a run's nights, unioned.
        summaries: The LLM's summaries of ``lines``, one row per ``business_date`` and
            ``legal_entity`` (``EnrichmentResource.summarize_groups``); without them the
            template writes every paragraph.
        fallback: With ``summaries``, a paragraph the LLM failed is the template's (status ok,
            ``source`` = rule, ``error`` = why the LLM did not; tokens spent are kept).
    """
    group = list(NARRATIVE_GROUP)
    counts = lines.groupBy(*group).agg(
        F.sum((F.col("status") == "open").cast("int")).alias("open_exceptions"),
        F.sum((F.col("status") == "closed").cast("int")).alias("closed_today"),
    )
    if summaries is None:
        written = lines.groupBy(*group).applyInPandas(_narrate, _TEMPLATE_SCHEMA)
    elif fallback:
        template = lines.groupBy(*group).applyInPandas(_narrate, _TEMPLATE_SCHEMA)
        written = summaries.transform(_template_where_failed(template))
    else:
        written = summaries
    return written.join(counts, group).select(
        *[
            F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c)
            if c in ("open_exceptions", "closed_today")
            else F.col(c)
            for c in NARRATIVE_COLUMNS
        ]
    )
