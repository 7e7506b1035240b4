"""Quality rules for expense lines: the silver table and the enriched gold table.

Thresholds live here, next to the rules they tune. ``CONSTRAINTS`` and ``NOT_NULL_COLUMNS`` are the
Delta ``CHECK`` / ``NOT NULL`` constraints gold carries as a backstop, should anything bypass the
gate.
"""

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from enrichment.models import STATUSES
from enrichment.taxonomies import SPEND_CATEGORY
from expectations.enrichment import availability_rules, label_rules, summary_rules
from expectations.gx import expect
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.contracts import MAX_EXPENSE_AGE_DAYS, MAX_EXPENSE_AMOUNT, VALID_CURRENCIES

KEY = ("report_id", "line_id")
# Share of rows whose enrichment may fail or be skipped before the partition warns.
MAX_UNENRICHED_SHARE = 0.05
# Share of rows left failed (no LLM answer and no fallback) that blocks the partition.
MAX_FAILED_SHARE = 0.20
# Share of rows answered by the offline fallback (the LLM unavailable) before it warns.
MAX_FALLBACK_SHARE = 0.05
# Share of rows the model refused or truncated before the partition warns.
MAX_REFUSED_OR_TRUNCATED_SHARE = 0.02
SUMMARY_MAX_CHARS = 300
# KL divergence of today's label distribution from the recent one that warns of drift.
LABEL_DRIFT_THRESHOLD = 0.5
LABEL_DRIFT_LOOKBACK_DAYS = 14

NOT_NULL_COLUMNS = ("report_id", "line_id", "amount", "currency", "business_date", "model")
CONSTRAINTS = {
    "amount_in_range": f"amount > 0 AND amount <= {MAX_EXPENSE_AMOUNT}",
    "confidence_is_probability": "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)",
    "known_enrichment_status": "enrichment_status IN ("
    + ", ".join(f"'{s}'" for s in STATUSES)
    + ")",
    "ok_rows_have_a_label": "enrichment_status <> 'ok' OR spend_category IS NOT NULL",
}


def claim_age(lines: DataFrame) -> DataFrame:
    """``claim_age_days``: days from a line's transaction to its own business date (negative: a
    claim dated after it). The claim window reads the same on every date, so a run over several
    dates checks it in one pass."""
    return lines.withColumn("claim_age_days", F.datediff("business_date", "transaction_date"))


def _line_rules() -> tuple[Rule, ...]:
    """What every expense line must meet, in silver and in gold alike (``claim_age`` prepared).

    That every row belongs to the partition is not a rule here: Delta's ``replaceWhere`` already
    refuses a write with a row of another date, before any validation.
    """
    return (
        Rule(
            "report_id_not_null",
            ERROR,
            "Every line belongs to an expense report.",
            expect.ExpectColumnValuesToNotBeNull(column="report_id"),
        ),
        Rule(
            "line_id_not_null",
            ERROR,
            "Every line has its number within the report.",
            expect.ExpectColumnValuesToNotBeNull(column="line_id"),
        ),
        Rule(
            "line_key_unique",
            ERROR,
            "One row per (report_id, line_id): no line is counted twice.",
            expect.ExpectCompoundColumnsToBeUnique(column_list=list(KEY)),
        ),
        Rule(
            "employee_id_not_null",
            ERROR,
            "Every claim names the employee who made it.",
            expect.ExpectColumnValuesToNotBeNull(column="employee_id"),
        ),
        Rule(
            "amount_in_range",
            ERROR,
            f"Claimed amounts are positive and at most {MAX_EXPENSE_AMOUNT:,}.",
            expect.ExpectColumnValuesToBeBetween(
                column="amount", min_value=0.01, max_value=MAX_EXPENSE_AMOUNT
            ),
        ),
        Rule(
            "currency_is_iso",
            ERROR,
            "Currencies are ISO 4217 codes the group accepts.",
            expect.ExpectColumnValuesToBeInSet(
                column="currency", value_set=sorted(VALID_CURRENCIES)
            ),
        ),
        Rule(
            "transaction_date_in_claim_window",
            ERROR,
            f"Claims are dated on or before the business date and at most "
            f"{MAX_EXPENSE_AGE_DAYS} days earlier.",
            expect.ExpectColumnValuesToBeBetween(
                column="claim_age_days", min_value=0, max_value=MAX_EXPENSE_AGE_DAYS
            ),
        ),
    )


def silver_expense_lines_suite(business_date: date) -> Suite:
    """The suite for one business date of ``silver.expense_lines`` (alike on every date: the
    claim window is relative to each row's own business date)."""
    return Suite(name="silver_expense_lines", key=KEY, rules=_line_rules(), prepare=claim_age)


def label_drift_reference(recent_counts: dict[str, int]) -> dict[str, list]:
    """A smoothed categorical distribution over every label, from recent partitions' counts."""
    labels = SPEND_CATEGORY.names
    total = sum(recent_counts.get(label, 0) + 1 for label in labels)
    return {
        "values": labels,
        "weights": [(recent_counts.get(label, 0) + 1) / total for label in labels],
    }


def gold_expense_lines_suite(
    business_date: date, recent_label_counts: dict[str, int] | None = None
) -> Suite:
    """The suite the enriched candidate must pass before it is published to gold.

    Args:
        business_date: the partition being audited.
        recent_label_counts: label counts of the previous ``LABEL_DRIFT_LOOKBACK_DAYS`` of gold;
            without them the drift rule is left out (there is nothing to drift from).
    """
    llm_rules = [
        *label_rules("spend_category", "confidence", SPEND_CATEGORY),
        *summary_rules("justification_summary", SUMMARY_MAX_CHARS),
        Rule(
            "enriched_share",
            WARN,
            f"At most {MAX_UNENRICHED_SHARE:.0%} of rows failed or were skipped.",
            expect.ExpectColumnValuesToBeInSet(
                column="enrichment_status", value_set=["ok"], mostly=1 - MAX_UNENRICHED_SHARE
            ),
        ),
        *availability_rules("spend category", MAX_FAILED_SHARE, MAX_FALLBACK_SHARE),
        Rule(
            "refusal_and_truncation_rate",
            WARN,
            f"At most {MAX_REFUSED_OR_TRUNCATED_SHARE:.0%} of rows were refused or truncated.",
            expect.ExpectColumnValuesToNotBeInSet(
                column="failure_kind",
                value_set=["refusal", "truncated"],
                mostly=1 - MAX_REFUSED_OR_TRUNCATED_SHARE,
            ),
        ),
    ]
    if recent_label_counts:
        llm_rules.append(
            Rule(
                "spend_category_drift",
                WARN,
                f"Today's label mix is within KL {LABEL_DRIFT_THRESHOLD} of the last "
                f"{LABEL_DRIFT_LOOKBACK_DAYS} days.",
                expect.ExpectColumnKLDivergenceToBeLessThan(
                    column="spend_category",
                    partition_object=label_drift_reference(recent_label_counts),
                    threshold=LABEL_DRIFT_THRESHOLD,
                ),
            )
        )
    return Suite(
        name="gold_expense_lines",
        key=KEY,
        rules=(*_line_rules(), *llm_rules),
        prepare=claim_age,
    )


def all_rule_names() -> list[tuple[str, str, str]]:
    """Every (name, severity, description) a gold audit can report, for Dagster check specs."""
    suite = gold_expense_lines_suite(date(2000, 1, 1), {"other": 1})
    return [(r.name, r.severity, r.description) for r in suite.rules]
