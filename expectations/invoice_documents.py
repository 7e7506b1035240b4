"""Quality rules for extracted invoice documents (``gold.invoice_documents``).

Blocking: the row's shape (key, known statuses and check results, probabilities, provenance),
no personal data in free text, and that most documents yield their required fields with enough
confidence (an extractor that reads nothing must not publish). A document whose printed
arithmetic does not add up is a fact about the document, kept and flagged in its row for the
reconciliation; it warns, since misread scans cause it too.
"""

import great_expectations.expectations as gxe
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from documents.checks import FAILED, NOT_APPLICABLE, PASSED
from enrichment.models import STATUSES
from expectations.pii import PII_PATTERNS
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.invoice_documents import CHECKS

REQUIRED_FIELDS = ("vendor_name", "invoice_number", "invoice_date", "currency", "total")
# A required field counts as present at this confidence or above (the rules' next-line reading
# is 0.75, an unlabelled guess 0.3-0.5).
REQUIRED_CONFIDENCE = 0.5
# Share of a date's documents that must have every required field present (else it blocks).
MIN_COMPLETE_SHARE = 0.8
NOT_NULL_COLUMNS = ("business_date", "file_name", "document_sha256", "enrichment_status", "model")
_CHECK_STATES = ", ".join(f"'{s}'" for s in (PASSED, FAILED, NOT_APPLICABLE))
CONSTRAINTS = {
    "confidence_is_probability": "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)",
    "known_check_results": " AND ".join(
        f"({c} IS NULL OR {c} IN ({_CHECK_STATES}))" for c in CHECKS
    ),
}


def _required_present(documents: DataFrame) -> DataFrame:
    """``required_fields_present``: each required field found at ``REQUIRED_CONFIDENCE`` or more."""
    confident = F.filter(
        "fields",
        lambda f: f["field"].isin(*REQUIRED_FIELDS) & (f["confidence"] >= REQUIRED_CONFIDENCE),
    )
    present = F.coalesce(F.size(F.array_distinct(confident["field"])), F.lit(0))
    free_text = F.concat_ws("\n", F.coalesce(F.col("line_items")["description"], F.array()))
    return documents.withColumn(
        "required_fields_present", present == len(REQUIRED_FIELDS)
    ).withColumn("line_item_text", free_text)


def gold_invoice_documents_suite() -> Suite:
    """What a date's extracted invoice documents must meet before they are published."""
    rules = [
        Rule(
            "file_name_unique",
            ERROR,
            "One row per landed document and date.",
            gxe.ExpectColumnValuesToBeUnique(column="file_name"),
        ),
        Rule(
            "document_sha256_not_null",
            ERROR,
            "Every document carries the hash of its bytes.",
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
            "The document's confidence is between 0 and 1.",
            gxe.ExpectColumnValuesToBeBetween(column="confidence", min_value=0, max_value=1),
        ),
        *[
            Rule(
                f"{check}_known",
                ERROR,
                f"The {check} check passed, failed or did not apply.",
                gxe.ExpectColumnValuesToBeInSet(
                    column=check, value_set=[PASSED, FAILED, NOT_APPLICABLE]
                ),
            )
            for check in CHECKS
        ],
        Rule(
            "required_fields_present",
            ERROR,
            f"At least {MIN_COMPLETE_SHARE:.0%} of documents have {', '.join(REQUIRED_FIELDS)} "
            f"at confidence {REQUIRED_CONFIDENCE} or more.",
            gxe.ExpectColumnValuesToBeInSet(
                column="required_fields_present", value_set=[True], mostly=MIN_COMPLETE_SHARE
            ),
        ),
        Rule(
            "every_document_complete",
            WARN,
            "Every document has its required fields at the confidence asked.",
            gxe.ExpectColumnValuesToBeInSet(column="required_fields_present", value_set=[True]),
        ),
        *[
            Rule(
                f"{check}_consistent",
                WARN,
                f"The document's amounts pass {check} (a failure is kept and flagged).",
                gxe.ExpectColumnValuesToNotBeInSet(column=check, value_set=[FAILED]),
            )
            for check in CHECKS
        ],
        Rule(
            "no_personal_data_in_line_items",
            ERROR,
            "No e-mail address, IBAN, national id, card or phone number in line item text.",
            gxe.ExpectColumnValuesToNotMatchRegexList(
                column="line_item_text", regex_list=list(PII_PATTERNS.values())
            ),
        ),
    ]
    return Suite("gold_invoice_documents", ("file_name",), tuple(rules), prepare=_required_present)


def all_rule_names() -> list[tuple[str, str, str]]:
    """Every (name, severity, description) an audit can report, for Dagster check specs."""
    return [(r.name, r.severity, r.description) for r in gold_invoice_documents_suite().rules]
