"""AP invoices ↔ vendor contracts' payment terms (``contract_ap``), per docs/RECONCILIATIONS.md.

A published contract (``gold.contract_terms``: what the extraction read) states the payment terms
a vendor agreed to (``net 30``: ``payment_days`` 30). The AP subledger says when AP means to pay
an invoice (``due_date``) and, once paid, when it did (``silver.ap_payments``). Rules, as of D:

1. An AP invoice of the window (its newest landing) is governed by the contract of its vendor:
   a contract landed by D, with payment terms in days, one of whose parties' names agrees with
   the AP vendor name (``vendor_key`` equal, or one within the other: the same normalisation as
   ``document_ap``), in effect on the invoice date (no effective date read counts as in effect).
   Of several, the latest landed (a contract landed again with new terms supersedes).
2. ``AP_TERMS_OUTSIDE_CONTRACT``: the invoice's due date, or its last payment landed by D if
   later, is more than the contract's days after the invoice date. Paying or falling due sooner
   than the terms is not an exception (the terms are a maximum).

Contracts are standing terms, not records of the window: every contract landed by D is read, and
the exception ages with its AP invoice (``first_seen_date`` is the invoice's first landing).
There are no matches: an invoice within its terms is simply not an exception.
"""

from collections.abc import Callable
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates
from transforms.contracts import AP_INVOICES, AP_PAYMENTS
from transforms.recon.common import (
    FIRST_SEEN_COLUMN,
    ReconResult,
    exception_input,
    format_amount,
    identity,
    latest_rows,
    match_input,
    record_id,
    to_exception_rows,
    to_match_rows,
)
from transforms.recon.documents import vendor_key
from transforms.reference_data import RECON_LOOKBACK_DAYS

RECON = "contract_ap"
EXCEPTION_TYPE = "AP_TERMS_OUTSIDE_CONTRACT"
RULE = "PAYMENT_TERMS"
LOOKBACK_DAYS = RECON_LOOKBACK_DAYS
CONTRACTS = "contract_documents"
# What the reconciliation reads of gold.contract_terms (key: business_date, file_name).
CONTRACT_SCHEMA = (
    "business_date date, file_name string, effective_date date, payment_terms string, "
    "payment_days int, parties array<struct<name:string,role:string>>"
)
CONTRACT_COLUMNS = [part.split()[0] for part in CONTRACT_SCHEMA.split(", ")]


def _contract_vendors(contracts: DataFrame, days: list[date]) -> DataFrame:
    """One row per (as-of date ``D`` of ``days``, contract landed by ``D`` with terms in days,
    party name)."""
    named = (
        contracts.where(F.col("payment_days").isNotNull())
        .select(
            record_id(CONTRACTS, "business_date", "file_name").alias("c_record"),
            F.col("business_date").alias("c_landed"),
            F.col("file_name").alias("c_file"),
            F.col("effective_date").alias("c_effective"),
            F.col("payment_terms").alias("c_terms"),
            F.col("payment_days").alias("c_days"),
            F.explode("parties").alias("_party"),
        )
        .select("*", vendor_key(F.col("_party")["name"]).alias("c_vendor"))
        .where(F.col("c_vendor").isNotNull())
        .drop("_party")
    )
    # Standing terms: no lookback, every contract landed by the as-of date.
    return as_of_dates(named, days, None, column="c_landed")


def _last_payments(payments: DataFrame, days: list[date]) -> DataFrame:
    """Per as-of date of ``days``, each invoice's latest payment date among the payments landed in
    the window."""
    return (
        as_of_dates(payments, days, LOOKBACK_DAYS)
        .transform(latest_rows((AS_OF, *AP_PAYMENTS.key)))
        .groupBy(AS_OF, "invoice_id")
        .agg(F.max("payment_date").alias("a_paid"))
    )


