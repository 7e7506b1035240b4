"""Splitting rows into the good and the quarantined, each rejection with a reason code.

A rule is a pure function's result: a ``Column`` that is null when the row passes and a message
when it fails (the Databricks Labs DQX convention). The first failing rule names the reason.
"""

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.contracts import CORRUPT_RECORD_COLUMN, SourceContract
from transforms.ingest import (
    EXTRA_COLUMNS_COLUMN,
    INGESTED_AT_COLUMN,
    ROW_HASH_COLUMN,
    SOURCE_FILE_COLUMN,
)

REASON_CODE = "_reason_code"
REASON_DETAIL = "_reason_detail"

QUARANTINE_COLUMNS = [
    "source",
    "business_date",
    "reason_code",
    "reason_detail",
    "record_key",
    "raw_record",
    SOURCE_FILE_COLUMN,
    ROW_HASH_COLUMN,
    INGESTED_AT_COLUMN,
]


@dataclass(frozen=True)
class Rule:
    """A named row-level rule: ``check`` is null for a good row, a message for a bad one."""

    reason_code: str
    check: Column


def with_rejection_reason(rules: list[Rule]) -> Callable[[DataFrame], DataFrame]:
    """Add ``_reason_code`` / ``_reason_detail`` from the first rule a row fails (null if none)."""

    def transform(df: DataFrame) -> DataFrame:
        code: Column = F.lit(None).cast("string")
        detail: Column = F.lit(None).cast("string")
        for rule in reversed(rules):
            code = F.when(rule.check.isNotNull(), F.lit(rule.reason_code)).otherwise(code)
            detail = F.when(rule.check.isNotNull(), rule.check).otherwise(detail)
        return df.withColumn(REASON_CODE, code).withColumn(REASON_DETAIL, detail)

    return transform


def reject_duplicate_keys(key: tuple[str, ...]) -> Callable[[DataFrame], DataFrame]:
    """Among rows not yet rejected, keep one row per business key and date; mark the others.

    The kept row is the latest ingested, ties broken by source file and row hash, so the choice is
    the same on every run.
    """

    def transform(df: DataFrame) -> DataFrame:
        # Per business date: a run classifies its dates together, and a key may recur on
        # another date (a correction re-landed later is that date's row).
        window = Window.partitionBy(F.col(REASON_CODE).isNull(), "business_date", *key).orderBy(
            F.col(INGESTED_AT_COLUMN).desc(),
            F.col(SOURCE_FILE_COLUMN).desc(),
            F.col(ROW_HASH_COLUMN),
        )
        rank = F.row_number().over(window)
        is_extra_copy = F.col(REASON_CODE).isNull() & (rank > 1)
        key_text = F.concat_ws("|", *[F.col(k).cast("string") for k in key])
        return df.withColumn(
            REASON_CODE, F.when(is_extra_copy, F.lit("DUPLICATE_KEY")).otherwise(F.col(REASON_CODE))
        ).withColumn(
            REASON_DETAIL,
            F.when(
                is_extra_copy, F.concat(F.lit("another row has business key "), key_text)
            ).otherwise(F.col(REASON_DETAIL)),
        )

    return transform


def quarantined_rows(contract: SourceContract) -> Callable[[DataFrame], DataFrame]:
    """Rejected rows in the ``silver.quarantine`` shape: the raw record kept as JSON."""

    def transform(df: DataFrame) -> DataFrame:
        raw_columns = [*contract.column_names, CORRUPT_RECORD_COLUMN]
        if EXTRA_COLUMNS_COLUMN in df.columns:
            raw_columns.append(EXTRA_COLUMNS_COLUMN)
        return df.where(F.col(REASON_CODE).isNotNull()).select(
            F.lit(contract.name).alias("source"),
            "business_date",
            F.col(REASON_CODE).alias("reason_code"),
            F.col(REASON_DETAIL).alias("reason_detail"),
            F.concat_ws("|", *[F.coalesce(F.col(k), F.lit("")) for k in contract.key]).alias(
                "record_key"
            ),
            F.to_json(F.struct(*raw_columns)).alias("raw_record"),
            SOURCE_FILE_COLUMN,
            ROW_HASH_COLUMN,
            INGESTED_AT_COLUMN,
        )

    return transform


def accepted_rows(df: DataFrame) -> DataFrame:
    """Rows no rule rejected, without the reason columns."""
    return df.where(F.col(REASON_CODE).isNull()).drop(REASON_CODE, REASON_DETAIL)
