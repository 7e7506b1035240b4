"""The shapes every reconciliation returns, and the helpers they share.

A reconciliation of business date ``D`` returns two DataFrames:

- **matches** (``MATCH_COLUMNS``): one row per match group, with the rule that matched it and the
  records on each side;
- **open exceptions** (``EXCEPTION_COLUMNS`` with ``status = 'open'``): what is unexplained as of
  ``D``. ``carry_forward`` then compares them with the exceptions open as of ``D - 1`` and adds the
  ones that closed on ``D``.

A record is named ``"<source>:<business key joined by |>"`` (``record_id``), so an exception says
exactly which rows of which silver tables it involves.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.as_of import AS_OF

RECONS = ("bank_gl", "ap_gl", "document_ap", "contract_ap", "payroll_hris", "expense_policy")

MATCH_COLUMNS = [
    "business_date",  # date: the night the match was made (as-of date)
    "recon",  # string: one of RECONS
    "match_id",  # string: sha256 of recon + sorted record ids
    "rule",  # string: the rule that matched the group (e.g. REFERENCE, AMOUNT_DATE_WINDOW)
    "legal_entity",  # string
    "left_records",  # array<string>: record ids on the left side (bank, AP subledger, document)
    "right_records",  # array<string>: record ids on the right side (GL, AP subledger)
    "left_amount",  # decimal(18,2): sum of the left side, in ``currency``
    "right_amount",  # decimal(18,2): sum of the right side, in ``currency``
    "currency",  # string
    "amount_usd",  # decimal(18,2): left amount at the as-of date's rate
    "matched_on",  # date: the business date the group became complete (its newest record)
]

EXCEPTION_COLUMNS = [
    "business_date",  # date: the as-of date (the night that reports it)
    "exception_id",  # string: sha256 of recon + type + sorted records; stable across nights
    "recon",  # string: one of RECONS
    "exception_type",  # string: see docs/RECONCILIATIONS.md
    "legal_entity",  # string
    "status",  # string: open | closed
    "resolution",  # string: null while open; matched | superseded | aged_out once closed
    "first_seen_date",  # date: the oldest business_date among its records
    "closed_on",  # date: null while open; the as-of date it closed
    "age_days",  # int: business_date - first_seen_date
    "amount",  # decimal(18,2): the unexplained amount (signed), in ``currency``
    "currency",  # string
    "amount_usd",  # decimal(18,2)
    "records",  # array<string>: record ids involved, sorted
    "rule",  # string: the rule that raised it
    "detail",  # string: one analyst-readable sentence built from the data (no LLM)
]


def record_id(source: str, *key_columns: str) -> Column:
    """``"<source>:<key1>|<key2>"`` for the row: how exceptions and matches name records."""
    parts = [F.coalesce(F.col(c).cast("string"), F.lit("")) for c in key_columns]
    return F.concat(F.lit(f"{source}:"), F.concat_ws("|", *parts))


def group_id(recon: str, tag: Column | str, records: Column) -> Column:
    """A stable id for a set of records: sha256 of recon, a tag and the sorted record ids."""
    tag_col = F.lit(tag) if isinstance(tag, str) else tag
    return F.sha2(
        F.concat_ws("\u001f", F.lit(recon), tag_col, F.concat_ws(",", F.array_sort(records))), 256
    )


# --- Shared by the matching recons (bank_gl, ap_gl) ------------------------------------------

MONEY = "decimal(18,2)"
FIRST_SEEN_COLUMN = "_first_seen"


@dataclass(frozen=True)
class ReconResult:
    """What a reconciliation of one as-of date returns: match groups and exceptions."""

    matches: DataFrame
    exceptions: DataFrame


def identity(df: DataFrame) -> DataFrame:
    """The default ``materialize`` of the reconciliations: leave the plan as it is."""
    return df


T = TypeVar("T")
# How a caller runs independent tasks (each a call that builds and may materialize frames): the
# results in the tasks' order. The assets pass one that runs them in threads
# (``infra.spark.in_threads``); the transforms' default is ``in_order``.
Runner = Callable[[Sequence[Callable[[], T]]], list[T]]


def in_order(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """The default ``run`` of the close: each task after the other, in the caller's thread."""
    return [task() for task in tasks]


