"""AP subledger ↔ GL AP control account (``ap_gl``), as docs/RECONCILIATIONS.md specifies.

Every amount here is in **liability terms** (what the group owes, subledger minus GL): an invoice
is ``+amount``, a payment ``-amount`` and a control-account line ``credit - debit``. Matches carry
both sides in these terms; an exception's amount is subledger minus GL.

Documents are matched to GL groups of the same entity, currency and reference (= document id). A
posting in another currency than its document is therefore reported as ``AP_NOT_IN_GL`` plus
``GL_NOT_IN_AP`` rather than compared across currencies.
"""

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates, dates_frame
from transforms.contracts import AP_INVOICES, AP_PAYMENTS, GL_JOURNAL_LINES
from transforms.frames import local_frame
from transforms.recon.common import (
    FIRST_SEEN_COLUMN,
    MONEY,
    ReconResult,
    blank_to_null,
    exception_input,
    format_amount,
    identity,
    latest_rows,
    money,
    record_id,
    reference_matches,
    reference_mismatches,
    to_exception_rows,
    to_match_rows,
)
from transforms.reference_data import GL_AP_CONTROL_ACCOUNT, LEGAL_ENTITIES, RECON_LOOKBACK_DAYS

LOOKBACK_DAYS = RECON_LOOKBACK_DAYS
AMOUNT_TOLERANCE = Decimal("0.01")
DATE_WINDOW_DAYS = 3  # unused by the AP rules; kept so every matching recon declares the same knobs

RECON = "ap_gl"
AP_BALANCE_COLUMNS = [
    "legal_entity",
    "currency",
    "ap_subledger_balance",
    "ap_gl_balance",
    "ap_variance",
]
_KEY = [AS_OF, "legal_entity", "currency", "reference"]


def _document_lines(
    invoices: DataFrame, payments: DataFrame, days: list[date], lookback_days: int | None
) -> DataFrame:
    """Invoices and payments as one frame, once per as-of date of ``days`` (``AS_OF``) whose
    window (``as_of_dates``) holds them: record, id, kind, entity, currency, liability, dates."""
    window = lambda df: as_of_dates(df, days, lookback_days)  # noqa: E731
    invoice_lines = (
        window(invoices)
        .transform(latest_rows((AS_OF, *AP_INVOICES.key)))
        .select(
            AS_OF,
            record_id(AP_INVOICES.name, *AP_INVOICES.key).alias("record"),
            F.col("invoice_id").alias("reference"),
            F.lit("Invoice").alias("kind"),
            "legal_entity",
            "currency",
            F.col("amount").alias("liability"),
            F.col("amount_usd").alias("liability_usd"),
            F.col("invoice_date").alias("document_date"),
            F.col(FIRST_SEEN_COLUMN).alias("first_seen"),
            F.col("business_date").alias("last_seen"),
        )
    )
    payment_lines = (
        window(payments)
        .transform(latest_rows((AS_OF, *AP_PAYMENTS.key)))
        .select(
            AS_OF,
            record_id(AP_PAYMENTS.name, *AP_PAYMENTS.key).alias("record"),
            F.col("payment_id").alias("reference"),
            F.lit("Payment").alias("kind"),
            "legal_entity",
            "currency",
            (-F.col("amount")).alias("liability"),
            (-F.col("amount_usd")).alias("liability_usd"),
            F.col("payment_date").alias("document_date"),
            F.col(FIRST_SEEN_COLUMN).alias("first_seen"),
            F.col("business_date").alias("last_seen"),
        )
    )
    return invoice_lines.unionByName(payment_lines)


def _control_lines(gl: DataFrame, days: list[date], lookback_days: int | None) -> DataFrame:
    """GL lines on the AP control account, in liability terms (credit − debit), once per as-of
    date of ``days`` (``AS_OF``) whose window (``as_of_dates``) holds them."""
    control = gl.where(F.col("account") == GL_AP_CONTROL_ACCOUNT)
    return (
        as_of_dates(control, days, lookback_days)
        .transform(latest_rows((AS_OF, *GL_JOURNAL_LINES.key)))
        .select(
            AS_OF,
            record_id(GL_JOURNAL_LINES.name, *GL_JOURNAL_LINES.key).alias("record"),
            blank_to_null("reference").alias("reference"),
            F.concat(
                F.col("journal_id"), F.lit(" line "), F.col("line_number").cast("string")
            ).alias("journal_line"),
            "legal_entity",
            "currency",
            (-F.col("signed_amount")).alias("liability"),
            (-F.col("signed_amount_usd")).alias("liability_usd"),
            F.col(FIRST_SEEN_COLUMN).alias("first_seen"),
            F.col("business_date").alias("last_seen"),
        )
    )


