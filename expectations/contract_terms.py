"""Quality rules for extracted contract terms (``gold.contract_terms``).

Blocking: the row's shape (key, hash, known statuses, probabilities, provenance, a payment term
in days that is a term), no personal data in the free-text terms, and that most contracts yield
their required terms with enough confidence (an extractor that reads nothing must not publish:
the payment terms are what the close checks AP against). A contract short of them warns.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from expectations import extracted
from expectations.gx import expect
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.contract_documents import FREE_TEXT_FIELDS, MAX_PAYMENT_DAYS

# What a contract must yield: who it binds, from when, and when invoices are due.
REQUIRED_FIELDS = ("effective_date", "payment_terms")
REQUIRED_PARTIES = 1
# The same bar as the invoice documents': the rules' phrase readings are 0.7-0.8.
REQUIRED_CONFIDENCE = 0.5
# Share of a date's contracts that must have every required term present (else it blocks).
MIN_COMPLETE_SHARE = 0.8
NOT_NULL_COLUMNS = extracted.NOT_NULL_COLUMNS
CONSTRAINTS = {
    "confidence_is_probability": extracted.CONFIDENCE_IS_PROBABILITY,
    "payment_days_is_a_term": (
        f"payment_days IS NULL OR (payment_days >= 1 AND payment_days <= {MAX_PAYMENT_DAYS})"
    ),
}


def _prepared(contracts: DataFrame) -> DataFrame:
    """``required_terms_present`` (each required term, and a party, at the confidence asked)
    and ``free_text`` (the terms as written, one string) for the set-level rules."""
    present = extracted.confident_fields(REQUIRED_FIELDS, REQUIRED_CONFIDENCE)
    parties = F.coalesce(
        F.size(F.filter("parties", lambda p: p["confidence"] >= REQUIRED_CONFIDENCE)), F.lit(0)
    )
    free_text = F.concat_ws("\n", *[F.coalesce(F.col(c), F.lit("")) for c in FREE_TEXT_FIELDS])
    return contracts.withColumn(
        "required_terms_present",
        (present == len(REQUIRED_FIELDS)) & (parties >= REQUIRED_PARTIES),
    ).withColumn("free_text", free_text)


def gold_contract_terms_suite() -> Suite:
    """What a date's extracted contract terms must meet before they are published."""
    rules = [
        *extracted.shape_rules("contract"),
        Rule(
            "payment_days_is_a_term",
            ERROR,
            f"Payment terms in days, where read, are between 1 and {MAX_PAYMENT_DAYS}.",
            expect.ExpectColumnValuesToBeBetween(
                column="payment_days", min_value=1, max_value=MAX_PAYMENT_DAYS
            ),
        ),
        Rule(
            "required_terms_present",
            ERROR,
            f"At least {MIN_COMPLETE_SHARE:.0%} of contracts have {', '.join(REQUIRED_FIELDS)} "
            f"and a party at confidence {REQUIRED_CONFIDENCE} or more.",
            expect.ExpectColumnValuesToBeInSet(
                column="required_terms_present", value_set=[True], mostly=MIN_COMPLETE_SHARE
            ),
        ),
        Rule(
            "every_contract_complete",
            WARN,
            "Every contract has its required terms at the confidence asked.",
            expect.ExpectColumnValuesToBeInSet(column="required_terms_present", value_set=[True]),
        ),
        extracted.no_personal_data("no_personal_data_in_terms", "free_text", "the free-text terms"),
    ]
    return Suite("gold_contract_terms", ("file_name",), tuple(rules), prepare=_prepared)


def all_rule_names() -> list[tuple[str, str, str]]:
    """Every (name, severity, description) an audit can report, for Dagster check specs."""
    return [(r.name, r.severity, r.description) for r in gold_contract_terms_suite().rules]
