"""The nightly close: every reconciliation, composed, for one date or a run's dates.

Pure: silver tables and the published invoice documents and contract terms in (whole tables;
each reconciliation picks its own window), matches and exceptions out, for every date of a run in
one plan. Matching recons (bank ↔ GL, AP ↔ GL, invoice documents ↔ AP, and contract terms ↔ AP,
which has no matches) are computed as of ``D`` and as of ``D - 1`` and ``carry_forward`` reports
what closed on ``D``; payroll and policy exceptions are reported on their date. See
docs/RECONCILIATIONS.md.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import partial, reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.recon.ap import reconcile_ap_gl_dates
from transforms.recon.carry_forward import carry_forward_dates
from transforms.recon.cash import LOOKBACK_DAYS, reconcile_bank_gl_dates
from transforms.recon.common import (
    EXCEPTION_COLUMNS,
    MATCH_COLUMNS,
    Runner,
    identity,
    in_order,
)
from transforms.recon.contract_terms import reconcile_contract_terms_ap_dates
from transforms.recon.documents import reconcile_documents_ap_dates
from transforms.recon.expense_policy import (
    DUPLICATE_LOOKBACK_DAYS,
    reconcile_expense_policy_dates,
)
from transforms.recon.payroll import reconcile_payroll_hris_dates
from transforms.reference_data import GL_AP_CONTROL_ACCOUNT, GL_CASH_ACCOUNTS


@dataclass(frozen=True)
class CloseInputs:
    """The tables the close reads (all dates): silver, gold.invoice_documents
    (``transforms.recon.documents.DOCUMENT_COLUMNS``) and gold.contract_terms
    (``transforms.recon.contract_terms.CONTRACT_COLUMNS``)."""

    bank: DataFrame
    gl: DataFrame
    ap_invoices: DataFrame
    ap_payments: DataFrame
    payroll: DataFrame
    roster: DataFrame
    expense_lines: DataFrame
    fx_rates: DataFrame
    invoice_documents: DataFrame
    contract_terms: DataFrame


@dataclass(frozen=True)
class CloseResult:
    """The closes' matches and exceptions (open, and closed that night), by ``business_date``."""

    matches: DataFrame
    exceptions: DataFrame


RECONCILED_ACCOUNTS = sorted({*GL_CASH_ACCOUNTS, GL_AP_CONTROL_ACCOUNT})
# How far back each input must reach for the close of one date (business dates before it);
# None: every date up to it.
INPUT_LOOKBACK_DAYS: dict[str, int | None] = {
    "bank": LOOKBACK_DAYS + 1,  # the D - 1 view reaches one day further
    "gl": LOOKBACK_DAYS + 1,
    "ap_invoices": LOOKBACK_DAYS + 1,
    "ap_payments": LOOKBACK_DAYS + 1,
    "payroll": 0,
    "roster": 0,
    "expense_lines": DUPLICATE_LOOKBACK_DAYS,
    # The documents' totals are priced at the rate of the date they landed.
    "fx_rates": LOOKBACK_DAYS + 1,
    "invoice_documents": LOOKBACK_DAYS + 1,
    # A contract's terms stand however long ago it landed.
    "contract_terms": None,
}


def windowed(inputs: CloseInputs, as_of: date, first_day: date | None = None) -> CloseInputs:
    """What the close of ``as_of`` reads: its dates (``INPUT_LOOKBACK_DAYS``) and GL accounts.

    With ``first_day``, what the closes of every date from ``first_day`` to ``as_of`` read (each
    reconciliation picks its own dates from it).
    """

    def cut(name: str) -> DataFrame:
        lookback = INPUT_LOOKBACK_DAYS[name]
        df = getattr(inputs, name).where(F.col("business_date") <= F.lit(as_of))
        if lookback is not None:
            first = (first_day or as_of) - timedelta(days=lookback)
            df = df.where(F.col("business_date") >= F.lit(first))
        if name == "gl":  # the reconciliations read cash and AP control lines only
            df = df.where(F.col("account").isin(*RECONCILED_ACCOUNTS))
        return df

    return CloseInputs(**{name: cut(name) for name in INPUT_LOOKBACK_DAYS})


