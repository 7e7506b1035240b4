"""Bronze to silver for any declared source: type, check, convert to USD, dedupe.

The contract says what each column should be; ``conform_rules`` turns that into reason-coded
rules (the first failing rule names the reason), ``with_fx_rates`` attaches the business date's
rate so amounts convert to USD (no rate: ``MISSING_FX_RATE``, never a guess), and
``silver_rows`` selects the typed, accepted rows. Source-specific rules (an unbalanced journal, a
net pay that does not add up) are added by the caller as extra ``Rule``s or row-set transforms.
"""

from collections.abc import Callable, Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.contracts import CORRUPT_RECORD_COLUMN, VALID_CURRENCIES, SourceContract
from transforms.deliveries import REPEAT_OF_COLUMN, with_repeat_of
from transforms.frames import local_frame
from transforms.ingest import ROW_HASH_COLUMN, SOURCE_FILE_COLUMN
from transforms.quarantine import (
    REASON_CODE,
    REASON_DETAIL,
    Rule,
    accepted_rows,
    reject_duplicate_keys,
    with_rejection_reason,
)

FX_RATE_COLUMN = "fx_rate_to_usd"
RATE_COLUMN = "_fx_rate"
# The reason code a value that does not fit its declared type is rejected with.
INVALID_TYPE_REASONS = {
    "decimal": "INVALID_AMOUNT",
    "int": "INVALID_NUMBER",
    "date": "INVALID_DATE",
    "timestamp": "INVALID_TIMESTAMP",
}


def typed(name: str) -> str:
    """The working column holding ``name`` cast to its declared silver type."""
    return f"_t_{name}"


def _kind(silver_type: str) -> str:
    return silver_type.split("(")[0].strip().lower()


def _cast(column: str, silver_type: str) -> Column:
    kind = _kind(silver_type)
    value = F.trim(F.col(column))
    if kind == "date":
        return F.try_to_date(value, "yyyy-MM-dd")
    if kind == "timestamp":
        return F.try_to_timestamp(value)
    if kind == "string":
        return F.when(value != "", value)
    return F.expr(f"try_cast(trim(`{column}`) AS {silver_type})")


def blank(column: str) -> Column:
    """True when the raw value is null or only spaces."""
    return F.col(column).isNull() | (F.trim(F.col(column)) == "")


def message(condition: Column, *parts: Column | str) -> Column:
    """A rule's verdict: null when ``condition`` is false, else the concatenated message."""
    return F.when(condition, F.concat(*[F.lit(p) if isinstance(p, str) else p for p in parts]))


def with_typed_columns(contract: SourceContract) -> Callable[[DataFrame], DataFrame]:
    """Add ``_t_<column>``: every declared column cast to its silver type (null if it won't)."""

    def transform(df: DataFrame) -> DataFrame:
        return df.withColumns(
            {typed(c.name): _cast(c.name, c.silver_type) for c in contract.columns}
        )

    return transform


def conform_rules(contract: SourceContract) -> list[Rule]:
    """Malformed line, missing required value, value not of its type, unknown currency."""
    required = [c.name for c in contract.columns if c.required]
    missing = F.concat_ws(", ", *[F.when(blank(c), F.lit(c)) for c in required])
    rules = [
        Rule(
            "MALFORMED_RECORD",
            message(
                F.col(CORRUPT_RECORD_COLUMN).isNotNull(),
                "line does not match the declared columns: ",
                F.substring(F.col(CORRUPT_RECORD_COLUMN), 1, 200),
            ),
        ),
        Rule("MISSING_REQUIRED_FIELD", message(missing != "", "missing: ", missing)),
    ]
    for column in contract.columns:
        kind = _kind(column.silver_type)
        if kind not in INVALID_TYPE_REASONS:
            continue
        rules.append(
            Rule(
                INVALID_TYPE_REASONS[kind],
                message(
                    ~blank(column.name) & F.col(typed(column.name)).isNull(),
                    f"{column.name} is not a valid {column.silver_type}: ",
                    F.col(column.name),
                ),
            )
        )
    if contract.currency_column:
        currency = F.upper(F.trim(F.col(contract.currency_column)))
        rules.append(
            Rule(
                "INVALID_CURRENCY",
                message(
                    ~blank(contract.currency_column) & ~currency.isin(*sorted(VALID_CURRENCIES)),
                    "not an accepted ISO 4217 code: ",
                    F.col(contract.currency_column),
                ),
            )
        )
    return rules


