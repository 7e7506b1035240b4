"""Contract documents' gold row: ``gold.contract_terms``, from the extract task's rows.

One row per readable contract and landing date: its typed terms (effective date, term, renewal,
notice, payment terms, governing law), the parties with their roles, every value's confidence,
page, span and source, the payment terms as a number of days where they say one (``net 30``,
``within thirty (30) days of receipt of the invoice``: 30), and the document's own facts.
"""

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from documents.fields import CONTRACT_SPEC
from transforms.document_fields import FIELD_STRUCT, KEY, document_facts, provenance_columns
from transforms.enrich import with_failure_kind

FIELDS = tuple(CONTRACT_SPEC.field_names)
# Free text a person wrote: what the personal-data rule of the suite reads.
FREE_TEXT_FIELDS = ("term", "renewal_terms", "notice_period", "payment_terms", "governing_law")
PARTY_STRUCT = (
    "array<struct<name:string,role:string,confidence:double,page:int,start:int,end:int,"
    "source:string>>"
)
# The longest payment term taken as stated; a bigger number is a misread (a year, an amount).
MAX_PAYMENT_DAYS = 365


def payment_days(terms: Column | str) -> Column:
    """The number of days payment terms allow (``net 30``, ``within 45 days``), else null.

    The first number in the text: "thirty (30) days" says it in digits too. A number over
    ``MAX_PAYMENT_DAYS`` or zero is not a term of days: null.
    """
    text = F.col(terms) if isinstance(terms, str) else terms
    digits = F.regexp_extract(text, r"(\d{1,4})", 1)
    days = F.when(digits != "", digits.cast("int"))
    return F.when(days.between(1, MAX_PAYMENT_DAYS), days)


def to_gold_contract_terms(documents: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Extracted rows -> ``gold.contract_terms``: typed terms, parties, provenance per field,
    ``payment_days``, and the document's own facts (hash, pages, OCR, first landing)."""

    def transform(extracted: DataFrame) -> DataFrame:
        typed = [
            F.to_date(F.col(n)).alias(n) if n == "effective_date" else F.col(n) for n in FIELDS
        ]
        return (
            extracted.select(
                *KEY,
                *typed,
                payment_days("payment_terms").alias("payment_days"),
                F.from_json("items_json", PARTY_STRUCT).alias("parties"),
                F.from_json("fields_json", FIELD_STRUCT).alias("fields"),
                *provenance_columns(),
            )
            .transform(with_failure_kind)
            .join(document_facts(documents), list(KEY))
        )

    return transform