def _governed(invoices: DataFrame, contracts: DataFrame, days: list[date]) -> DataFrame:
    """Per as-of date of ``days``, the window's AP invoices, each with the contract that governs
    it (none: dropped)."""
    ap = (
        as_of_dates(invoices, days, LOOKBACK_DAYS)
        .transform(latest_rows((AS_OF, *AP_INVOICES.key)))
        .select(
            AS_OF,
            record_id(AP_INVOICES.name, *AP_INVOICES.key).alias("a_record"),
            "invoice_id",
            "legal_entity",
            "vendor_name",
            vendor_key("vendor_name").alias("a_vendor"),
            "invoice_date",
            "due_date",
            "amount",
            "currency",
            "amount_usd",
            F.col(FIRST_SEEN_COLUMN).alias("a_first_seen"),
        )
    )
    vendors = _contract_vendors(contracts, days).withColumnRenamed(AS_OF, "_c_as_of")
    agree = (
        (F.col(AS_OF) == F.col("_c_as_of"))
        & (
            F.col("a_vendor").contains(F.col("c_vendor"))
            | F.col("c_vendor").contains(F.col("a_vendor"))
        )
        & (F.col("c_effective").isNull() | (F.col("c_effective") <= F.col("invoice_date")))
    )
    latest = Window.partitionBy(AS_OF, "a_record").orderBy(
        F.col("c_landed").desc(), F.col("c_file").desc()
    )
    return (
        ap.join(vendors, agree)
        .withColumn("_n", F.row_number().over(latest))
        .where(F.col("_n") == 1)
        .drop("_n", "_c_as_of")
    )


def reconcile_contract_terms_ap(
    contracts: DataFrame,
    invoices: DataFrame,
    payments: DataFrame,
    as_of: date,
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """AP invoices whose due or paid date falls outside their vendor's contract terms.

    ``reconcile_contract_terms_ap_dates`` for the one date ``as_of``.
    """
    return reconcile_contract_terms_ap_dates(contracts, invoices, payments, [as_of], materialize)


def reconcile_contract_terms_ap_dates(
    contract_terms: DataFrame,
    ap_invoices: DataFrame,
    ap_payments: DataFrame,
    days: list[date],
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """AP invoices whose due or paid date falls outside their vendor's contract terms, as of each
    date of ``days``.

    ``contract_terms`` holds ``CONTRACT_COLUMNS`` of gold.contract_terms (as of ``D``, every date
    landed by ``D`` is read); ``ap_invoices`` and ``ap_payments`` are silver AP, whole tables (as
    of ``D``, records outside ``[D - LOOKBACK_DAYS, D]`` are ignored). No matches are returned.
    One plan for every date: the outputs' ``business_date`` is the as-of date, and the rows of
    ``D`` are exactly those of ``reconcile_contract_terms_ap`` as of ``D``. ``materialize`` is
    accepted for the close's recon signature and not needed.
    """
    # Not materialized here: only the exceptions read it (the matches' empty filter is pruned
    # by the optimizer), and the close materializes those once.
    governed = _governed(ap_invoices, contract_terms, days).join(
        _last_payments(ap_payments, days), [AS_OF, "invoice_id"], "left"
    )
    allowed = F.date_add("invoice_date", F.col("c_days"))
    latest = F.greatest("due_date", "a_paid")
    outside = governed.where(latest > allowed)
    paid = F.when(
        F.col("a_paid").isNotNull(),
        F.concat(F.lit(", paid "), F.col("a_paid").cast("string")),
    ).otherwise(F.lit(""))
    exceptions = outside.select(
        AS_OF,
        *exception_input(
            EXCEPTION_TYPE,
            rule=RULE,
            first_seen_date="a_first_seen",
            amount="amount",
            amount_usd="amount_usd",
            records=F.array("a_record", "c_record"),
            detail=F.concat(
                F.lit("AP invoice "),
                F.col("invoice_id"),
                F.lit(" of "),
                F.col("vendor_name"),
                F.lit(" for "),
                format_amount("amount", "currency"),
                F.lit(" dated "),
                F.col("invoice_date").cast("string"),
                F.lit(" is due "),
                F.coalesce(F.col("due_date").cast("string"), F.lit("(no due date)")),
                paid,
                F.lit(": "),
                F.datediff(latest, "invoice_date").cast("string"),
                F.lit(" days, outside the "),
                F.col("c_days").cast("string"),
                F.lit(" days of its contract "),
                F.col("c_file"),
                F.lit(" ('"),
                F.col("c_terms"),
                F.lit("')"),
            ),
        ),
    ).transform(to_exception_rows(RECON))
    # No matches: the shape only, so carry-forward and the close read it like any recon's.
    matches = (
        governed.where(F.lit(False))
        .select(
            AS_OF,
            *match_input(
                RULE,
                left_records=F.array("a_record"),
                right_records=F.array("c_record"),
                left_amount="amount",
                right_amount="amount",
                amount_usd="amount_usd",
                matched_on=F.col(AS_OF),
            ),
        )
        .transform(to_match_rows(RECON))
    )
    return ReconResult(matches=matches, exceptions=exceptions)
