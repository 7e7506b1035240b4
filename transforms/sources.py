"""The silver rules of each source beyond its contract: one place to read them all.

``conform.conform_rules`` already rejects malformed lines, missing required values, values not of
their declared type and unknown currencies; ``classify_source`` adds the rules below and the
duplicate-key check; ``silver_source`` shapes the accepted rows. Every source goes this way,
expense lines included.
"""

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms import contracts as c
from transforms.conform import (
    blank,
    classify_rows,
    message,
    reject_unbalanced_journals,
    silver_rows,
    typed,
)
from transforms.quarantine import Rule
from transforms.reference_data import BANK_ACCOUNTS

HRIS_STATUSES = ("active", "terminated", "leave")
NET_PAY_TOLERANCE = 0.01


@dataclass(frozen=True)
class SourceRules:
    """A source's own rules: row rules, set rules, derived columns. A rule that depends on the
    date reads the row's ``business_date``, so one call classifies any number of dates."""

    rules: Callable[[], list[Rule]] = list
    after_dedupe: tuple[Callable[[DataFrame], DataFrame], ...] = ()
    # Built when called (a Column needs a running Spark): name -> expression over silver columns.
    derived: Callable[[], dict[str, Column]] = dict


def _t(name: str) -> Column:
    return F.col(typed(name))


def _gl_rules() -> list[Rule]:
    debit, credit = _t("debit"), _t("credit")
    return [
        Rule(
            "AMOUNT_OUT_OF_RANGE",
            message(
                (debit < 0) | (credit < 0) | ((debit != 0) & (credit != 0)),
                "a line carries one non-negative debit or credit, not: debit ",
                F.col("debit"),
                ", credit ",
                F.col("credit"),
            ),
        )
    ]


def _amount_not_zero() -> list[Rule]:
    return [Rule("AMOUNT_OUT_OF_RANGE", message(_t("amount") == 0, "amount is zero"))]


def _payment_rules() -> list[Rule]:
    return [
        Rule(
            "AMOUNT_OUT_OF_RANGE",
            message(_t("amount") <= 0, "a payment amount must be positive: ", F.col("amount")),
        )
    ]


def _bank_rules() -> list[Rule]:
    return [
        Rule(
            "UNKNOWN_BANK_ACCOUNT",
            message(
                ~blank("bank_account") & ~_t("bank_account").isin(*sorted(BANK_ACCOUNTS)),
                "bank account not in the reference data: ",
                F.col("bank_account"),
            ),
        )
    ]


def _fx_rules() -> list[Rule]:
    currency = F.upper(_t("currency"))
    return [
        Rule(
            "INVALID_CURRENCY",
            message(
                ~currency.isin(*sorted(c.VALID_CURRENCIES)),
                "not an accepted ISO 4217 code: ",
                F.col("currency"),
            ),
        ),
        Rule(
            "INVALID_RATE",
            message(_t("rate_to_usd") <= 0, "rate must be positive: ", F.col("rate_to_usd")),
        ),
        Rule(
            "DATE_OUT_OF_RANGE",
            message(
                _t("rate_date") != F.col("business_date"),
                "rate_date is not the business date ",
                F.col("business_date").cast("string"),
                ": ",
                F.col("rate_date"),
            ),
        ),
    ]


def _expense_rules() -> list[Rule]:
    amount, spent, day = _t("amount"), _t("transaction_date"), F.col("business_date")
    oldest = F.date_sub(day, c.MAX_EXPENSE_AGE_DAYS)
    return [
        Rule(
            "AMOUNT_OUT_OF_RANGE",
            message(
                (amount <= 0) | (amount > c.MAX_EXPENSE_AMOUNT),
                f"amount outside (0, {c.MAX_EXPENSE_AMOUNT}]: ",
                F.col("amount"),
            ),
        ),
        Rule(
            "DATE_OUT_OF_RANGE",
            message(
                (spent > day) | (spent < oldest),
                "transaction_date outside the claim window: ",
                F.col("transaction_date"),
            ),
        ),
        Rule(
            "INVALID_LINE_ID",
            message(_t("line_id") < 1, "line_id is not a positive integer: ", F.col("line_id")),
        ),
    ]


def _hris_rules() -> list[Rule]:
    return [
        Rule(
            "INVALID_STATUS",
            message(
                ~F.lower(_t("status")).isin(*HRIS_STATUSES),
                f"status is not one of {', '.join(HRIS_STATUSES)}: ",
                F.col("status"),
            ),
        )
    ]


def _payroll_rules() -> list[Rule]:
    gap = F.abs(_t("gross") - _t("taxes") - _t("deductions") - _t("net"))
    return [
        Rule(
            "INVALID_PERIOD",
            message(
                _t("pay_period_end") < _t("pay_period_start"),
                "pay period ends before it starts: ",
                F.col("pay_period_start"),
                "..",
                F.col("pay_period_end"),
            ),
        ),
        Rule(
            "NET_MISMATCH",
            message(
                gap > NET_PAY_TOLERANCE,
                "net is not gross - taxes - deductions: ",
                F.col("gross"),
                " - ",
                F.col("taxes"),
                " - ",
                F.col("deductions"),
                " != ",
                F.col("net"),
            ),
        ),
    ]


SOURCE_RULES: dict[str, SourceRules] = {
    c.GL_JOURNAL_LINES.name: SourceRules(
        rules=_gl_rules,
        after_dedupe=(reject_unbalanced_journals,),
        derived=lambda: {
            "signed_amount": (F.col("debit") - F.col("credit")).cast("decimal(18,2)"),
            "signed_amount_usd": (F.col("debit_usd") - F.col("credit_usd")).cast("decimal(18,2)"),
        },
    ),
    c.AP_INVOICES.name: SourceRules(rules=_amount_not_zero),
    c.AP_PAYMENTS.name: SourceRules(rules=_payment_rules),
    c.BANK_STATEMENT_LINES.name: SourceRules(rules=_bank_rules),
    c.FX_RATES.name: SourceRules(
        rules=_fx_rules, derived=lambda: {"currency": F.upper("currency")}
    ),
    c.HRIS_ROSTER.name: SourceRules(
        rules=_hris_rules, derived=lambda: {"status": F.lower("status")}
    ),
    c.PAYROLL_REGISTER.name: SourceRules(rules=_payroll_rules),
    c.HR_CASES.name: SourceRules(),
    c.EXPENSE_LINES.name: SourceRules(rules=_expense_rules),
}


def classify_source(
    contract: c.SourceContract,
    rates: DataFrame | None = None,
    repeats: DataFrame | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """Type and check a source's bronze rows, of one date or many; each rejected row gets its
    reason.

    ``rates`` are ``conform.rates_on`` the rows' dates; ``repeats`` names the files that repeat
    an earlier delivery (``DUPLICATE_FILE``), by date.
    """
    own = SOURCE_RULES[contract.name]
    return classify_rows(contract, rates, own.rules(), own.after_dedupe, repeats)


def silver_source(contract: c.SourceContract) -> Callable[[DataFrame], DataFrame]:
    """Accepted rows of a classified source in its silver shape."""
    return silver_rows(contract, SOURCE_RULES[contract.name].derived())
