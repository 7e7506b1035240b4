"""What the suites of extracted documents share (``gold.invoice_documents``,
``gold.contract_terms``): one row per landed file, with its hash, status, provenance and a
confidence; each suite adds its own rules on what the extraction must yield."""

from pyspark.sql import Column
from pyspark.sql import functions as F

from enrichment.models import STATUSES
from expectations.gx import expect
from expectations.pii import PII_PATTERNS
from expectations.suite import ERROR, Rule

NOT_NULL_COLUMNS = ("business_date", "file_name", "document_sha256", "enrichment_status", "model")
CONFIDENCE_IS_PROBABILITY = "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)"


def shape_rules(noun: str) -> list[Rule]:
    """The row's shape: key, hash, known status, provenance, a probability (``noun``: what a row
    is, ``"document"`` or ``"contract"``, as the rules' descriptions name it)."""
    return [
        Rule(
            "file_name_unique",
            ERROR,
            f"One row per landed {noun} and date.",
            expect.ExpectColumnValuesToBeUnique(column="file_name"),
        ),
        Rule(
            "document_sha256_not_null",
            ERROR,
            f"Every {noun} carries the hash of its bytes.",
            expect.ExpectColumnValuesToNotBeNull(column="document_sha256"),
        ),
        Rule(
            "enrichment_status_known",
            ERROR,
            "Every row says what became of its extraction.",
            expect.ExpectColumnValuesToBeInSet(
                column="enrichment_status", value_set=list(STATUSES)
            ),
        ),
        Rule(
            "provenance_model_recorded",
            ERROR,
            "Every row names the model or rules that read it.",
            expect.ExpectColumnValuesToNotBeNull(column="model"),
        ),
        Rule(
            "confidence_is_probability",
            ERROR,
            f"The {noun}'s confidence is between 0 and 1.",
            expect.ExpectColumnValuesToBeBetween(column="confidence", min_value=0, max_value=1),
        ),
    ]


def confident_fields(required: tuple[str, ...], confidence: float) -> Column:
    """How many of the ``required`` fields the row's ``fields`` hold at ``confidence`` or more."""
    confident = F.filter(
        "fields", lambda f: f["field"].isin(*required) & (f["confidence"] >= confidence)
    )
    return F.coalesce(F.size(F.array_distinct(confident["field"])), F.lit(0))


def no_personal_data(name: str, column: str, where: str) -> Rule:
    """Blocks a row whose ``column`` holds personal data (``where``: the text, as rules say it)."""
    return Rule(
        name,
        ERROR,
        f"No e-mail address, IBAN, national id, card or phone number in {where}.",
        expect.ExpectColumnValuesToNotMatchRegexList(
            column=column, regex_list=list(PII_PATTERNS.values())
        ),
    )