# The inputs one reconciliation step reads once (its first result is materialized): materializing
# them as well would only add a Spark job.
READ_ONCE = frozenset({"bank", "invoice_documents", "contract_terms"})


def materialized(
    inputs: CloseInputs,
    materialize: Callable[[DataFrame], DataFrame] = identity,
    run: Runner = in_order,
) -> CloseInputs:
    """``inputs`` with ``materialize`` applied to those the close reads more than once (all but
    ``READ_ONCE``), so no table is scanned again by each reconciliation or rule that reads it.
    ``run`` runs the materializations (independent of each other)."""
    names = [name for name in INPUT_LOOKBACK_DAYS if name not in READ_ONCE]
    done = run([partial(materialize, getattr(inputs, name)) for name in names])
    return replace(inputs, **dict(zip(names, done, strict=True)))


def run_close(
    inputs: CloseInputs,
    as_of: date,
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> CloseResult:
    """Reconcile everything for business date ``as_of``: ``run_close_dates`` for one date."""
    return run_close_dates(inputs, [as_of], materialize)


def run_close_dates(
    inputs: CloseInputs,
    days: list[date],
    materialize: Callable[[DataFrame], DataFrame] = identity,
    run: Runner = in_order,
) -> CloseResult:
    """The closes of every date of ``days`` in one plan (``business_date`` is the as-of date).

    Set-based: each reconciliation runs once over the run's dates, the as-of date a column of
    every key (``transforms.as_of.as_of_dates``), so the plan and the number of Spark jobs
    do not grow with the number of dates, and the close of ``D`` is the same rows whether it is
    closed alone or inside a range. The matching recons also run as of each ``D - 1`` for the
    carry-forward (a date of the run and the day before it are computed once).

    ``materialize`` is applied to the reconciliations' results before they are combined (the
    assets pass ``DataFrame.localCheckpoint``; the matching recons' matches and exceptions once
    each for all four): each match is computed once, and the combined plans stay small, however
    many times the outputs are read. ``run`` runs the reconciliations, which are independent of
    each other (the assets run them in threads: their jobs and their planning overlap).
    """
    closes = sorted(set(days))
    recon_dates = sorted({*closes, *(d - timedelta(days=1) for d in closes)})

    *matching, payroll, policy = run(
        [
            partial(reconcile_bank_gl_dates, inputs.bank, inputs.gl, recon_dates, materialize),
            partial(
                reconcile_ap_gl_dates,
                inputs.ap_invoices,
                inputs.ap_payments,
                inputs.gl,
                recon_dates,
                materialize,
            ),
            partial(
                reconcile_documents_ap_dates,
                inputs.invoice_documents,
                inputs.ap_invoices,
                inputs.fx_rates,
                recon_dates,
                materialize,
            ),
            partial(
                reconcile_contract_terms_ap_dates,
                inputs.contract_terms,
                inputs.ap_invoices,
                inputs.ap_payments,
                recon_dates,
                materialize,
            ),
            lambda: materialize(
                reconcile_payroll_hris_dates(inputs.payroll, inputs.roster, closes, inputs.fx_rates)
            ),
            lambda: materialize(reconcile_expense_policy_dates(inputs.expense_lines, closes)),
        ]
    )
    # The matching recons' results, each kind materialized once for all of them (one job, not
    # one per recon), and carried forward together (``carry_forward_dates`` keeps each
    # reconciliation's exceptions to its own matches).
    matches, open_exceptions = run(
        [
            lambda: materialize(
                reduce(DataFrame.unionByName, [r.matches.select(*MATCH_COLUMNS) for r in matching])
            ),
            lambda: materialize(
                reduce(
                    DataFrame.unionByName,
                    [r.exceptions.select(*EXCEPTION_COLUMNS) for r in matching],
                )
            ),
        ]
    )
    in_run = F.col("business_date").isin([F.lit(d) for d in closes])
    exceptions = [
        carry_forward_dates(open_exceptions, matches, closes, LOOKBACK_DAYS),
        payroll,
        policy,
    ]
    return CloseResult(
        matches=matches.where(in_run),
        exceptions=reduce(
            DataFrame.unionByName, [df.select(*EXCEPTION_COLUMNS) for df in exceptions]
        ),
    )
