"""Expense report lines: bronze strings to typed, validated, deduplicated silver rows."""

from collections.abc import Callable
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.conform import (
    FX_RATE_COLUMN,
    RATE_COLUMN,
    missing_rate_rule,
    with_fx_rates,
    with_repeated_files,
)
from transforms.contracts import (
    CORRUPT_RECORD_COLUMN,
    EXPENSE_LINES,
    MAX_EXPENSE_AGE_DAYS,
    MAX_EXPENSE_AMOUNT,
    VALID_CURRENCIES,
)
from transforms.enrich import PROVENANCE_COLUMNS, with_failure_kind
from transforms.ingest import ROW_HASH_COLUMN, SOURCE_FILE_COLUMN
from transforms.quarantine import (
    Rule,
    accepted_rows,
    quarantined_rows,
    reject_duplicate_keys,
    with_rejection_reason,
)

# Claims coded by employees over this many days train the spend-category model.
LABEL_HISTORY_DAYS = 90


def expense_text() -> Column:
    """What a model reads of an expense line: the merchant and the justification, labelled."""
    return F.concat_ws(
        "\n",
        F.concat(F.lit("Merchant: "), F.col("merchant")),
        F.concat(F.lit("Justification: "), F.coalesce(F.col("justification"), F.lit(""))),
    )


SILVER_EXPENSE_COLUMNS = [
    "report_id",
    "line_id",
    "employee_id",
    "transaction_date",
    "merchant",
    "amount",
    "currency",
    "claimed_category",
    "justification",
    "business_date",
    SOURCE_FILE_COLUMN,
    ROW_HASH_COLUMN,
]


def _blank(c: str) -> Column:
    return F.col(c).isNull() | (F.trim(F.col(c)) == "")


def _message(condition: Column, *parts: Column | str) -> Column:
    return F.when(condition, F.concat(*[F.lit(p) if isinstance(p, str) else p for p in parts]))


def expense_line_rules(business_date: date) -> list[Rule]:
    """The row-level rules for expense lines, in the order their reason codes take precedence."""
    required = [c.name for c in EXPENSE_LINES.columns if c.required]
    missing = F.concat_ws(", ", *[F.when(_blank(c), F.lit(c)) for c in required])
    amount = F.col("_amount")
    tx_date = F.col("_transaction_date")
    oldest = F.date_sub(F.lit(business_date), MAX_EXPENSE_AGE_DAYS)
    return [
        Rule(
            "MALFORMED_RECORD",
            _message(
                F.col(CORRUPT_RECORD_COLUMN).isNotNull(),
                "line does not match the declared columns: ",
                F.substring(F.col(CORRUPT_RECORD_COLUMN), 1, 200),
            ),
        ),
        Rule("MISSING_REQUIRED_FIELD", _message(missing != "", "missing: ", missing)),
        Rule(
            "INVALID_AMOUNT",
            _message(amount.isNull(), "amount is not a number: ", F.col("amount")),
        ),
        Rule(
            "AMOUNT_OUT_OF_RANGE",
            _message(
                (amount <= 0) | (amount > MAX_EXPENSE_AMOUNT),
                f"amount outside (0, {MAX_EXPENSE_AMOUNT}]: ",
                F.col("amount"),
            ),
        ),
        Rule(
            "INVALID_CURRENCY",
            _message(
                ~F.upper(F.trim(F.col("currency"))).isin(*sorted(VALID_CURRENCIES)),
                "not an accepted ISO 4217 code: ",
                F.col("currency"),
            ),
        ),
        Rule(
            "INVALID_DATE",
            _message(
                tx_date.isNull(),
                "transaction_date is not a yyyy-MM-dd date: ",
                F.col("transaction_date"),
            ),
        ),
        Rule(
            "DATE_OUT_OF_RANGE",
            _message(
                (tx_date > F.lit(business_date)) | (tx_date < oldest),
                "transaction_date outside the claim window: ",
                F.col("transaction_date"),
            ),
        ),
        Rule(
            "INVALID_LINE_ID",
            _message(
                F.col("_line_id").isNull() | (F.col("_line_id") < 1),
                "line_id is not a positive integer: ",
                F.col("line_id"),
            ),
        ),
    ]


def _with_typed_expense_columns(df: DataFrame) -> DataFrame:
    return (
        df.withColumn("_amount", F.expr("try_cast(trim(amount) AS decimal(18,2))"))
        .withColumn(
            "_transaction_date", F.try_to_date(F.trim(F.col("transaction_date")), "yyyy-MM-dd")
        )
        .withColumn("_line_id", F.expr("try_cast(trim(line_id) AS int)"))
    )


def classify_expense_rows(
    business_date: date, rates: DataFrame | None = None, repeats: DataFrame | None = None
) -> Callable[[DataFrame], DataFrame]:
    """Type bronze expense lines and attach the reason each rejected row is rejected for.

    With the day's ``rates`` (``conform.day_rates``), a line whose currency has no rate that day
    is rejected ``MISSING_FX_RATE`` and silver carries ``amount_usd``. Lines of a file that
    repeats an earlier delivery (``repeats``) are rejected ``DUPLICATE_FILE`` first.
    """

    def transform(bronze: DataFrame) -> DataFrame:
        mark_repeats, repeat_rules = with_repeated_files(repeats)
        rules = [*repeat_rules, *expense_line_rules(business_date)]
        df = bronze.transform(_with_typed_expense_columns).transform(mark_repeats)
        if rates is not None:
            df = df.transform(with_fx_rates(EXPENSE_LINES, rates))
            rules.append(missing_rate_rule(EXPENSE_LINES, business_date))
        return df.transform(with_rejection_reason(rules)).transform(
            reject_duplicate_keys(EXPENSE_LINES.key)
        )

    return transform


def silver_expense_lines(classified: DataFrame) -> DataFrame:
    """Accepted rows, typed: one row per (report_id, line_id); in USD too when rates were given."""
    usd = []
    if RATE_COLUMN in classified.columns:
        usd = [
            F.col(RATE_COLUMN).cast("decimal(18,8)").alias(FX_RATE_COLUMN),
            F.round(F.col("_amount") * F.col(RATE_COLUMN), 2)
            .cast("decimal(18,2)")
            .alias("amount_usd"),
        ]
    return accepted_rows(classified).select(
        F.trim("report_id").alias("report_id"),
        F.col("_line_id").alias("line_id"),
        F.trim("employee_id").alias("employee_id"),
        F.col("_transaction_date").alias("transaction_date"),
        F.trim("merchant").alias("merchant"),
        F.col("_amount").alias("amount"),
        F.upper(F.trim("currency")).alias("currency"),
        F.trim("claimed_category").alias("claimed_category"),
        F.trim("justification").alias("justification"),
        *usd,
        "business_date",
        SOURCE_FILE_COLUMN,
        ROW_HASH_COLUMN,
    )


def quarantined_expense_lines(classified: DataFrame) -> DataFrame:
    """Rejected rows with their reason, raw content kept."""
    return classified.transform(quarantined_rows(EXPENSE_LINES))


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
