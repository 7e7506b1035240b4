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

from transforms.contracts import AP_INVOICES, AP_PAYMENTS
from transforms.recon.common import (
    FIRST_SEEN_COLUMN,
    ReconResult,
    exception_input,
    format_amount,
    identity,
    in_window,
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


def _contract_vendors(contracts: DataFrame, as_of: date) -> DataFrame:
    """One row per (contract landed by ``as_of`` with terms in days, party name)."""
    return (
        contracts.where(
            (F.col("business_date") <= F.lit(as_of)) & F.col("payment_days").isNotNull()
        )
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


def _last_payments(payments: DataFrame, as_of: date) -> DataFrame:
    """Each invoice's latest payment date among the payments landed in the window."""
    return (
        in_window(payments, as_of, LOOKBACK_DAYS)
        .transform(latest_rows(AP_PAYMENTS.key))
        .groupBy("invoice_id")
        .agg(F.max("payment_date").alias("a_paid"))
    )


def _governed(invoices: DataFrame, contracts: DataFrame, as_of: date) -> DataFrame:
    """The window's AP invoices, each with the contract that governs it (none: dropped)."""
    ap = (
        in_window(invoices, as_of, LOOKBACK_DAYS)
        .transform(latest_rows(AP_INVOICES.key))
        .select(
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
    agree = (
        F.col("a_vendor").contains(F.col("c_vendor"))
        | F.col("c_vendor").contains(F.col("a_vendor"))
    ) & (F.col("c_effective").isNull() | (F.col("c_effective") <= F.col("invoice_date")))
    latest = Window.partitionBy("a_record").orderBy(
        F.col("c_landed").desc(), F.col("c_file").desc()
    )
    return (
        ap.join(_contract_vendors(contracts, as_of), agree)
        .withColumn("_n", F.row_number().over(latest))
        .where(F.col("_n") == 1)
        .drop("_n")
    )


def reconcile_contract_terms_ap(
    contracts: DataFrame,
    invoices: DataFrame,
    payments: DataFrame,
    as_of: date,
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """AP invoices whose due or paid date falls outside their vendor's contract terms.

    ``contracts`` holds ``CONTRACT_COLUMNS`` of gold.contract_terms (every date landed by
    ``as_of`` is read); ``invoices`` and ``payments`` are silver AP, whole tables (records
    outside ``[as_of - LOOKBACK_DAYS, as_of]`` are ignored). No matches are returned.
    ``materialize`` is accepted for the close's recon signature and not needed.
    """
    # Not materialized here: only the exceptions read it (the matches' empty filter is pruned
    # by the optimizer), and the close materializes those once.
    governed = _governed(invoices, contracts, as_of).join(
        _last_payments(payments, as_of), "invoice_id", "left"
    )
    allowed = F.date_add("invoice_date", F.col("c_days"))
    latest = F.greatest("due_date", "a_paid")
    outside = governed.where(latest > allowed)
    paid = F.when(
        F.col("a_paid").isNotNull(),
        F.concat(F.lit(", paid "), F.col("a_paid").cast("string")),
    ).otherwise(F.lit(""))
    exceptions = outside.select(
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
        )
    ).transform(to_exception_rows(RECON, as_of))
    # No matches: the shape only, so carry-forward and the close read it like any recon's.
    matches = (
        governed.where(F.lit(False))
        .select(
            *match_input(
                RULE,
                left_records=F.array("a_record"),
                right_records=F.array("c_record"),
                left_amount="amount",
                right_amount="amount",
                amount_usd="amount_usd",
                matched_on=F.lit(as_of),
            )
        )
        .transform(to_match_rows(RECON, as_of))
    )
    return ReconResult(matches=matches, exceptions=exceptions)
