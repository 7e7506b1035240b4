"""Payroll register ↔ HRIS roster (``payroll_hris``): who was paid, who should have been, how much.

Runs on a pay date: the payroll register rows of that business date against the HRIS snapshot of
the same date; ``reconcile_payroll_hris_dates`` runs every date of a run in one plan, the as-of
date in column ``AS_OF`` (a row only ever meets rows of its own date). See docs/RECONCILIATIONS.md
for the rules. Salaries and names never reach ``detail`` (personal data): it names employees by id
and quotes amounts of pay only.

Choices the spec leaves open:

- ``PAY_VARIANCE`` is only computable when the payment and the roster salary share a currency and
  the salary is known; otherwise the payment is skipped for that rule (no exception of its own).
- Each payment is compared with the expected gross on its own, so the extra copies of a
  ``DUPLICATE_PAYMENT`` raise ``PAY_VARIANCE`` only when that copy itself is off.
- ``ACTIVE_NOT_PAID`` is evaluated for every pay period present that day; an employee missing from
  several periods gets one exception (amount = expected gross × periods missed), so the exception id
  stays unique. An active employee with no ``hire_date`` is not expected to be paid (spec:
  ``hire_date ≤ pay_period_end``).
- ``ACTIVE_NOT_PAID`` has no payment to take a rate from: ``amount_usd`` uses the as-of date's rate
  of the roster currency from ``fx_rates`` when given, else the rate the day's payments carry for
  that currency (USD is 1); null when neither knows it.
- ``DUPLICATE_PAYMENT`` looks at one pay date's register (the spec's unit of a run).
"""

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates
from transforms.recon.common import EXCEPTION_COLUMNS, record_id, to_exception_rows

RECON = "payroll_hris"
PAY_PERIODS_PER_YEAR = 24
PAY_VARIANCE_TOLERANCE = Decimal("0.25")

PAYMENT_RECORD = "_payment_record"
ROSTER_RECORD = "_roster_record"


def _money(c: Column | str) -> Column:
    """``4,512.00``: an amount as analysts read it."""
    return F.format_number(F.col(c) if isinstance(c, str) else c, 2)


def _period(prefix: str = "") -> Column:
    return F.concat(
        F.col(f"{prefix}pay_period_start").cast("string"),
        F.lit(".."),
        F.col(f"{prefix}pay_period_end").cast("string"),
    )


def _paid_text() -> Column:
    """``EMP-0042 paid 4,512.00 GBP for 2026-11-01..2026-11-15 (PAY-1)``."""
    return F.concat(
        F.col("employee_id"),
        F.lit(" paid "),
        _money("gross"),
        F.lit(" "),
        F.col("currency"),
        F.lit(" for "),
        _period(),
        F.lit(" ("),
        F.col("payment_id"),
        F.lit(")"),
    )


def _usd(amount: Column, rate: Column) -> Column:
    return F.round(amount * rate, 2).cast("decimal(18,2)")


def as_open_exceptions(recon: str, as_of: date | None = None) -> Callable[[DataFrame], DataFrame]:
    """Exceptions reported on their as-of date only: first seen that night, rule = exception type.

    Expects ``exception_type, legal_entity, amount, currency, amount_usd, records, detail``, and
    ``AS_OF`` (the as-of date of each row) unless ``as_of`` is given.
    """
    night = F.col(AS_OF) if as_of is None else F.lit(as_of)

    def transform(df: DataFrame) -> DataFrame:
        return (
            df.withColumn("first_seen_date", night)
            .withColumn("rule", F.col("exception_type"))
            .transform(to_exception_rows(recon, as_of))
            .select(*EXCEPTION_COLUMNS)
        )

    return transform


def _payments_of(payroll: DataFrame, days: list[date]) -> DataFrame:
    """Each date's payroll register, ``AS_OF`` = its business date."""
    return as_of_dates(payroll, days, 0).withColumn(
        PAYMENT_RECORD, record_id("payroll_register", "payment_id")
    )


def _roster_of(roster: DataFrame, days: list[date]) -> DataFrame:
    """Each date's HRIS snapshot, ``AS_OF`` = its business date."""
    return as_of_dates(roster, days, 0).select(
        AS_OF,
        "employee_id",
        F.col("legal_entity").alias("r_legal_entity"),
        F.lower(F.col("status")).alias("r_status"),
        F.col("hire_date").alias("r_hire_date"),
        F.col("termination_date").alias("r_termination_date"),
        F.col("annual_salary").alias("r_annual_salary"),
        F.col("currency").alias("r_currency"),
        record_id("hris_roster", "employee_id").alias(ROSTER_RECORD),
    )


def _expected_gross(salary: Column) -> Column:
    return F.round(salary / F.lit(PAY_PERIODS_PER_YEAR), 2).cast("decimal(18,2)")


