"""The nightly close of one business date: every reconciliation, composed.

Pure: silver tables in (whole tables; each reconciliation picks its own window), matches and
exceptions out. Matching recons (bank ↔ GL, AP ↔ GL) are computed as of ``D`` and as of ``D - 1``
and ``carry_forward`` reports what closed on ``D``; payroll and policy exceptions are reported on
their date. See docs/RECONCILIATIONS.md.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame

from transforms.recon.ap import ap_control_balances, reconcile_ap_gl
from transforms.recon.carry_forward import carry_forward
from transforms.recon.cash import LOOKBACK_DAYS, reconcile_bank_gl
from transforms.recon.common import EXCEPTION_COLUMNS, MATCH_COLUMNS
from transforms.recon.expense_policy import reconcile_expense_policy
from transforms.recon.payroll import reconcile_payroll_hris


@dataclass(frozen=True)
class CloseInputs:
    """The silver tables the close reads (all dates)."""

    bank: DataFrame
    gl: DataFrame
    ap_invoices: DataFrame
    ap_payments: DataFrame
    payroll: DataFrame
    roster: DataFrame
    expense_lines: DataFrame
    fx_rates: DataFrame


@dataclass(frozen=True)
class CloseResult:
    """One night's matches, exceptions (open and closed today) and AP control balances."""

    matches: DataFrame
    exceptions: DataFrame
    ap_balances: DataFrame


def run_close(inputs: CloseInputs, as_of: date) -> CloseResult:
    """Reconcile everything for business date ``as_of``."""
    yesterday = as_of - timedelta(days=1)
    cash = reconcile_bank_gl(inputs.bank, inputs.gl, as_of)
    cash_before = reconcile_bank_gl(inputs.bank, inputs.gl, yesterday)
    ap = reconcile_ap_gl(inputs.ap_invoices, inputs.ap_payments, inputs.gl, as_of)
    ap_before = reconcile_ap_gl(inputs.ap_invoices, inputs.ap_payments, inputs.gl, yesterday)
    exceptions = [
        carry_forward(cash.exceptions, cash_before.exceptions, cash.matches, as_of, LOOKBACK_DAYS),
        carry_forward(ap.exceptions, ap_before.exceptions, ap.matches, as_of, LOOKBACK_DAYS),
        reconcile_payroll_hris(inputs.payroll, inputs.roster, as_of, inputs.fx_rates),
        reconcile_expense_policy(inputs.expense_lines, as_of),
    ]
    all_exceptions = exceptions[0].select(*EXCEPTION_COLUMNS)
    for more in exceptions[1:]:
        all_exceptions = all_exceptions.unionByName(more.select(*EXCEPTION_COLUMNS))
    matches = cash.matches.select(*MATCH_COLUMNS).unionByName(ap.matches.select(*MATCH_COLUMNS))
    balances = ap_control_balances(inputs.ap_invoices, inputs.ap_payments, inputs.gl, as_of)
    return CloseResult(matches=matches, exceptions=all_exceptions, ap_balances=balances)
