"""Bronze: raw rows as landed, plus the ingestion metadata every layer carries."""

from collections.abc import Callable
from datetime import date, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.contracts import CORRUPT_RECORD_COLUMN, SourceContract

SOURCE_FILE_COLUMN = "_source_file"
INGESTED_AT_COLUMN = "_ingested_at"
ROW_HASH_COLUMN = "_row_hash"
# Columns a file carried beyond its contract, as one JSON object (null when none): kept, reported.
EXTRA_COLUMNS_COLUMN = "_extra_columns"


def row_hash(columns: list[str]) -> Column:
    """SHA-256 of the given columns; nulls and empty strings hash differently."""
    parts = [
        F.coalesce(F.concat(F.lit("v:"), F.col(c).cast("string")), F.lit("\u2205")) for c in columns
    ]
    return F.sha2(F.concat_ws("\u001f", *parts), 256)


def with_ingestion_metadata(
    contract: SourceContract, business_date: date, ingested_at: datetime
) -> Callable[[DataFrame], DataFrame]:
    """Add ``_source_file``-independent bronze metadata to rows read with ``contract``'s schema.

    Expects the reader to have added ``_source_file`` (from ``_metadata.file_path``).
    """

    def transform(df: DataFrame) -> DataFrame:
        extra = (
            F.col(EXTRA_COLUMNS_COLUMN)
            if EXTRA_COLUMNS_COLUMN in df.columns
            else F.lit(None).cast("string").alias(EXTRA_COLUMNS_COLUMN)
        )
        hashed = [*contract.column_names, CORRUPT_RECORD_COLUMN, EXTRA_COLUMNS_COLUMN]
        return df.withColumn(EXTRA_COLUMNS_COLUMN, extra).select(
            *contract.column_names,
            CORRUPT_RECORD_COLUMN,
            EXTRA_COLUMNS_COLUMN,
            SOURCE_FILE_COLUMN,
            F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT_COLUMN),
            row_hash(hashed).alias(ROW_HASH_COLUMN),
            F.lit(business_date).cast("date").alias("business_date"),
        )

    return transform
