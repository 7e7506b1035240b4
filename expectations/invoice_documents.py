"""Quality rules for extracted invoice documents (``gold.invoice_documents``).

Blocking: the row's shape (key, known statuses and check results, probabilities, provenance),
no personal data in free text, and that most documents yield their required fields with enough
confidence (an extractor that reads nothing must not publish). A document whose printed
arithmetic does not add up is a fact about the document, kept and flagged in its row for the
reconciliation; it warns, since misread scans cause it too.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from documents.checks import FAILED, NOT_APPLICABLE, PASSED
from expectations import extracted
from expectations.gx import expect
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.invoice_documents import CHECKS

REQUIRED_FIELDS = ("vendor_name", "invoice_number", "invoice_date", "currency", "total")
# A required field counts as present at this confidence or above (the rules' next-line reading
# is 0.75, an unlabelled guess 0.3-0.5).
REQUIRED_CONFIDENCE = 0.5
# Share of a date's documents that must have every required field present (else it blocks).
MIN_COMPLETE_SHARE = 0.8
NOT_NULL_COLUMNS = extracted.NOT_NULL_COLUMNS
_CHECK_STATES = ", ".join(f"'{s}'" for s in (PASSED, FAILED, NOT_APPLICABLE))
CONSTRAINTS = {
    "confidence_is_probability": extracted.CONFIDENCE_IS_PROBABILITY,
    "known_check_results": " AND ".join(
        f"({c} IS NULL OR {c} IN ({_CHECK_STATES}))" for c in CHECKS
    ),
}


def _required_present(documents: DataFrame) -> DataFrame:
    """``required_fields_present``: each required field found at ``REQUIRED_CONFIDENCE`` or more."""
    present = extracted.confident_fields(REQUIRED_FIELDS, REQUIRED_CONFIDENCE)
    free_text = F.concat_ws("\n", F.coalesce(F.col("line_items")["description"], F.array()))
    return documents.withColumn(
        "required_fields_present", present == len(REQUIRED_FIELDS)
    ).withColumn("line_item_text", free_text)


def gold_invoice_documents_suite() -> Suite:
    """What a date's extracted invoice documents must meet before they are published."""
    rules = [
        *extracted.shape_rules("document"),
        *[
            Rule(
                f"{check}_known",
                ERROR,
                f"The {check} check passed, failed or did not apply.",
                expect.ExpectColumnValuesToBeInSet(
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
            expect.ExpectColumnValuesToBeInSet(
                column="required_fields_present", value_set=[True], mostly=MIN_COMPLETE_SHARE
            ),
        ),
        Rule(
            "every_document_complete",
            WARN,
            "Every document has its required fields at the confidence asked.",
            expect.ExpectColumnValuesToBeInSet(column="required_fields_present", value_set=[True]),
        ),
        *[
            Rule(
                f"{check}_consistent",
                WARN,
                f"The document's amounts pass {check} (a failure is kept and flagged).",
                expect.ExpectColumnValuesToNotBeInSet(column=check, value_set=[FAILED]),
            )
            for check in CHECKS
        ],
        extracted.no_personal_data(
            "no_personal_data_in_line_items", "line_item_text", "line item text"
        ),
    ]
    return Suite("gold_invoice_documents", ("file_name",), tuple(rules), prepare=_required_present)


def all_rule_names() -> list[tuple[str, str, str]]:
    """Every (name, severity, description) an audit can report, for Dagster check specs."""
    return [(r.name, r.severity, r.description) for r in gold_invoice_documents_suite().rules]
