"""Silver suites for every declared source, derived from its contract, plus each source's own.

From the contract: the business key is unique and never null, required columns are never null,
currencies are ISO codes we transact in, and USD amounts exist. Then the identities a controller
would check by hand: journals balance, net pay adds up, rates are positive.
"""

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from expectations.expense_lines import silver_expense_lines_suite
from expectations.gx import expect
from expectations.suite import ERROR, Rule, Suite
from transforms.contracts import (
    EXPENSE_LINES,
    FX_RATES,
    GL_JOURNAL_LINES,
    HRIS_ROSTER,
    PAYROLL_REGISTER,
    VALID_CURRENCIES,
    SourceContract,
)
from transforms.sources import HRIS_STATUSES, NET_PAY_TOLERANCE


def _contract_rules(contract: SourceContract) -> list[Rule]:
    rules = [
        Rule(
            "key_unique",
            ERROR,
            f"One row per {', '.join(contract.key)}: nothing counted twice.",
            expect.ExpectCompoundColumnsToBeUnique(column_list=list(contract.key))
            if len(contract.key) > 1
            else expect.ExpectColumnValuesToBeUnique(column=contract.key[0]),
        )
    ]
    for column in contract.columns:
        if column.required:
            rules.append(
                Rule(
                    f"{column.name}_not_null",
                    ERROR,
                    f"Every row has a {column.name}.",
                    expect.ExpectColumnValuesToNotBeNull(column=column.name),
                )
            )
    if contract.currency_column:
        rules.append(
            Rule(
                "currency_is_iso",
                ERROR,
                "Currencies are ISO 4217 codes the group transacts in.",
                expect.ExpectColumnValuesToBeInSet(
                    column=contract.currency_column, value_set=sorted(VALID_CURRENCIES)
                ),
            )
        )
    for amount in contract.amount_columns:
        rules.append(
            Rule(
                f"{amount}_usd_not_null",
                ERROR,
                f"Every {amount} is converted to USD at the day's rate.",
                expect.ExpectColumnValuesToNotBeNull(column=f"{amount}_usd"),
            )
        )
    return rules


def _journal_net(df: DataFrame) -> DataFrame:
    return df.withColumn(
        "journal_net",
        F.sum(F.col("debit") - F.col("credit")).over(Window.partitionBy("journal_id")),
    )


def _net_gap(df: DataFrame) -> DataFrame:
    return df.withColumn(
        "net_pay_gap", F.abs(F.col("gross") - F.col("taxes") - F.col("deductions") - F.col("net"))
    )


def _rate_lag(df: DataFrame) -> DataFrame:
    return df.withColumn("rate_lag_days", F.datediff("business_date", "rate_date"))


def silver_source_suite(contract: SourceContract, business_date: date) -> Suite:
    """The suite a silver partition of ``contract``'s source must meet."""
    if contract is EXPENSE_LINES:
        # Its rules hold in silver and gold alike: one definition, in expectations/expense_lines.
        return silver_expense_lines_suite(business_date)
    rules = _contract_rules(contract)
    prepare = None
    if contract is GL_JOURNAL_LINES:
        prepare = _journal_net
        rules.append(
            Rule(
                "journals_balance",
                ERROR,
                "Debits equal credits within every journal.",
                expect.ExpectColumnValuesToBeBetween(
                    column="journal_net", min_value=0, max_value=0
                ),
            )
        )
    elif contract is PAYROLL_REGISTER:
        prepare = _net_gap
        rules.append(
            Rule(
                "net_pay_adds_up",
                ERROR,
                "Net pay = gross - taxes - deductions, to the cent.",
                expect.ExpectColumnValuesToBeBetween(
                    column="net_pay_gap", min_value=0, max_value=NET_PAY_TOLERANCE
                ),
            )
        )
    elif contract is FX_RATES:
        prepare = _rate_lag
        rules.append(
            Rule(
                "rate_positive",
                ERROR,
                "Every rate to USD is positive.",
                expect.ExpectColumnValuesToBeBetween(
                    column="rate_to_usd", min_value=0, strict_min=True
                ),
            )
        )
        rules.append(
            Rule(
                "rate_date_is_business_date",
                ERROR,
                "Rates are the business date's.",
                expect.ExpectColumnValuesToBeBetween(
                    column="rate_lag_days", min_value=0, max_value=0
                ),
            )
        )
    elif contract is HRIS_ROSTER:
        rules.append(
            Rule(
                "status_known",
                ERROR,
                f"Status is one of {', '.join(HRIS_STATUSES)}.",
                expect.ExpectColumnValuesToBeInSet(column="status", value_set=list(HRIS_STATUSES)),
            )
        )
    return Suite(
        name=f"silver_{contract.name}",
        key=contract.key,
        rules=tuple(rules),
        prepare=prepare,
        # A journal's net is a window: prepared date by date, its rows come in the order they
        # come alone (the order of offending keys included).
        prepare_per_date=prepare is _journal_net,
    )


def silver_rule_specs(contract: SourceContract) -> list[tuple[str, str, str]]:
    """(name, severity, description) of every rule: the asset checks to declare."""
    return [
        (r.name, r.severity, r.description)
        for r in silver_source_suite(contract, date(2000, 1, 1)).rules
    ]