# The rules: each reads rows carrying their as-of date (``AS_OF``), matches rows of the same date
# only, and keeps ``AS_OF`` for ``as_open_exceptions``.


def paid_unknown_employee(payments: DataFrame, roster: DataFrame) -> DataFrame:
    """Payments to an employee id absent from the day's roster (ghost employee)."""
    return payments.join(roster, [AS_OF, "employee_id"], "left_anti").select(
        AS_OF,
        F.lit("PAID_UNKNOWN_EMPLOYEE").alias("exception_type"),
        "legal_entity",
        F.col("gross").alias("amount"),
        "currency",
        F.col("gross_usd").alias("amount_usd"),
        F.array(PAYMENT_RECORD).alias("records"),
        F.concat(_paid_text(), F.lit(" but is not in the HRIS roster")).alias("detail"),
    )


def paid_not_active(paid: DataFrame) -> DataFrame:
    """Payments to employees terminated before the pay period started."""
    return paid.where(
        (F.col("r_status") == "terminated")
        & (F.col("r_termination_date") < F.col("pay_period_start"))
    ).select(
        AS_OF,
        F.lit("PAID_NOT_ACTIVE").alias("exception_type"),
        "legal_entity",
        F.col("gross").alias("amount"),
        "currency",
        F.col("gross_usd").alias("amount_usd"),
        F.array(PAYMENT_RECORD).alias("records"),
        F.concat(
            _paid_text(),
            F.lit(" but terminated on "),
            F.col("r_termination_date").cast("string"),
        ).alias("detail"),
    )


def pay_variance(paid: DataFrame) -> DataFrame:
    """Payments whose gross is off the expected semi-monthly pay by more than the tolerance.

    Compared exactly (``|gross × 24 − salary| > tolerance × salary``); only when the payment and
    the salary share a currency.
    """
    salary = F.col("r_annual_salary")
    off_by = F.abs(F.col("gross") * F.lit(PAY_PERIODS_PER_YEAR) - salary)
    expected = _expected_gross(salary)
    difference = (F.col("gross") - expected).cast("decimal(18,2)")
    percent = F.format_number(
        F.abs(F.try_divide(F.col("gross") * F.lit(PAY_PERIODS_PER_YEAR), salary) - F.lit(1)) * 100,
        1,
    )
    return paid.where(
        salary.isNotNull()
        & (salary > 0)
        & (F.col("currency") == F.col("r_currency"))
        & (off_by > F.lit(PAY_VARIANCE_TOLERANCE) * salary)
    ).select(
        AS_OF,
        F.lit("PAY_VARIANCE").alias("exception_type"),
        "legal_entity",
        difference.alias("amount"),
        "currency",
        _usd(difference, F.col("fx_rate_to_usd")).alias("amount_usd"),
        F.array(PAYMENT_RECORD).alias("records"),
        F.concat(
            _paid_text(),
            F.lit(", "),
            percent,
            F.when(difference > 0, F.lit("% above")).otherwise(F.lit("% below")),
            F.lit(f" the expected gross (tolerance {int(PAY_VARIANCE_TOLERANCE * 100)}%)"),
        ).alias("detail"),
    )


def duplicate_payment(payments: DataFrame) -> DataFrame:
    """Two or more payments for one (employee, pay_period_start): one exception with all of them.

    Amount = gross of every payment but the first by payment id.
    """
    key = [AS_OF, "employee_id", "pay_period_start"]
    ordered = Window.partitionBy(*key).orderBy("payment_id")
    ranked = payments.withColumn("_rank", F.row_number().over(ordered))
    extra_gross = F.sum(F.when(F.col("_rank") > 1, F.col("gross")))
    extra_usd = F.sum(F.when(F.col("_rank") > 1, F.col("gross_usd")))
    first = F.min_by(F.struct("legal_entity", "currency", "pay_period_end"), F.col("_rank"))
    return (
        ranked.groupBy(*key)
        .agg(
            F.count(F.lit(1)).alias("_copies"),
            first.alias("_first"),
            extra_gross.alias("amount"),
            extra_usd.alias("amount_usd"),
            F.array_sort(F.collect_list(PAYMENT_RECORD)).alias("records"),
            F.array_sort(F.collect_list("payment_id")).alias("_payment_ids"),
        )
        .where(F.col("_copies") > 1)
        .select(
            AS_OF,
            F.lit("DUPLICATE_PAYMENT").alias("exception_type"),
            F.col("_first.legal_entity").alias("legal_entity"),
            "amount",
            F.col("_first.currency").alias("currency"),
            "amount_usd",
            "records",
            F.concat(
                F.col("employee_id"),
                F.lit(" paid "),
                F.col("_copies").cast("string"),
                F.lit(" times for "),
                F.col("pay_period_start").cast("string"),
                F.lit(".."),
                F.col("_first.pay_period_end").cast("string"),
                F.lit(" ("),
                F.concat_ws(", ", "_payment_ids"),
                F.lit("): "),
                _money("amount"),
                F.lit(" "),
                F.col("_first.currency"),
                F.lit(" paid more than once"),
            ).alias("detail"),
        )
    )