def money(c: Column | str) -> Column:
    """``c`` as ``decimal(18,2)``, the type of every amount in the recon outputs."""
    return (F.col(c) if isinstance(c, str) else c).cast(MONEY)


def latest_rows(key: tuple[str, ...]) -> Callable[[DataFrame], DataFrame]:
    """One row per business key: its newest landing, plus ``_first_seen`` (its oldest landing).

    Silver holds one row per key per date; a record that landed again on a later date counts once.
    """

    def transform(df: DataFrame) -> DataFrame:
        by_key = Window.partitionBy(*key)
        newest_first = by_key.orderBy(F.col("business_date").desc())
        return (
            df.withColumn(FIRST_SEEN_COLUMN, F.min("business_date").over(by_key))
            .withColumn("_version", F.row_number().over(newest_first))
            .where(F.col("_version") == 1)
            .drop("_version")
        )

    return transform


def blank_to_null(c: str) -> Column:
    """The trimmed string, or null when it is null or blank."""
    trimmed = F.trim(F.col(c))
    return F.when(trimmed != "", trimmed)


def format_amount(amount: Column | str, currency: Column | str) -> Column:
    """``"1,234.56 EUR"``: an amount as an analyst reads it."""
    amount_col = F.col(amount) if isinstance(amount, str) else amount
    currency_col = F.col(currency) if isinstance(currency, str) else currency
    return F.concat_ws(" ", F.format_number(amount_col, 2), currency_col)


def _as_of_column(as_of: date | None) -> Column:
    return F.col(AS_OF) if as_of is None else F.lit(as_of)


def to_match_rows(recon: str, as_of: date | None = None) -> Callable[[DataFrame], DataFrame]:
    """Match groups in the ``MATCH_COLUMNS`` shape.

    Expects ``rule, legal_entity, left_records, right_records, left_amount, right_amount, currency,
    amount_usd, matched_on``, and ``AS_OF`` unless ``as_of`` is given.
    """

    def transform(df: DataFrame) -> DataFrame:
        left = F.array_sort(F.col("left_records"))
        right = F.array_sort(F.col("right_records"))
        return df.select(
            _as_of_column(as_of).alias("business_date"),
            F.lit(recon).alias("recon"),
            group_id(recon, "match", F.concat(left, right)).alias("match_id"),
            F.col("rule").cast("string").alias("rule"),
            F.col("legal_entity").cast("string").alias("legal_entity"),
            left.alias("left_records"),
            right.alias("right_records"),
            money("left_amount").alias("left_amount"),
            money("right_amount").alias("right_amount"),
            F.col("currency").cast("string").alias("currency"),
            money("amount_usd").alias("amount_usd"),
            F.col("matched_on").cast("date").alias("matched_on"),
        )

    return transform


def to_exception_rows(recon: str, as_of: date | None = None) -> Callable[[DataFrame], DataFrame]:
    """Open exceptions in the ``EXCEPTION_COLUMNS`` shape.

    Expects ``exception_type, legal_entity, first_seen_date, amount, currency, amount_usd, records,
    rule, detail``, and ``AS_OF`` unless ``as_of`` is given; ``age_days`` is the as-of date minus
    ``first_seen_date``.
    """

    def transform(df: DataFrame) -> DataFrame:
        records = F.array_sort(F.col("records"))
        return df.select(
            _as_of_column(as_of).alias("business_date"),
            group_id(recon, F.col("exception_type"), records).alias("exception_id"),
            F.lit(recon).alias("recon"),
            F.col("exception_type").cast("string").alias("exception_type"),
            F.col("legal_entity").cast("string").alias("legal_entity"),
            F.lit("open").alias("status"),
            F.lit(None).cast("string").alias("resolution"),
            F.col("first_seen_date").cast("date").alias("first_seen_date"),
            F.lit(None).cast("date").alias("closed_on"),
            F.datediff(_as_of_column(as_of), "first_seen_date").cast("int").alias("age_days"),
            money("amount").alias("amount"),
            F.col("currency").cast("string").alias("currency"),
            money("amount_usd").alias("amount_usd"),
            records.alias("records"),
            F.col("rule").cast("string").alias("rule"),
            F.col("detail").cast("string").alias("detail"),
        )

    return transform


