"""Bank statement lines ↔ GL cash postings (``bank_gl``), as docs/RECONCILIATIONS.md specifies.

Rules, in order: ``REFERENCE`` (groups of the same entity, currency and reference; equal sums
match, different sums are an ``AMOUNT_MISMATCH``), ``AMOUNT_DATE_WINDOW`` (the rest one-to-one,
mutual best) and what is left: ``BANK_NOT_IN_GL`` / ``GL_NOT_IN_BANK``, one per line.

The amount-and-date rule runs **one round** of mutual-best pairing: a pair is taken only when each
line is the other's first choice by (date distance, record id). A line whose first choice preferred
someone else is not offered its second choice; it stays an exception that night. Ties are rare
(same entity, currency, amount and a few days apart) and the result is always deterministic.
"""

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates
from transforms.contracts import BANK_STATEMENT_LINES, GL_JOURNAL_LINES
from transforms.frames import local_frame
from transforms.recon.common import (
    FIRST_SEEN_COLUMN,
    ReconResult,
    blank_to_null,
    exception_input,
    format_amount,
    identity,
    latest_rows,
    match_input,
    record_id,
    reference_matches,
    reference_mismatches,
    to_exception_rows,
    to_match_rows,
)
from transforms.reference_data import BANK_ACCOUNTS, GL_CASH_ACCOUNTS, RECON_LOOKBACK_DAYS

LOOKBACK_DAYS = RECON_LOOKBACK_DAYS
AMOUNT_TOLERANCE = Decimal("0.01")
DATE_WINDOW_DAYS = 3

RECON = "bank_gl"
UNKNOWN_ENTITY = "UNKNOWN"

# One normalised line of either side, as of one date (``AS_OF``).
LINE_COLUMNS = [
    AS_OF,
    "record",
    "legal_entity",
    "currency",
    "amount",
    "amount_usd",
    "txn_date",
    "reference",
    "first_seen",
    "last_seen",
    "label",
]
_GROUP_KEY = [AS_OF, "legal_entity", "currency", "reference"]


def bank_accounts_frame(spark: SparkSession) -> DataFrame:
    """``reference_data.BANK_ACCOUNTS`` as a small DataFrame (account, entity, currency)."""
    rows = [(b.account, b.legal_entity, b.currency) for b in BANK_ACCOUNTS.values()]
    return local_frame(
        spark, rows, "bank_account string, account_entity string, account_currency string"
    )


def bank_lines(bank: DataFrame, days: list[date]) -> DataFrame:
    """Bank lines of each date's window in ``LINE_COLUMNS`` (once per as-of date of ``days``);
    entity and currency from the bank account.

    A line on an account missing from the reference data keeps its own currency and gets entity
    ``UNKNOWN``, so it is reported rather than dropped.
    """
    accounts = F.broadcast(bank_accounts_frame(bank.sparkSession))
    known = F.col("account_entity").isNotNull()
    return (
        as_of_dates(bank, days, LOOKBACK_DAYS)
        .transform(latest_rows((AS_OF, *BANK_STATEMENT_LINES.key)))
        .join(accounts, "bank_account", "left")
        .select(
            AS_OF,
            record_id(BANK_STATEMENT_LINES.name, *BANK_STATEMENT_LINES.key).alias("record"),
            F.coalesce("account_entity", F.lit(UNKNOWN_ENTITY)).alias("legal_entity"),
            F.coalesce("account_currency", "currency").alias("currency"),
            F.col("amount"),
            F.col("amount_usd"),
            F.col("value_date").alias("txn_date"),
            blank_to_null("reference").alias("reference"),
            F.col(FIRST_SEEN_COLUMN).alias("first_seen"),
            F.col("business_date").alias("last_seen"),
            F.concat(
                F.lit("Bank line "),
                F.col("statement_line_id"),
                F.lit(" on "),
                F.when(known, F.col("bank_account")).otherwise(
                    F.concat(F.lit("unknown bank account "), F.col("bank_account"))
                ),
            ).alias("label"),
        )
    )