def _day_rates(payments: DataFrame, fx_rates: DataFrame | None, days: list[date]) -> DataFrame:
    """One USD rate per as-of date and currency: the rate dated that day in ``fx_rates`` first,
    else the payments'."""
    from_payments = payments.groupBy(AS_OF, "currency").agg(
        F.max("fx_rate_to_usd").alias("_payment_rate")
    )
    if fx_rates is None:
        return from_payments.withColumnRenamed("_payment_rate", "_rate")
    from_table = (
        as_of_dates(fx_rates, days, 0, column="rate_date")
        .groupBy(AS_OF, "currency")
        .agg(F.max("rate_to_usd").alias("_table_rate"))
    )
    return from_table.join(from_payments, [AS_OF, "currency"], "full").select(
        AS_OF, "currency", F.coalesce("_table_rate", "_payment_rate").alias("_rate")
    )


def active_not_paid(payments: DataFrame, roster: DataFrame, rates: DataFrame) -> DataFrame:
    """Active employees hired by a period's end with no payment for that period of the run."""
    periods = payments.select(AS_OF, "pay_period_start", "pay_period_end").distinct()
    paid = payments.select(AS_OF, "employee_id", "pay_period_start", "pay_period_end").distinct()
    expected_rows = (
        roster.where(F.col("r_status") == "active")
        .join(periods, AS_OF)
        .where(F.col("r_hire_date") <= F.col("pay_period_end"))
        .join(paid, [AS_OF, "employee_id", "pay_period_start", "pay_period_end"], "left_anti")
    )
    missed = expected_rows.groupBy(
        AS_OF, "employee_id", "r_legal_entity", "r_currency", "r_annual_salary", ROSTER_RECORD
    ).agg(
        F.count(F.lit(1)).alias("_periods"),
        F.array_sort(F.collect_list(_period())).alias("_missed"),
    )
    amount = (_expected_gross(F.col("r_annual_salary")) * F.col("_periods")).cast("decimal(18,2)")
    usd_rate = F.coalesce(F.col("_rate"), F.when(F.col("r_currency") == "USD", F.lit(Decimal("1"))))
    return missed.join(
        F.broadcast(rates.withColumnRenamed("currency", "r_currency")),
        [AS_OF, "r_currency"],
        "left",
    ).select(
        AS_OF,
        F.lit("ACTIVE_NOT_PAID").alias("exception_type"),
        F.col("r_legal_entity").alias("legal_entity"),
        amount.alias("amount"),
        F.col("r_currency").alias("currency"),
        _usd(amount, usd_rate).alias("amount_usd"),
        F.array(ROSTER_RECORD).alias("records"),
        F.concat(
            F.col("employee_id"),
            F.lit(" is active in "),
            F.col("r_legal_entity"),
            F.lit(" but has no payment for "),
            F.concat_ws(", ", "_missed"),
        ).alias("detail"),
    )


def reconcile_payroll_hris(
    payroll: DataFrame,
    roster: DataFrame,
    as_of: date,
    fx_rates: DataFrame | None = None,
) -> DataFrame:
    """Open ``payroll_hris`` exceptions of ``as_of`` (empty when no payroll landed that day).

    ``reconcile_payroll_hris_dates`` for the one date ``as_of``.
    """
    return reconcile_payroll_hris_dates(payroll, roster, [as_of], fx_rates)


def reconcile_payroll_hris_dates(
    payroll: DataFrame,
    roster: DataFrame,
    days: list[date],
    fx_rates: DataFrame | None = None,
) -> DataFrame:
    """Open ``payroll_hris`` exceptions of each date of ``days`` (``business_date`` = that date;
    none for a date when no payroll landed that day).

    ``payroll`` and ``roster`` are the whole silver tables: the close of ``D`` reads the register
    and the roster snapshot of ``D`` only. ``fx_rates`` (silver, optional) prices
    ``ACTIVE_NOT_PAID`` at the rate dated ``D`` when no payment of the day carries the roster
    currency's rate.
    """
    payments = _payments_of(payroll, days)
    day_roster = _roster_of(roster, days)
    paid = payments.join(day_roster, [AS_OF, "employee_id"], "inner")
    found = (
        paid_unknown_employee(payments, day_roster)
        .unionByName(paid_not_active(paid))
        .unionByName(active_not_paid(payments, day_roster, _day_rates(payments, fx_rates, days)))
        .unionByName(pay_variance(paid))
        .unionByName(duplicate_payment(payments))
    )
    return found.transform(as_open_exceptions(RECON))
