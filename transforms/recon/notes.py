"""Notes on reconciliation exceptions: a probable reason and an analyst sentence, enriched.

The text a model reads leaves out the exception's age, so an item carried open from night to night
reads the same every night and is enriched once (``ops.llm_cache``). The task is
``EXCEPTION_NOTE_TASK`` in ``enrichment/prompts.py``.
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.enrich import PROVENANCE_COLUMNS, with_failure_kind

NOTE_COLUMNS = [
    "business_date",
    "exception_id",
    "recon",
    "exception_type",
    "legal_entity",
    "probable_reason",
    "reason_confidence",
    "analyst_note",
    "redactions",
    "injection_suspected",
    *PROVENANCE_COLUMNS,
]


def exception_text() -> Column:
    """What a model reads of an exception: type, recon, entity, the rule's sentence, the amount."""
    return F.concat_ws(
        "\n",
        F.concat(
            F.lit("Exception: "),
            F.col("exception_type"),
            F.lit(" in "),
            F.col("recon"),
            F.lit(" for "),
            F.coalesce(F.col("legal_entity"), F.lit("the group")),
        ),
        F.concat(F.lit("Description: "), F.coalesce(F.col("detail"), F.lit(""))),
        F.concat(
            F.lit("Amount: "),
            F.coalesce(F.col("amount").cast("string"), F.lit("n/a")),
            F.lit(" "),
            F.coalesce(F.col("currency"), F.lit("")),
        ),
    )


def open_exceptions(exceptions: DataFrame) -> DataFrame:
    """The exceptions still open on their night: what an analyst acts on."""
    return exceptions.where(F.col("status") == "open")


def to_gold_exception_notes(enriched: DataFrame) -> DataFrame:
    """Open exceptions joined to their enrichment outcome, in the gold shape."""
    return (
        enriched.transform(with_failure_kind)
        .withColumnRenamed("label", "probable_reason")
        .withColumnRenamed("confidence", "reason_confidence")
        .withColumnRenamed("summary", "analyst_note")
        .select(*NOTE_COLUMNS)
    )
