"""Invoice documents' gold row: ``gold.invoice_documents``, from the extract task's rows.

The extraction itself (the ``extract`` task in Spark tasks) is ``transforms/document_fields.py``.
``gold.invoice_documents`` has one row per readable document: its typed fields, every field's
value, confidence, page, span and source, its line items, the arithmetic checks
(``documents/checks.py``) and the run's provenance.
"""

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from documents.fields import INVOICE_SPEC
from transforms.document_fields import (
    FIELD_STRUCT,
    KEY,
    check_names,
    document_facts,
    provenance_columns,
)
from transforms.enrich import with_failure_kind

FIELDS = tuple(INVOICE_SPEC.field_names)
_DATES = ("invoice_date", "due_date")
_AMOUNTS = ("net", "tax", "total")
CHECKS = check_names(INVOICE_SPEC)
LINE_ITEM_STRUCT = (
    "array<struct<description:string,quantity:decimal(18,4),unit_price:decimal(18,2),"
    "amount:decimal(18,2),confidence:double,page:int,start:int,end:int,source:string>>"
)


def to_gold_invoice_documents(documents: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Extracted rows -> ``gold.invoice_documents``: typed fields, provenance per field, checks,
    and the document's own facts (hash, pages, OCR, where a repeat first landed)."""

    def transform(extracted: DataFrame) -> DataFrame:
        typed = [
            F.to_date(F.col(n)).alias(n)
            if n in _DATES
            else F.col(n).cast("decimal(18,2)").alias(n)
            if n in _AMOUNTS
            else F.col(n)
            for n in FIELDS
        ]
        failed = F.array(*[F.col(c) == "failed" for c in CHECKS])
        return (
            extracted.select(
                *KEY,
                *typed,
                F.from_json("fields_json", FIELD_STRUCT).alias("fields"),
                F.from_json("items_json", LINE_ITEM_STRUCT).alias("line_items"),
                *CHECKS,
                (~F.exists(failed, lambda x: x)).alias("checks_passed"),
                F.from_json("check_messages", "array<string>").alias("check_messages"),
                *provenance_columns(),
            )
            .transform(with_failure_kind)
            .join(document_facts(documents), list(KEY))
        )

    return transform
