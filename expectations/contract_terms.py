"""Quality rules for extracted contract terms (``gold.contract_terms``).

Blocking: the row's shape (key, hash, known statuses, probabilities, provenance, a payment term
in days that is a term), no personal data in the free-text terms, and that most contracts yield
their required terms with enough confidence (an extractor that reads nothing must not publish:
the payment terms are what the close checks AP against). A contract short of them warns.
"""

import great_expectations.expectations as gxe
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from enrichment.models import STATUSES
from expectations.pii import PII_PATTERNS
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.contract_documents import FREE_TEXT_FIELDS, MAX_PAYMENT_DAYS

# What a contract must yield: who it binds, from when, and when invoices are due.
REQUIRED_FIELDS = ("effective_date", "payment_terms")
REQUIRED_PARTIES = 1
# The same bar as the invoice documents': the rules' phrase readings are 0.7-0.8.
REQUIRED_CONFIDENCE = 0.5
# Share of a date's contracts that must have every required term present (else it blocks).
MIN_COMPLETE_SHARE = 0.8
NOT_NULL_COLUMNS = ("business_date", "file_name", "document_sha256", "enrichment_status", "model")
CONSTRAINTS = {
    "confidence_is_probability": "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)",
    "payment_days_is_a_term": (
        f"payment_days IS NULL OR (payment_days >= 1 AND payment_days <= {MAX_PAYMENT_DAYS})"
    ),
}


def _prepared(contracts: DataFrame) -> DataFrame:
    """``required_terms_present`` (each required term, and a party, at the confidence asked)
    and ``free_text`` (the terms as written, one string) for the set-level rules."""
    confident = F.filter(
        "fields",
        lambda f: f["field"].isin(*REQUIRED_FIELDS) & (f["confidence"] >= REQUIRED_CONFIDENCE),
    )
    present = F.coalesce(F.size(F.array_distinct(confident["field"])), F.lit(0))
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
        Rule(
            "file_name_unique",
            ERROR,
            "One row per landed contract and date.",
            gxe.ExpectColumnValuesToBeUnique(column="file_name"),
        ),
        Rule(
            "document_sha256_not_null",
            ERROR,
            "Every contract carries the hash of its bytes.",
            gxe.ExpectColumnValuesToNotBeNull(column="document_sha256"),
        ),
        Rule(
            "enrichment_status_known",
            ERROR,
            "Every row says what became of its extraction.",
            gxe.ExpectColumnValuesToBeInSet(column="enrichment_status", value_set=list(STATUSES)),
        ),
        Rule(
            "provenance_model_recorded",
            ERROR,
            "Every row names the model or rules that read it.",
            gxe.ExpectColumnValuesToNotBeNull(column="model"),
        ),
        Rule(
            "confidence_is_probability",
            ERROR,
            "The contract's confidence is between 0 and 1.",
            gxe.ExpectColumnValuesToBeBetween(column="confidence", min_value=0, max_value=1),
        ),
        Rule(
            "payment_days_is_a_term",
            ERROR,
            f"Payment terms in days, where read, are between 1 and {MAX_PAYMENT_DAYS}.",
            gxe.ExpectColumnValuesToBeBetween(
                column="payment_days", min_value=1, max_value=MAX_PAYMENT_DAYS
            ),
        ),
        Rule(
            "required_terms_present",
            ERROR,
            f"At least {MIN_COMPLETE_SHARE:.0%} of contracts have {', '.join(REQUIRED_FIELDS)} "
            f"and a party at confidence {REQUIRED_CONFIDENCE} or more.",
            gxe.ExpectColumnValuesToBeInSet(
                column="required_terms_present", value_set=[True], mostly=MIN_COMPLETE_SHARE
            ),
        ),
        Rule(
            "every_contract_complete",
            WARN,
            "Every contract has its required terms at the confidence asked.",
            gxe.ExpectColumnValuesToBeInSet(column="required_terms_present", value_set=[True]),
        ),
        Rule(
            "no_personal_data_in_terms",
            ERROR,
            "No e-mail address, IBAN, national id, card or phone number in the free-text terms.",
            gxe.ExpectColumnValuesToNotMatchRegexList(
                column="free_text", regex_list=list(PII_PATTERNS.values())
            ),
        ),
    ]
    return Suite("gold_contract_terms", ("file_name",), tuple(rules), prepare=_prepared)


def all_rule_names() -> list[tuple[str, str, str]]:
    """Every (name, severity, description) an audit can report, for Dagster check specs."""
    return [(r.name, r.severity, r.description) for r in gold_contract_terms_suite().rules]
