"""Rules for the enriched expense lines before they reach ``gold.expense_lines``.

Thresholds live here, next to the rules they tune. ``CONSTRAINTS`` are the Delta ``CHECK`` and
``NOT NULL`` constraints gold carries as a backstop should anything bypass this gate.
"""

from datetime import date

import great_expectations.expectations as gxe

from enrichment.models import STATUSES
from enrichment.taxonomies import SPEND_CATEGORY
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.contracts import MAX_EXPENSE_AMOUNT, VALID_CURRENCIES

# Share of rows whose enrichment may fail or be skipped before the partition only warns.
MAX_UNENRICHED_SHARE = 0.05
SUMMARY_MAX_CHARS = 300

NOT_NULL_COLUMNS = ("report_id", "line_id", "amount", "currency", "business_date", "model")
CONSTRAINTS = {
    "amount_in_range": f"amount > 0 AND amount <= {MAX_EXPENSE_AMOUNT}",
    "confidence_is_probability": "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)",
    "known_enrichment_status": "enrichment_status IN ("
    + ", ".join(f"'{s}'" for s in STATUSES)
    + ")",
    "ok_rows_have_a_label": "enrichment_status <> 'ok' OR spend_category IS NOT NULL",
}


def expense_lines_suite(business_date: date) -> Suite:
    """The suite for one business date of enriched expense lines."""
    return Suite(
        name="expense_lines",
        key=("report_id", "line_id"),
        rules=(
            Rule(
                "report_id_not_null",
                ERROR,
                "Every line belongs to an expense report.",
                gxe.ExpectColumnValuesToNotBeNull(column="report_id"),
            ),
            Rule(
                "line_key_unique",
                ERROR,
                "One row per (report_id, line_id): no line is counted twice.",
                gxe.ExpectCompoundColumnsToBeUnique(column_list=["report_id", "line_id"]),
            ),
            Rule(
                "amount_in_range",
                ERROR,
                f"Claimed amounts are positive and at most {MAX_EXPENSE_AMOUNT:,}.",
                gxe.ExpectColumnValuesToBeBetween(
                    column="amount", min_value=0.01, max_value=MAX_EXPENSE_AMOUNT
                ),
            ),
            Rule(
                "currency_is_iso",
                ERROR,
                "Currencies are ISO 4217 codes the group accepts.",
                gxe.ExpectColumnValuesToBeInSet(
                    column="currency", value_set=sorted(VALID_CURRENCIES)
                ),
            ),
            Rule(
                "transaction_not_after_business_date",
                ERROR,
                "No claim is dated after the business date it is reported on.",
                gxe.ExpectColumnValuesToBeBetween(
                    column="transaction_date", max_value=business_date.isoformat()
                ),
            ),
            Rule(
                "spend_category_in_taxonomy",
                ERROR,
                "Every label is one of the declared spend categories.",
                gxe.ExpectColumnValuesToBeInSet(
                    column="spend_category", value_set=SPEND_CATEGORY.names
                ),
            ),
            Rule(
                "enrichment_status_known",
                ERROR,
                "Every row says what became of its enrichment.",
                gxe.ExpectColumnValuesToBeInSet(
                    column="enrichment_status", value_set=list(STATUSES)
                ),
            ),
            Rule(
                "confidence_is_probability",
                ERROR,
                "Confidence is between 0 and 1.",
                gxe.ExpectColumnValuesToBeBetween(column="confidence", min_value=0, max_value=1),
            ),
            Rule(
                "provenance_model_recorded",
                ERROR,
                "Every row names the model or rule that produced its enrichment.",
                gxe.ExpectColumnValuesToNotBeNull(column="model"),
            ),
            Rule(
                "summary_length_bounded",
                ERROR,
                f"Summaries are 1 to {SUMMARY_MAX_CHARS} characters.",
                gxe.ExpectColumnValueLengthsToBeBetween(
                    column="justification_summary", min_value=1, max_value=SUMMARY_MAX_CHARS
                ),
            ),
            Rule(
                "enriched_share",
                WARN,
                f"At most {MAX_UNENRICHED_SHARE:.0%} of rows failed or were skipped.",
                gxe.ExpectColumnValuesToBeInSet(
                    column="enrichment_status",
                    value_set=["ok"],
                    mostly=1 - MAX_UNENRICHED_SHARE,
                ),
            ),
        ),
    )