def ap_documents(invoices: DataFrame, payments: DataFrame, days: list[date]) -> DataFrame:
    """AP documents of each date's window, one row per (as-of date, entity, currency, document
    id)."""
    return (
        _document_lines(invoices, payments, days, LOOKBACK_DAYS)
        .groupBy(*_KEY)
        .agg(
            F.array_sort(F.collect_list("record")).alias("d_records"),
            F.min("kind").alias("kind"),
            F.sum("liability").alias("d_liability"),
            F.sum("liability_usd").alias("d_liability_usd"),
            F.min("document_date").alias("document_date"),
            F.min("first_seen").alias("d_first_seen"),
            F.max("last_seen").alias("d_last_seen"),
        )
    )


def ap_control_groups(gl: DataFrame, days: list[date]) -> DataFrame:
    """Control-account postings of each date's window grouped by (as-of date, entity, currency,
    reference).

    A line without a reference is a group of its own (``_group`` is its record id).
    """
    lines = _control_lines(gl, days, LOOKBACK_DAYS)
    return (
        lines.withColumn("_group", F.coalesce("reference", "record"))
        .groupBy(AS_OF, "legal_entity", "currency", "_group")
        .agg(
            F.max("reference").alias("reference"),
            F.array_sort(F.collect_list("record")).alias("g_records"),
            F.min("journal_line").alias("journal_line"),
            F.sum("liability").alias("g_liability"),
            F.sum("liability_usd").alias("g_liability_usd"),
            F.min("first_seen").alias("g_first_seen"),
            F.max("last_seen").alias("g_last_seen"),
        )
        .drop("_group")
    )


def _within_tolerance(a: Column, b: Column) -> Column:
    return F.abs(a - b) <= F.lit(AMOUNT_TOLERANCE)


