"""Expense claims against the travel & expense policy (``expense_policy``).

Each rule of docs/RECONCILIATIONS.md is one small function of the claims; a claim can raise several
types. Exceptions are reported on the claim's business date only. ``reconcile_expense_policy_dates``
reconciles every date of a run in one plan, the as-of date in column ``AS_OF``.

Choices the spec leaves open:

- Claims carry no legal entity: ``legal_entity`` is ``'GROUP'``.
- ``OVER_LIMIT``, ``WEEKEND_EXPENSE`` and ``BLOCKED_MERCHANT`` report the whole claim (``amount``
  in the claim currency, ``amount_usd``); ``SPLIT_TRANSACTION`` the sum of its claims (in their
  currency when they share one, else in USD).
- A ``claimed_category`` not in ``CATEGORY_LIMITS_USD`` (or null) has no limit: it never raises
  ``OVER_LIMIT`` or ``SPLIT_TRANSACTION``.
- Justifications (personal data) never reach ``detail``; claims are named by record id.
"""

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates
from transforms.recon.common import record_id
from transforms.recon.payroll import as_open_exceptions
from transforms.reference_data import (
    BLOCKED_MERCHANT_TERMS,
    EXPENSE_CATEGORY_LIMITS_USD,
    WEEKDAY_ONLY_CATEGORIES,
)

RECON = "expense_policy"
LEGAL_ENTITY = "GROUP"

CATEGORY_LIMITS_USD = EXPENSE_CATEGORY_LIMITS_USD
DUPLICATE_LOOKBACK_DAYS = 30

CLAIM_RECORD = "_claim_record"
CLAIM_KEY = "_claim_key"
LIMIT = "_limit_usd"


def _money(c: Column | str) -> Column:
    return F.format_number(F.col(c) if isinstance(c, str) else c, 2)


def _limit(category: Column) -> Column:
    """The category's USD limit; null for a category the policy does not limit."""
    pairs = [
        part
        for name, limit in sorted(CATEGORY_LIMITS_USD.items())
        for part in (F.lit(name), F.lit(limit).cast("decimal(18,2)"))
    ]
    return F.try_element_at(F.create_map(*pairs), category)


def _with_claim_columns(claims: DataFrame) -> DataFrame:
    return (
        claims.withColumn(CLAIM_RECORD, record_id("expense_lines", "report_id", "line_id"))
        .withColumn(
            CLAIM_KEY, F.concat_ws("|", F.col("report_id"), F.col("line_id").cast("string"))
        )
        .withColumn(LIMIT, _limit(F.col("claimed_category")))
    )


def _claim_text() -> Column:
    """``ER-1|2 (E00042, Uber, 2026-11-17, 23.50 USD)``."""
    return F.concat(
        F.col(CLAIM_KEY),
        F.lit(" ("),
        F.col("employee_id"),
        F.lit(", "),
        F.col("merchant"),
        F.lit(", "),
        F.col("transaction_date").cast("string"),
        F.lit(", "),
        _money("amount"),
        F.lit(" "),
        F.col("currency"),
        F.lit(")"),
    )


def _single_claim(exception_type: str, detail: Column) -> list[Column]:
    return [
        AS_OF,
        F.lit(exception_type).alias("exception_type"),
        F.lit(LEGAL_ENTITY).alias("legal_entity"),
        "amount",
        "currency",
        "amount_usd",
        F.array(CLAIM_RECORD).alias("records"),
        detail.alias("detail"),
    ]