def _column(c: Column | str) -> Column:
    return F.col(c) if isinstance(c, str) else c


def match_input(
    rule: str,
    *,
    left_records: Column | str,
    right_records: Column | str,
    left_amount: Column | str,
    right_amount: Column | str,
    amount_usd: Column | str,
    matched_on: Column | str,
    legal_entity: Column | str = "legal_entity",
    currency: Column | str = "currency",
) -> list[Column]:
    """The columns ``to_match_rows`` expects, named: ``df.select(*match_input(...))``.

    ``rule`` is a literal; every other argument is a column or a column's name.
    """
    return [
        F.lit(rule).alias("rule"),
        _column(legal_entity).alias("legal_entity"),
        _column(left_records).alias("left_records"),
        _column(right_records).alias("right_records"),
        _column(left_amount).alias("left_amount"),
        _column(right_amount).alias("right_amount"),
        _column(currency).alias("currency"),
        _column(amount_usd).alias("amount_usd"),
        _column(matched_on).alias("matched_on"),
    ]


def exception_input(
    exception_type: str,
    *,
    rule: str,
    first_seen_date: Column | str,
    amount: Column | str,
    amount_usd: Column | str,
    records: Column | str,
    detail: Column,
    legal_entity: Column | str = "legal_entity",
    currency: Column | str = "currency",
) -> list[Column]:
    """The columns ``to_exception_rows`` expects, named: ``df.select(*exception_input(...))``.

    ``exception_type`` and ``rule`` are literals; every other argument is a column or its name.
    """
    return [
        F.lit(exception_type).alias("exception_type"),
        _column(legal_entity).alias("legal_entity"),
        _column(first_seen_date).alias("first_seen_date"),
        _column(amount).alias("amount"),
        _column(currency).alias("currency"),
        _column(amount_usd).alias("amount_usd"),
        _column(records).alias("records"),
        F.lit(rule).alias("rule"),
        detail.alias("detail"),
    ]


# --- The REFERENCE rule of the matching recons (bank_gl, ap_gl) ------------------------------
# Both sides are summed per (entity, currency, reference) into columns ``<side>records``,
# ``<side><amount>``, ``<side><amount>_usd``, ``<side>first_seen`` and ``<side>last_seen``, where
# ``<side>`` is a prefix such as ``b_``; groups on both sides carry ``is_match``.


def reference_matches(groups: DataFrame, left: str, right: str, amount: str) -> DataFrame:
    """``REFERENCE`` matches: the groups on both sides whose sums agree (``is_match``), each with
    its ``AS_OF``."""
    return groups.where("is_match").select(
        AS_OF,
        *match_input(
            "REFERENCE",
            left_records=f"{left}records",
            right_records=f"{right}records",
            left_amount=f"{left}{amount}",
            right_amount=f"{right}{amount}",
            amount_usd=f"{left}{amount}_usd",
            matched_on=F.greatest(f"{left}last_seen", f"{right}last_seen"),
        ),
    )


def reference_mismatches(
    groups: DataFrame,
    left: str,
    right: str,
    amount: str,
    *,
    subject: Column,
    left_name: str,
    right_name: str,
) -> DataFrame:
    """``AMOUNT_MISMATCH``: the groups on both sides whose sums differ (left minus right), each
    with its ``AS_OF``.

    Detail: ``<subject>: <left_name> <left sum> vs <right_name> <right sum> (difference <d>)``.
    """
    difference = F.col(f"{left}{amount}") - F.col(f"{right}{amount}")
    return groups.where(~F.col("is_match")).select(
        AS_OF,
        *exception_input(
            "AMOUNT_MISMATCH",
            rule="REFERENCE",
            first_seen_date=F.least(f"{left}first_seen", f"{right}first_seen"),
            amount=difference,
            amount_usd=F.col(f"{left}{amount}_usd") - F.col(f"{right}{amount}_usd"),
            records=F.concat(f"{left}records", f"{right}records"),
            detail=F.concat(
                subject,
                F.lit(f": {left_name} "),
                format_amount(f"{left}{amount}", "currency"),
                F.lit(f" vs {right_name} "),
                format_amount(f"{right}{amount}", "currency"),
                F.lit(" (difference "),
                F.format_number(difference, 2),
                F.lit(")"),
            ),
        ),
    )