def rates_on(fx_silver: DataFrame, business_dates: Sequence[date]) -> DataFrame:
    """``(business_date, currency, rate)`` for the given dates from silver FX rates; USD is
    always 1 (on every date, whether or not other rates landed)."""
    session = fx_silver.sparkSession
    usd = local_frame(
        session,
        [(d, "USD") for d in sorted(set(business_dates))],
        "business_date date, currency string",
    ).withColumn("rate", F.lit(1).cast("decimal(18,8)"))
    rates = fx_silver.where(
        F.col("business_date").isin([F.lit(d) for d in sorted(set(business_dates))])
    ).select("business_date", "currency", F.col("rate_to_usd").alias("rate"))
    return (
        rates.unionByName(usd)
        .groupBy("business_date", "currency")
        .agg(F.first("rate", ignorenulls=True).alias("rate"))
    )


def day_rates(fx_silver: DataFrame, business_date: date) -> DataFrame:
    """``rates_on`` for one business date."""
    return rates_on(fx_silver, [business_date])


def with_fx_rates(contract: SourceContract, rates: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Attach the rate of each row's currency on the row's business date as ``_fx_rate`` (null
    when there is none); ``rates`` as ``rates_on`` gives them."""

    def transform(df: DataFrame) -> DataFrame:
        assert contract.currency_column, f"{contract.name} declares no currency column"
        lookup = rates.select(
            F.col("business_date").alias("_fx_date"),
            F.col("currency").alias("_fx_currency"),
            F.col("rate").alias(RATE_COLUMN),
        )
        return df.join(
            F.broadcast(lookup),
            (F.col("business_date") == F.col("_fx_date"))
            & (F.upper(F.trim(F.col(contract.currency_column))) == F.col("_fx_currency")),
            "left",
        ).drop("_fx_date", "_fx_currency")

    return transform


def missing_rate_rule(contract: SourceContract) -> Rule:
    """A valid currency without a rate on the row's business date: quarantined, not guessed."""
    return Rule(
        "MISSING_FX_RATE",
        message(
            F.col(RATE_COLUMN).isNull(),
            "no ",
            F.col("business_date").cast("string"),
            " rate to USD for ",
            F.coalesce(F.col(contract.currency_column), F.lit("?")),
        ),
    )


def repeated_file_rule() -> Rule:
    """A row of a file whose content repeats an earlier delivery (``transforms.deliveries``)."""
    return Rule(
        "DUPLICATE_FILE",
        message(
            F.col(REPEAT_OF_COLUMN).isNotNull(),
            "the file repeats the content of ",
            F.col(REPEAT_OF_COLUMN),
        ),
    )


def with_repeated_files(
    repeats: DataFrame | None,
) -> tuple[Callable[[DataFrame], DataFrame], list[Rule]]:
    """The join that marks rows of repeated files, and the rule that rejects them (first)."""
    if repeats is None:
        return (lambda df: df), []
    return with_repeat_of(repeats), [repeated_file_rule()]


def classify_rows(
    contract: SourceContract,
    rates: DataFrame | None = None,
    extra_rules: Sequence[Rule] = (),
    after_dedupe: Sequence[Callable[[DataFrame], DataFrame]] = (),
    repeats: DataFrame | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """Type bronze rows, apply the contract's rules (then ``extra_rules``), dedupe by key.

    Any number of business dates at once: every rule reads the row's own ``business_date``, rates
    are joined by date, keys are unique within a date and set rules group within a date.

    ``after_dedupe`` transforms see the deduplicated rows and may reject more (set-level rules such
    as an unbalanced journal). ``repeats`` (``deliveries.repeated_deliveries``) names files that
    repeat an earlier delivery: their rows are rejected first, whole, before deduplication.
    """

    def transform(bronze: DataFrame) -> DataFrame:
        mark_repeats, repeat_rules = with_repeated_files(repeats)
        df = bronze.transform(with_typed_columns(contract)).transform(mark_repeats)
        rules = [*repeat_rules, *conform_rules(contract)]
        if contract.amount_columns and rates is not None:
            df = df.transform(with_fx_rates(contract, rates))
            rules.append(missing_rate_rule(contract))
        df = df.transform(with_rejection_reason([*rules, *extra_rules])).transform(
            reject_duplicate_keys(tuple(typed(k) for k in contract.key))
        )
        for step in after_dedupe:
            df = df.transform(step)
        return df

    return transform


def reject_where(reason_code: str, verdict: Column) -> Callable[[DataFrame], DataFrame]:
    """Reject not-yet-rejected rows whose ``verdict`` (a message column) is not null."""

    def transform(df: DataFrame) -> DataFrame:
        fire = F.col(REASON_CODE).isNull() & verdict.isNotNull()
        return df.withColumn(
            REASON_DETAIL, F.when(fire, verdict).otherwise(F.col(REASON_DETAIL))
        ).withColumn(REASON_CODE, F.when(fire, F.lit(reason_code)).otherwise(F.col(REASON_CODE)))

    return transform


def reject_unbalanced_journals(df: DataFrame) -> DataFrame:
    """Reject every line of a journal whose accepted lines do not balance (Σdebit ≠ Σcredit).

    A journal is all or nothing: if one of its lines was rejected for another reason, the rest no
    longer balance and are rejected too, so silver never holds half a journal.
    """
    journal = Window.partitionBy("business_date", typed("journal_id"))
    ok = F.col(REASON_CODE).isNull()
    net = F.sum(F.when(ok, F.col(typed("debit")) - F.col(typed("credit")))).over(journal)
    any_rejected = F.max(F.when(~ok, 1).otherwise(0)).over(journal)
    verdict = message(
        (net != 0) | (any_rejected == 1),
        "journal ",
        F.col(typed("journal_id")),
        " does not balance: debits - credits = ",
        F.coalesce(net.cast("string"), F.lit("?")),
        F.when(any_rejected == 1, F.lit(" (another of its lines was rejected)")).otherwise(""),
    )
    return df.transform(reject_where("UNBALANCED_JOURNAL", verdict))


def silver_rows(
    contract: SourceContract, derived: dict[str, Column] | None = None
) -> Callable[[DataFrame], DataFrame]:
    """Accepted rows in the silver shape: typed contract columns, USD amounts, lineage.

    Strings are trimmed and the currency upper-cased. Sources with amount columns get
    ``fx_rate_to_usd`` and ``<amount>_usd`` (rounded half-up to cents). ``derived`` adds columns
    computed from the typed ones (e.g. a GL line's signed amount).
    """

    def transform(classified: DataFrame) -> DataFrame:
        accepted = accepted_rows(classified)
        columns: list[Column] = []
        for c in contract.columns:
            value = F.col(typed(c.name))
            if c.name == contract.currency_column:
                value = F.upper(value)
            columns.append(value.alias(c.name))
        if contract.amount_columns and RATE_COLUMN in classified.columns:
            columns.append(F.col(RATE_COLUMN).cast("decimal(18,8)").alias(FX_RATE_COLUMN))
            for amount in contract.amount_columns:
                usd = F.round(F.col(typed(amount)) * F.col(RATE_COLUMN), 2).cast("decimal(18,2)")
                columns.append(usd.alias(f"{amount}_usd"))
        out = accepted.select(*columns, "business_date", SOURCE_FILE_COLUMN, ROW_HASH_COLUMN)
        for name, expression in (derived or {}).items():
            out = out.withColumn(name, expression)
        return out

    return transform