def gl_cash_lines(gl: DataFrame, days: list[date]) -> DataFrame:
    """GL lines on a cash account in each date's window, in ``LINE_COLUMNS`` (signed like the
    bank), once per as-of date of ``days``."""
    return (
        as_of_dates(gl.where(F.col("account").isin(*sorted(GL_CASH_ACCOUNTS))), days, LOOKBACK_DAYS)
        .transform(latest_rows((AS_OF, *GL_JOURNAL_LINES.key)))
        .select(
            AS_OF,
            record_id(GL_JOURNAL_LINES.name, *GL_JOURNAL_LINES.key).alias("record"),
            F.col("legal_entity"),
            F.col("currency"),
            F.col("signed_amount").alias("amount"),
            F.col("signed_amount_usd").alias("amount_usd"),
            F.col("posting_date").alias("txn_date"),
            blank_to_null("reference").alias("reference"),
            F.col(FIRST_SEEN_COLUMN).alias("first_seen"),
            F.col("business_date").alias("last_seen"),
            F.concat(
                F.lit("GL cash posting "),
                F.col("journal_id"),
                F.lit(" line "),
                F.col("line_number").cast("string"),
            ).alias("label"),
        )
    )


def _reference_groups(lines: DataFrame, prefix: str) -> DataFrame:
    """Lines with a reference, summed per (as-of, entity, currency, reference); columns get
    ``prefix``."""
    return (
        lines.where(F.col("reference").isNotNull())
        .groupBy(*_GROUP_KEY)
        .agg(
            F.array_sort(F.collect_list("record")).alias(f"{prefix}records"),
            F.sum("amount").alias(f"{prefix}amount"),
            F.sum("amount_usd").alias(f"{prefix}amount_usd"),
            F.min("first_seen").alias(f"{prefix}first_seen"),
            F.max("last_seen").alias(f"{prefix}last_seen"),
        )
    )


def _within_tolerance(a: Column, b: Column) -> Column:
    return F.abs(a - b) <= F.lit(AMOUNT_TOLERANCE)


def _reference_rule(bank: DataFrame, gl: DataFrame) -> DataFrame:
    """Reference groups present on both sides, with ``is_match`` (sums within tolerance)."""
    return (
        _reference_groups(bank, "b_")
        .join(_reference_groups(gl, "g_"), _GROUP_KEY, "inner")
        .withColumn("is_match", _within_tolerance(F.col("b_amount"), F.col("g_amount")))
    )


def _amount_date_pairs(bank: DataFrame, gl: DataFrame) -> DataFrame:
    """Mutual-best one-to-one pairs by amount (within tolerance) and date (within the window), per
    as-of date (columns ``AS_OF``, ``b_<line column>``, ``g_<line column>``, ``distance``).

    Candidates come from an equi-join on as-of date, entity, currency and amount in cents (the GL
    side probes every cent value within the tolerance), so no line is compared with every other
    line.
    """
    tolerance_cents = int(AMOUNT_TOLERANCE * 100)
    line_columns = [c for c in LINE_COLUMNS if c != AS_OF]
    b = bank.select(
        AS_OF,
        *[F.col(c).alias(f"b_{c}") for c in line_columns],
        (F.col("amount") * 100).cast("long").alias("b_cents"),
    )
    g = gl.select(
        F.col(AS_OF).alias("g_as_of"),
        *[F.col(c).alias(f"g_{c}") for c in line_columns],
        F.explode(
            F.sequence(
                (F.col("amount") * 100).cast("long") - tolerance_cents,
                (F.col("amount") * 100).cast("long") + tolerance_cents,
            )
        ).alias("g_cents"),
    )
    distance = F.abs(F.datediff(F.col("b_txn_date"), F.col("g_txn_date")))
    candidates = (
        b.join(
            g,
            (F.col(AS_OF) == F.col("g_as_of"))
            & (F.col("b_legal_entity") == F.col("g_legal_entity"))
            & (F.col("b_currency") == F.col("g_currency"))
            & (F.col("b_cents") == F.col("g_cents")),
        )
        .where(_within_tolerance(F.col("b_amount"), F.col("g_amount")))
        .withColumn("distance", distance)
        .where(F.col("distance") <= DATE_WINDOW_DAYS)
        .drop("g_as_of", "b_cents", "g_cents")
    )
    bank_choice = Window.partitionBy(AS_OF, "b_record").orderBy("distance", "g_record")
    gl_choice = Window.partitionBy(AS_OF, "g_record").orderBy("distance", "b_record")
    return (
        candidates.withColumn("b_rank", F.row_number().over(bank_choice))
        .withColumn("g_rank", F.row_number().over(gl_choice))
        .where((F.col("b_rank") == 1) & (F.col("g_rank") == 1))
        .drop("b_rank", "g_rank")
    )