def duplicate_claim(window_claims: DataFrame) -> DataFrame:
    """Claims of their as-of date repeating an earlier claim of that date's window (``AS_OF``);
    each later copy pairs with the first."""
    same = [AS_OF, "employee_id", "merchant", "transaction_date", "amount", "currency"]
    ordered = Window.partitionBy(*same).orderBy("business_date", "report_id", "line_id")
    first = F.first(F.struct(CLAIM_RECORD, CLAIM_KEY, "business_date")).over(
        ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    return (
        window_claims.withColumn("_rank", F.row_number().over(ordered))
        .withColumn("_first", first)
        .where((F.col("_rank") > 1) & (F.col("business_date") == F.col(AS_OF)))
        .select(
            AS_OF,
            F.lit("DUPLICATE_CLAIM").alias("exception_type"),
            F.lit(LEGAL_ENTITY).alias("legal_entity"),
            "amount",
            "currency",
            "amount_usd",
            F.array(F.col(f"_first.{CLAIM_RECORD}"), F.col(CLAIM_RECORD)).alias("records"),
            F.concat(
                _claim_text(),
                F.lit(" repeats "),
                F.col(f"_first.{CLAIM_KEY}"),
                F.lit(" claimed on "),
                F.col("_first.business_date").cast("string"),
            ).alias("detail"),
        )
    )


def split_transaction(day_claims: DataFrame) -> DataFrame:
    """Two or more claims of one employee, merchant, day and category, each within the limit but
    together over it."""
    key = [AS_OF, "employee_id", "merchant", "transaction_date", "claimed_category"]
    currencies = F.array_sort(F.collect_set("currency"))
    single_currency = F.size("_currencies") == 1
    return (
        day_claims.where(F.col(LIMIT).isNotNull())
        .groupBy(*key)
        .agg(
            F.count(F.lit(1)).alias("_claims"),
            F.max(F.col("amount_usd") > F.col(LIMIT)).alias("_any_over"),
            F.max(LIMIT).alias(LIMIT),
            F.sum("amount").alias("_sum"),
            F.sum("amount_usd").alias("amount_usd"),
            currencies.alias("_currencies"),
            F.array_sort(F.collect_list(CLAIM_RECORD)).alias("records"),
            F.array_sort(F.collect_list(CLAIM_KEY)).alias("_keys"),
        )
        .where((F.col("_claims") > 1) & ~F.col("_any_over") & (F.col("amount_usd") > F.col(LIMIT)))
        .select(
            AS_OF,
            F.lit("SPLIT_TRANSACTION").alias("exception_type"),
            F.lit(LEGAL_ENTITY).alias("legal_entity"),
            F.when(single_currency, F.col("_sum")).otherwise(F.col("amount_usd")).alias("amount"),
            F.when(single_currency, F.col("_currencies")[0])
            .otherwise(F.lit("USD"))
            .alias("currency"),
            "amount_usd",
            "records",
            F.concat(
                F.col("_claims").cast("string"),
                F.lit(" claims by "),
                F.col("employee_id"),
                F.lit(" at "),
                F.col("merchant"),
                F.lit(" on "),
                F.col("transaction_date").cast("string"),
                F.lit(" in "),
                F.col("claimed_category"),
                F.lit(" ("),
                F.concat_ws(", ", "_keys"),
                F.lit(") total "),
                _money("amount_usd"),
                F.lit(" USD, over the "),
                _money(LIMIT),
                F.lit(" USD limit though each is within it"),
            ).alias("detail"),
        )
    )


def over_limit(day_claims: DataFrame) -> DataFrame:
    """Claims whose ``amount_usd`` is over their category's limit."""
    return day_claims.where(F.col("amount_usd") > F.col(LIMIT)).select(
        *_single_claim(
            "OVER_LIMIT",
            F.concat(
                _claim_text(),
                F.lit(": "),
                _money("amount_usd"),
                F.lit(" USD in "),
                F.col("claimed_category"),
                F.lit(" is over the "),
                _money(LIMIT),
                F.lit(" USD limit"),
            ),
        )
    )


def weekend_expense(day_claims: DataFrame) -> DataFrame:
    """Weekday-only categories bought on a Saturday or Sunday."""
    weekend = F.dayofweek("transaction_date").isin(1, 7)
    weekday_only = F.col("claimed_category").isin(*sorted(WEEKDAY_ONLY_CATEGORIES))
    return day_claims.where(weekend & weekday_only).select(
        *_single_claim(
            "WEEKEND_EXPENSE",
            F.concat(
                _claim_text(),
                F.lit(": "),
                F.col("claimed_category"),
                F.lit(" bought on a "),
                F.date_format("transaction_date", "EEEE"),
                F.lit(", a weekday-only category"),
            ),
        )
    )


def blocked_merchant(day_claims: DataFrame) -> DataFrame:
    """Claims at a merchant whose name contains a blocked term (case-insensitive)."""
    merchant = F.lower(F.col("merchant"))
    matched = F.concat_ws(
        ", ", *[F.when(merchant.contains(term), F.lit(term)) for term in BLOCKED_MERCHANT_TERMS]
    )
    return (
        day_claims.withColumn("_terms", matched)
        .where(F.col("_terms") != "")
        .select(
            *_single_claim(
                "BLOCKED_MERCHANT",
                F.concat(_claim_text(), F.lit(": merchant matches blocked term "), F.col("_terms")),
            )
        )
    )


def reconcile_expense_policy(claims: DataFrame, as_of: date) -> DataFrame:
    """Open ``expense_policy`` exceptions of ``as_of`` from the whole silver expense lines.

    ``reconcile_expense_policy_dates`` for the one date ``as_of``.
    """
    return reconcile_expense_policy_dates(claims, [as_of])


def reconcile_expense_policy_dates(claims: DataFrame, days: list[date]) -> DataFrame:
    """Open ``expense_policy`` exceptions of each date of ``days`` (``business_date`` = that date)
    from the whole silver expense lines.

    The close of ``D`` reads the claims of ``D`` and, for ``DUPLICATE_CLAIM``, the claims of the
    ``DUPLICATE_LOOKBACK_DAYS`` before it.
    """
    window_claims = _with_claim_columns(as_of_dates(claims, days, DUPLICATE_LOOKBACK_DAYS))
    # The day's claims of each date (the rows of its window landed that day), without a join.
    day_claims = _with_claim_columns(as_of_dates(claims, days, 0))
    found = (
        duplicate_claim(window_claims)
        .unionByName(split_transaction(day_claims))
        .unionByName(over_limit(day_claims))
        .unionByName(weekend_expense(day_claims))
        .unionByName(blocked_merchant(day_claims))
    )
    return found.transform(as_open_exceptions(RECON))