def reconcile_ap_gl(
    invoices: DataFrame,
    payments: DataFrame,
    gl: DataFrame,
    as_of: date,
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """Reconcile silver AP invoices and payments with the GL AP control account as of ``as_of``.

    ``reconcile_ap_gl_dates`` for the one date ``as_of``.
    """
    return reconcile_ap_gl_dates(invoices, payments, gl, [as_of], materialize)


def reconcile_ap_gl_dates(
    invoices: DataFrame,
    payments: DataFrame,
    gl: DataFrame,
    days: list[date],
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """Reconcile silver AP invoices and payments with the GL AP control account as of each date
    of ``days``.

    One plan for every date: the outputs' ``business_date`` is the as-of date, and the rows of
    ``D`` are those of reconciling ``D`` alone. Inputs are whole silver tables; as of ``D``,
    records outside ``[D - LOOKBACK_DAYS, D]`` are ignored. ``materialize`` is applied to the
    intermediate results later steps read several times (as in ``reconcile_bank_gl_dates``).
    """
    documents = materialize(ap_documents(invoices, payments, days))
    postings = materialize(ap_control_groups(gl, days))

    # 1. REFERENCE
    joined = documents.join(postings.where(F.col("reference").isNotNull()), _KEY, "inner")
    joined = materialize(
        joined.withColumn("is_match", _within_tolerance(F.col("d_liability"), F.col("g_liability")))
    )
    matches = reference_matches(joined, "d_", "g_", "liability").transform(to_match_rows(RECON))
    mismatches = reference_mismatches(
        joined,
        "d_",
        "g_",
        "liability",
        subject=F.concat(F.col("kind"), F.lit(" "), F.col("reference")),
        left_name="subledger",
        right_name=f"GL AP control {GL_AP_CONTROL_ACCOUNT}",
    )

    # 2. Left over
    referenced = joined.select(*_KEY)
    unposted = documents.join(referenced, _KEY, "left_anti").select(
        AS_OF,
        *exception_input(
            "AP_NOT_IN_GL",
            rule="UNMATCHED",
            first_seen_date="d_first_seen",
            amount="d_liability",
            amount_usd="d_liability_usd",
            records="d_records",
            detail=F.concat(
                F.col("kind"),
                F.lit(" "),
                F.col("reference"),
                F.lit(" of "),
                format_amount(F.abs("d_liability"), F.col("currency")),
                F.lit(" dated "),
                F.date_format("document_date", "yyyy-MM-dd"),
                F.lit(f" has no posting on AP control account {GL_AP_CONTROL_ACCOUNT}"),
            ),
        ),
    )
    undocumented = postings.join(referenced, _KEY, "left_anti").select(
        AS_OF,
        *exception_input(
            "GL_NOT_IN_AP",
            rule="UNMATCHED",
            first_seen_date="g_first_seen",
            amount=-F.col("g_liability"),
            amount_usd=-F.col("g_liability_usd"),
            records="g_records",
            detail=F.concat(
                F.lit(f"AP control account {GL_AP_CONTROL_ACCOUNT} posting "),
                F.coalesce(
                    F.concat(F.lit("ref "), F.col("reference")),
                    F.concat(F.lit("journal "), F.col("journal_line"), F.lit(" (no ref)")),
                ),
                F.lit(" of "),
                format_amount("g_liability", "currency"),
                F.lit(" (credit − debit) has no AP document"),
            ),
        ),
    )
    exceptions = (
        mismatches.unionByName(unposted)
        .unionByName(undocumented)
        .transform(to_exception_rows(RECON))
    )
    return ReconResult(matches=matches, exceptions=exceptions)


def ap_control_balances(
    invoices: DataFrame, payments: DataFrame, gl: DataFrame, as_of: date
) -> DataFrame:
    """Per entity of ``LEGAL_ENTITIES``, over every date ≤ ``as_of``: AP subledger vs GL control.

    ``ap_control_balances_dates`` for the one date ``as_of``, without its ``business_date``.
    """
    return ap_control_balances_dates(invoices, payments, gl, [as_of]).select(*AP_BALANCE_COLUMNS)


def ap_control_balances_dates(
    invoices: DataFrame, payments: DataFrame, gl: DataFrame, days: list[date]
) -> DataFrame:
    """Per as-of date ``D`` of ``days`` (``business_date``) and entity of ``LEGAL_ENTITIES``, over
    every date ≤ ``D``: AP subledger vs GL control.

    ``ap_subledger_balance`` = Σ invoices − Σ payments, ``ap_gl_balance`` = Σ (credit − debit) on
    the control account, ``ap_variance`` = subledger − GL; zeros for an entity with nothing.
    Amounts are summed as they are, in the entity's functional currency (``currency``). The
    balances are cumulative: each row of the inputs is counted once for every ``D`` it precedes.
    """
    by_entity = [AS_OF, "legal_entity"]
    subledger = (
        _document_lines(invoices, payments, days, None)
        .groupBy(*by_entity)
        .agg(F.sum("liability").alias("ap_subledger_balance"))
    )
    control = (
        _control_lines(gl, days, None)
        .groupBy(*by_entity)
        .agg(F.sum("liability").alias("ap_gl_balance"))
    )
    entities = local_frame(
        gl.sparkSession,
        [(e.code, e.currency) for e in LEGAL_ENTITIES.values()],
        "legal_entity string, currency string",
    ).crossJoin(dates_frame(gl.sparkSession, days))
    zero = F.lit(0).cast(MONEY)
    return (
        entities.join(subledger, by_entity, "left")
        .join(control, by_entity, "left")
        .select(
            F.col(AS_OF).alias("business_date"),
            "legal_entity",
            "currency",
            money(F.coalesce("ap_subledger_balance", zero)).alias("ap_subledger_balance"),
            money(F.coalesce("ap_gl_balance", zero)).alias("ap_gl_balance"),
        )
        .withColumn("ap_variance", money(F.col("ap_subledger_balance") - F.col("ap_gl_balance")))
        .select("business_date", *AP_BALANCE_COLUMNS)
    )
