"""The nightly close of one business date: every reconciliation, composed.

Pure: silver tables and the published invoice documents and contract terms in (whole tables;
each reconciliation picks its own window), matches and exceptions out. Matching recons (bank ↔ GL,
AP ↔ GL, invoice documents ↔ AP, and contract terms ↔ AP, which has no matches) are computed as
of ``D`` and as of ``D - 1`` and ``carry_forward`` reports what closed on ``D``; payroll and
policy exceptions are reported on their date. See docs/RECONCILIATIONS.md.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.recon.ap import reconcile_ap_gl
from transforms.recon.carry_forward import carry_forward
from transforms.recon.cash import LOOKBACK_DAYS, reconcile_bank_gl
from transforms.recon.common import EXCEPTION_COLUMNS, MATCH_COLUMNS, ReconResult, identity
from transforms.recon.contract_terms import reconcile_contract_terms_ap
from transforms.recon.documents import reconcile_documents_ap
from transforms.recon.expense_policy import DUPLICATE_LOOKBACK_DAYS, reconcile_expense_policy
from transforms.recon.payroll import reconcile_payroll_hris
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
    """One night's matches and exceptions (open, and closed today)."""

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


def run_close(
    inputs: CloseInputs,
    as_of: date,
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> CloseResult:
    """Reconcile everything for business date ``as_of``.

    ``materialize`` is applied to each reconciliation's result before they are combined (the
    assets pass ``DataFrame.localCheckpoint``): each match is computed once, and the combined plans
    stay small, however many times the outputs are read.
    """
    return run_close_dates(inputs, [as_of], materialize)[as_of]


def run_close_dates(
    inputs: CloseInputs,
    days: list[date],
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> dict[date, CloseResult]:
    """``run_close`` for each of ``days``, computing each matching reconciliation once per date.

    The close of ``D`` compares the matching recons as of ``D`` with the same recons as of
    ``D - 1``; when ``D - 1`` is also closed here, its results are reused instead of recomputed
    (the recons ignore records landed after their as-of date, so both are the same).
    """
    matching: dict[date, tuple[ReconResult, ...]] = {}

    def done(result: ReconResult) -> ReconResult:
        return ReconResult(materialize(result.matches), materialize(result.exceptions))

    def recons(as_of: date) -> tuple[ReconResult, ...]:
        if as_of not in matching:
            matching[as_of] = (
                done(reconcile_bank_gl(inputs.bank, inputs.gl, as_of, materialize)),
                done(
                    reconcile_ap_gl(
                        inputs.ap_invoices, inputs.ap_payments, inputs.gl, as_of, materialize
                    )
                ),
                done(
                    reconcile_documents_ap(
                        inputs.invoice_documents,
                        inputs.ap_invoices,
                        inputs.fx_rates,
                        as_of,
                        materialize,
                    )
                ),
                done(
                    reconcile_contract_terms_ap(
                        inputs.contract_terms,
                        inputs.ap_invoices,
                        inputs.ap_payments,
                        as_of,
                        materialize,
                    )
                ),
            )
        return matching[as_of]

    results = {}
    for as_of in sorted(days):
        results[as_of] = _close_one(inputs, as_of, recons, materialize)
    return results


def _close_one(
    inputs: CloseInputs,
    as_of: date,
    recons: Callable[[date], tuple[ReconResult, ...]],
    materialize: Callable[[DataFrame], DataFrame],
) -> CloseResult:
    matching = list(zip(recons(as_of), recons(as_of - timedelta(days=1)), strict=True))
    exceptions = [
        *(
            carry_forward(today.exceptions, before.exceptions, today.matches, as_of, LOOKBACK_DAYS)
            for today, before in matching
        ),
        materialize(reconcile_payroll_hris(inputs.payroll, inputs.roster, as_of, inputs.fx_rates)),
        materialize(reconcile_expense_policy(inputs.expense_lines, as_of)),
    ]
    all_exceptions = exceptions[0].select(*EXCEPTION_COLUMNS)
    for more in exceptions[1:]:
        all_exceptions = all_exceptions.unionByName(more.select(*EXCEPTION_COLUMNS))
    matches = matching[0][0].matches.select(*MATCH_COLUMNS)
    for today, _ in matching[1:]:
        matches = matches.unionByName(today.matches.select(*MATCH_COLUMNS))
    return CloseResult(matches=matches, exceptions=all_exceptions)
