"""Expense report lines after silver: the text a model reads and the gold shape.

Bronze to silver goes the way of every source (``transforms/sources.py``: the contract's rules
plus the claim window, the amount range and the line number).
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.enrich import PROVENANCE_COLUMNS, with_failure_kind
from transforms.ingest import ROW_HASH_COLUMN, SOURCE_FILE_COLUMN

# Claims coded by employees over this many days train the spend-category model.
LABEL_HISTORY_DAYS = 90


def expense_text() -> Column:
    """What a model reads of an expense line: the merchant and the justification, labelled."""
    return F.concat_ws(
        "\n",
        F.concat(F.lit("Merchant: "), F.col("merchant")),
        F.concat(F.lit("Justification: "), F.coalesce(F.col("justification"), F.lit(""))),
    )


GOLD_EXPENSE_COLUMNS = [
    "report_id",
    "line_id",
    "employee_id",
    "transaction_date",
    "merchant",
    "amount",
    "currency",
    "amount_usd",
    "claimed_category",
    "justification",
    "spend_category",
    "confidence",
    "category_differs_from_claim",
    "justification_summary",
    "redactions",
    "injection_suspected",
    *PROVENANCE_COLUMNS,
    "business_date",
    SOURCE_FILE_COLUMN,
    ROW_HASH_COLUMN,
]


def with_category_differs_from_claim(lines: DataFrame) -> DataFrame:
    """Set ``category_differs_from_claim``: a spend category that is not the one claimed.

    Recomputed after a person decides the category (``infra/review.py``), so the flag follows
    the published value, not the model's.
    """
    return lines.withColumn(
        "category_differs_from_claim",
        F.col("spend_category").isNotNull()
        & ~F.col("spend_category").eqNullSafe(F.col("claimed_category")),
    )


def to_gold_expense_lines(enriched: DataFrame) -> DataFrame:
    """Silver expense lines joined to their enrichment outcome, in the gold shape."""
    return (
        enriched.transform(with_failure_kind)
        .withColumnRenamed("label", "spend_category")
        .withColumnRenamed("summary", "justification_summary")
        .transform(with_category_differs_from_claim)
        .select(*GOLD_EXPENSE_COLUMNS)
    )
