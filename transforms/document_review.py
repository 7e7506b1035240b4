"""Review of the gold document tables' extracted fields (``gold.invoice_documents``,
``gold.contract_terms``): each field's own provenance for the queue, the document's text as the
extractor read it, and what derives from a field again after a person's value (an invoice's
arithmetic checks, a contract's ``payment_days``).

A document's fields share one extraction (its row's model, status and tokens) but each has its own
confidence and source (an element of ``fields``), so each field is reviewed on its own: a
person's value is that field's, never the document's (``transforms.review.apply_field_decisions``).
The tables' declarations are ``infra/review.py::document_fields_table``.
"""

import json
from collections.abc import Callable, Sequence
from decimal import Decimal

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from documents.checks import FAILED, lines_sum_to_net, net_plus_tax_is_total
from documents.engine import INJECTION_FLAG
from enrichment.extraction import join_pages
from transforms.contract_documents import payment_days
from transforms.document_fields import pages_per_document
from transforms.invoice_documents import CHECKS
from transforms.review import named_element

# The columns ``field_provenance`` adds per field ``f``: ``f__confidence``, ``f__source``…
FIELD_PREFIX = "{field}__"
_ROW_PROVENANCE = ("model", "prompt_version", "enrichment_status", "failure_kind")


def field_prefix(field: str) -> str:
    """The prefix of ``field``'s provenance columns in ``field_provenance``'s frame."""
    return FIELD_PREFIX.format(field=field)


def field_provenance(
    fields: Sequence[str], required: Sequence[str]
) -> Callable[[DataFrame], DataFrame]:
    """Gold documents with each of ``fields``' provenance as columns, for the review queue.

    Per field ``f``: ``f__confidence`` and ``f__source`` from its element of ``fields`` (the
    row's source when the extraction returned no value), the row's model, prompt version, status
    and failure kind, and ``f__reviewable``: the document states the field, or the field is
    ``required`` (a missing required field is for a person to fill). ``injection_suspected``
    from the row's ``flags``.
    """

    def transform(documents: DataFrame) -> DataFrame:
        added: dict[str, Column] = {
            "injection_suspected": F.coalesce(
                F.array_contains("flags", INJECTION_FLAG), F.lit(False)
            )
        }
        for name in fields:
            p = field_prefix(name)
            element = F.try_element_at(F.filter("fields", named_element(name)), F.lit(1))
            added[f"{p}confidence"] = element["confidence"]
            added[f"{p}source"] = F.coalesce(element["source"], F.col("source"))
            for column in _ROW_PROVENANCE:
                added[f"{p}{column}"] = F.col(column)
            added[f"{p}reviewable"] = F.col(name).isNotNull() | F.lit(name in required)
        return documents.withColumns(added)

    return transform


def _joined_pages(pages_json: pd.Series) -> pd.Series:
    return pd.Series(
        [
            None
            if p is None
            else join_pages([(page["page"], page.get("text") or "") for page in json.loads(p)])
            for p in pages_json
        ]
    )


def documents_read(documents: DataFrame, pages: DataFrame) -> DataFrame:
    """Per document of ``documents`` (gold rows), its pages as the extractor read them
    (``pages_per_document``): a repeat's are its first landing's (``duplicate_of_date`` and
    ``duplicate_of_file``), as ``assets.documents.extraction_inputs`` reads them. ``pages`` are
    silver pages of the documents' dates and of their first landings' dates."""
    per_document = (
        pages.transform(pages_per_document())
        .withColumnRenamed("business_date", "_read_date")
        .withColumnRenamed("file_name", "_read_file")
    )
    return (
        documents.select(
            "business_date",
            "file_name",
            F.coalesce("duplicate_of_date", "business_date").alias("_read_date"),
            F.coalesce("duplicate_of_file", "file_name").alias("_read_file"),
        )
        .join(per_document, ["_read_date", "_read_file"])
        .drop("_read_date", "_read_file")
    )


def document_text() -> Column:
    """A document's text as the extractor reads it (``enrichment.extraction.join_pages`` over
    ``pages_json``, pages in order): each page's text after its ``<<page N>>`` line."""
    return F.pandas_udf(_joined_pages, StringType())(F.col("pages_json"))


_CHECKED = StructType(
    [
        StructField("lines_sum_to_net", StringType()),
        StructField("net_plus_tax_is_total", StringType()),
        StructField("check_messages", ArrayType(StringType())),
    ]
)


def _checks(amounts: pd.Series, net: pd.Series, tax: pd.Series, total: pd.Series) -> pd.DataFrame:
    def dec(value: object) -> Decimal | None:
        return None if value is None or pd.isna(value) else Decimal(str(value))

    rows = []
    for lines, n, t, s in zip(amounts, net, tax, total, strict=True):
        found = [dec(a) for a in (lines if lines is not None else [])]
        results = (
            lines_sum_to_net([a for a in found if a is not None], dec(n)),
            net_plus_tax_is_total(dec(n), dec(t), dec(s)),
        )
        rows.append(
            {
                **{r.name: r.status for r in results},
                "check_messages": [r.message for r in results if r.message],
            }
        )
    return pd.DataFrame(rows, columns=["lines_sum_to_net", "net_plus_tax_is_total",
                                       "check_messages"])  # fmt: skip


def _reviewed(field: str | None = None) -> Column:
    """A row where a person decided a field (``field``, or any)."""
    reviewed = F.coalesce("reviewed_fields", F.array())
    if field is None:
        return F.size(reviewed) > 0
    return F.exists(reviewed, lambda r: r["field"] == field)


def with_checks_after_review(documents: DataFrame) -> DataFrame:
    """The arithmetic checks (``documents/checks.py``, the extraction's own) again on the rows
    where a person decided a field (``reviewed_fields`` not empty): a corrected amount is
    checked like an extracted one. Other rows keep the extraction's results."""
    reviewed = _reviewed()
    checked = documents.withColumn(
        "_checked",
        F.when(
            reviewed,
            F.pandas_udf(_checks, _CHECKED)(
                F.col("line_items")["amount"], F.col("net"), F.col("tax"), "total"
            ),
        ),
    )
    again = {c: F.col("_checked")[c] for c in (*CHECKS, "check_messages")}
    again["checks_passed"] = ~F.exists(F.array(*[again[c] == FAILED for c in CHECKS]), lambda x: x)
    return checked.withColumns(
        {c: F.when(reviewed, value).otherwise(F.col(c)) for c, value in again.items()}
    ).drop("_checked")


def with_payment_days_after_review(contracts: DataFrame) -> DataFrame:
    """``payment_days`` again, by the extraction's own rule (``transforms.contract_documents.
    payment_days``), on the rows where a person decided ``payment_terms``: ``net 45`` a person
    wrote is 45 days for the reconciliation as it would be read. Other rows keep theirs."""
    return contracts.withColumn(
        "payment_days",
        F.when(_reviewed("payment_terms"), payment_days("payment_terms")).otherwise(
            F.col("payment_days")
        ),
    )