def _unmatched_exceptions(lines: DataFrame, exception_type: str, missing: str) -> DataFrame:
    """One exception per left-over line, in the input shape of ``to_exception_rows``."""
    detail = F.concat(
        F.col("label"),
        F.lit(" of "),
        format_amount("amount", "currency"),
        F.lit(" on "),
        F.date_format("txn_date", "yyyy-MM-dd"),
        F.lit(" (ref "),
        F.coalesce(F.col("reference"), F.lit("none")),
        F.lit(f") has no {missing}"),
    )
    return lines.select(
        AS_OF,
        *exception_input(
            exception_type,
            rule="UNMATCHED",
            first_seen_date="first_seen",
            amount="amount",
            amount_usd="amount_usd",
            records=F.array("record"),
            detail=detail,
        ),
    )


def reconcile_bank_gl(
    bank: DataFrame,
    gl: DataFrame,
    as_of: date,
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """Reconcile silver bank statement lines with silver GL cash lines as of ``as_of``.

    ``reconcile_bank_gl_dates`` for the one date ``as_of``.
    """
    return reconcile_bank_gl_dates(bank, gl, [as_of], materialize)


def reconcile_bank_gl_dates(
    bank: DataFrame,
    gl: DataFrame,
    days: list[date],
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """Reconcile silver bank statement lines with silver GL cash lines as of each date of ``days``.

    One plan for every date: the outputs' ``business_date`` is the as-of date, and the rows of
    ``D`` are those of reconciling ``D`` alone. Both inputs are whole silver tables (every date);
    as of ``D``, records that landed after ``D`` or more than ``LOOKBACK_DAYS`` before it are
    ignored. ``materialize`` is applied to the intermediate results each later step reads several
    times (the close passes ``localCheckpoint``: without it the plan inlines them over and over,
    and planning it costs more than running it); how many times does not depend on ``days``.
    """
    bank_side = materialize(bank_lines(bank, days))
    gl_side = materialize(gl_cash_lines(gl, days))

    # 1. REFERENCE
    by_reference = materialize(_reference_rule(bank_side, gl_side))
    referenced_matches = reference_matches(by_reference, "b_", "g_", "amount")
    mismatches = reference_mismatches(
        by_reference,
        "b_",
        "g_",
        "amount",
        subject=F.concat(F.lit("Reference "), F.col("reference")),
        left_name="bank",
        right_name="GL cash",
    )
    referenced = by_reference.select(*_GROUP_KEY)
    bank_rest = bank_side.join(referenced, _GROUP_KEY, "left_anti")
    gl_rest = gl_side.join(referenced, _GROUP_KEY, "left_anti")

    # 2. AMOUNT_DATE_WINDOW
    pairs = materialize(_amount_date_pairs(bank_rest, gl_rest))
    window_matches = pairs.select(
        AS_OF,
        *match_input(
            "AMOUNT_DATE_WINDOW",
            legal_entity="b_legal_entity",
            left_records=F.array("b_record"),
            right_records=F.array("g_record"),
            left_amount="b_amount",
            right_amount="g_amount",
            currency="b_currency",
            amount_usd="b_amount_usd",
            matched_on=F.greatest("b_last_seen", "g_last_seen"),
        ),
    )
    paired = lambda side: pairs.select(AS_OF, F.col(f"{side}_record").alias("record"))  # noqa: E731
    bank_left = bank_rest.join(paired("b"), [AS_OF, "record"], "left_anti")
    gl_left = gl_rest.join(paired("g"), [AS_OF, "record"], "left_anti")

    # 3. Left over
    exceptions = (
        mismatches.unionByName(
            _unmatched_exceptions(bank_left, "BANK_NOT_IN_GL", "GL cash posting")
        )
        .unionByName(_unmatched_exceptions(gl_left, "GL_NOT_IN_BANK", "bank statement line"))
        .transform(to_exception_rows(RECON))
    )
    matches = referenced_matches.unionByName(window_matches).transform(to_match_rows(RECON))
    return ReconResult(matches=matches, exceptions=exceptions)
