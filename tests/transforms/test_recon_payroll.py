"""Payroll ↔ HRIS: each exception type, its near misses, and the output shape, on tiny frames."""

from datetime import date
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from transforms.frames import local_frame
from transforms.recon.common import EXCEPTION_COLUMNS, group_id
from transforms.recon.payroll import reconcile_payroll_hris, reconcile_payroll_hris_dates

PAY_DATE = date(2026, 11, 13)
START, END = date(2026, 11, 1), date(2026, 11, 15)

PAYROLL_SCHEMA = (
    "payment_id string, pay_period_start date, pay_period_end date, employee_id string, "
    "legal_entity string, gross decimal(18,2), taxes decimal(18,2), deductions decimal(18,2), "
    "net decimal(18,2), currency string, pay_date date, business_date date, "
    "fx_rate_to_usd decimal(18,8), gross_usd decimal(18,2), net_usd decimal(18,2)"
)
ROSTER_SCHEMA = (
    "employee_id string, name string, email string, legal_entity string, department string, "
    "cost_centre string, title string, location string, hire_date date, termination_date date, "
    "status string, manager_id string, annual_salary decimal(18,2), currency string, "
    "business_date date"
)
RATES = {"USD": Decimal("1"), "GBP": Decimal("1.25")}


def payment(payment_id: str, employee_id: str = "EMP-1", **change) -> dict:
    """A payment of exactly the expected gross (48,000 / 24 = 2,000.00 USD) on the pay date."""
    row = {
        "payment_id": payment_id,
        "pay_period_start": START,
        "pay_period_end": END,
        "employee_id": employee_id,
        "legal_entity": "US01",
        "gross": Decimal("2000.00"),
        "taxes": Decimal("400.00"),
        "deductions": Decimal("100.00"),
        "net": Decimal("1500.00"),
        "currency": "USD",
        "pay_date": PAY_DATE,
        "business_date": PAY_DATE,
        **change,
    }
    rate = RATES[row["currency"]]
    row.setdefault("fx_rate_to_usd", rate)
    row.setdefault("gross_usd", (row["gross"] * rate).quantize(Decimal("0.01")))
    row.setdefault("net_usd", (row["net"] * rate).quantize(Decimal("0.01")))
    return row


def employee(employee_id: str = "EMP-1", **change) -> dict:
    """An active US01 employee on 48,000 USD a year, in the pay date's snapshot."""
    return {
        "employee_id": employee_id,
        "name": "Jane Doe",
        "email": "jane@example.com",
        "legal_entity": "US01",
        "department": "Finance",
        "cost_centre": "CC-100",
        "title": "Analyst",
        "location": "NYC",
        "hire_date": date(2024, 1, 1),
        "termination_date": None,
        "status": "active",
        "manager_id": "EMP-9",
        "annual_salary": Decimal("48000.00"),
        "currency": "USD",
        "business_date": PAY_DATE,
        **change,
    }


def frame(spark: SparkSession, schema: str, rows: list[dict]):
    names = [c.split()[0] for c in schema.split(", ")]
    return local_frame(spark, [tuple(r.get(n) for n in names) for r in rows], schema)


def run(spark, payments: list[dict], roster: list[dict], as_of: date = PAY_DATE):
    return reconcile_payroll_hris(
        frame(spark, PAYROLL_SCHEMA, payments), frame(spark, ROSTER_SCHEMA, roster), as_of
    )


def found(df) -> list[tuple]:
    return sorted(
        (r["exception_type"], tuple(r["records"]), r["amount"])
        for r in df.select("exception_type", "records", "amount").collect()
    )


def test_clean_run_raises_nothing(spark):
    assert run(spark, [payment("PAY-1")], [employee()]).count() == 0


def test_paid_unknown_employee(spark):
    result = run(spark, [payment("PAY-1"), payment("PAY-2", "EMP-X")], [employee()])
    assert found(result) == [
        ("PAID_UNKNOWN_EMPLOYEE", ("payroll_register:PAY-2",), Decimal("2000.00"))
    ]


def test_paid_not_active_only_when_terminated_before_the_period(spark):
    roster = [
        employee("EMP-1", status="terminated", termination_date=date(2026, 10, 31)),
        # Terminated during the period: a final pay is expected.
        employee("EMP-2", status="terminated", termination_date=date(2026, 11, 5)),
        # On leave: still paid, not an exception.
        employee("EMP-3", status="leave"),
    ]
    payments = [payment("PAY-1", "EMP-1"), payment("PAY-2", "EMP-2"), payment("PAY-3", "EMP-3")]
    result = run(spark, payments, roster)
    assert found(result) == [("PAID_NOT_ACTIVE", ("payroll_register:PAY-1",), Decimal("2000.00"))]
    detail = result.first()["detail"]
    assert detail == (
        "EMP-1 paid 2,000.00 USD for 2026-11-01..2026-11-15 (PAY-1) but terminated on 2026-10-31"
    )


def test_active_not_paid_uses_the_roster_row_and_expected_gross(spark):
    roster = [
        employee("EMP-1"),
        employee("EMP-2", legal_entity="GB01", currency="GBP", annual_salary=Decimal("36000")),
        # Hired after the period: not expected yet.
        employee("EMP-3", hire_date=date(2026, 11, 16)),
        # On leave or terminated: not expected.
        employee("EMP-4", status="leave"),
        employee("EMP-5", status="terminated", termination_date=date(2026, 10, 1)),
    ]
    result = run(spark, [payment("PAY-1", "EMP-1")], roster)
    rows = result.collect()
    assert [
        (r["exception_type"], r["records"], r["legal_entity"], r["amount"], r["amount_usd"])
        for r in rows
    ] == [
        (
            "ACTIVE_NOT_PAID",
            ["hris_roster:EMP-2"],
            "GB01",
            Decimal("1500.00"),
            None,  # no GBP payment that day and no fx table: no rate to price it with
        )
    ]
    assert (
        rows[0]["detail"] == "EMP-2 is active in GB01 but has no payment for 2026-11-01..2026-11-15"
    )


def test_active_not_paid_priced_with_fx_rates_when_given(spark):
    fx = local_frame(
        spark,
        [(PAY_DATE, "GBP", Decimal("1.30000000"))],
        "rate_date date, currency string, rate_to_usd decimal(18,8)",
    )
    roster = [employee("EMP-1"), employee("EMP-2", currency="GBP", annual_salary=Decimal("36000"))]
    result = reconcile_payroll_hris(
        frame(spark, PAYROLL_SCHEMA, [payment("PAY-1")]),
        frame(spark, ROSTER_SCHEMA, roster),
        PAY_DATE,
        fx_rates=fx,
    )
    assert [r["amount_usd"] for r in result.collect()] == [Decimal("1950.00")]


def test_active_not_paid_per_period_present(spark):
    later = {"pay_period_start": date(2026, 11, 16), "pay_period_end": date(2026, 11, 30)}
    payments = [payment("PAY-1", "EMP-1"), payment("PAY-2", "EMP-1", **later)]
    payments.append(payment("PAY-3", "EMP-2"))
    result = run(spark, payments, [employee("EMP-1"), employee("EMP-2")])
    rows = result.collect()
    assert [(r["exception_type"], r["records"], r["amount"]) for r in rows] == [
        ("ACTIVE_NOT_PAID", ["hris_roster:EMP-2"], Decimal("2000.00"))
    ]
    assert rows[0]["detail"].endswith("no payment for 2026-11-16..2026-11-30")


def test_pay_variance_tolerance_boundary(spark):
    # Expected 2,000.00: 26% off fires, 24% and exactly 25% do not.
    payments = [
        payment("PAY-1", "EMP-1", gross=Decimal("2520.00")),
        payment("PAY-2", "EMP-2", gross=Decimal("2480.00")),
        payment("PAY-3", "EMP-3", gross=Decimal("2500.00")),
        payment("PAY-4", "EMP-4", gross=Decimal("1480.00")),
    ]
    roster = [employee(e) for e in ("EMP-1", "EMP-2", "EMP-3", "EMP-4")]
    result = run(spark, payments, roster)
    assert found(result) == [
        ("PAY_VARIANCE", ("payroll_register:PAY-1",), Decimal("520.00")),
        ("PAY_VARIANCE", ("payroll_register:PAY-4",), Decimal("-520.00")),
    ]
    details = sorted(r["detail"] for r in result.collect())
    assert details[0] == (
        "EMP-1 paid 2,520.00 USD for 2026-11-01..2026-11-15 (PAY-1), 26.0% above the expected "
        "gross (tolerance 25%)"
    )
    assert "48" not in details[0].replace("2026-11", "")  # the salary never appears


def test_pay_variance_skipped_when_currencies_differ(spark):
    payments = [payment("PAY-1", currency="GBP", gross=Decimal("9000.00"))]
    assert run(spark, payments, [employee()]).count() == 0


def test_duplicate_payment_one_exception_no_variance_for_good_copies(spark):
    payments = [
        payment("PAY-2", "EMP-1"),
        payment("PAY-1", "EMP-1"),
        payment("PAY-3", "EMP-1", gross=Decimal("3000.00")),
    ]
    result = run(spark, payments, [employee()])
    assert found(result) == [
        (
            "DUPLICATE_PAYMENT",
            ("payroll_register:PAY-1", "payroll_register:PAY-2", "payroll_register:PAY-3"),
            Decimal("5000.00"),
        ),
        ("PAY_VARIANCE", ("payroll_register:PAY-3",), Decimal("1000.00")),
    ]
    dup = result.where("exception_type = 'DUPLICATE_PAYMENT'").first()
    assert dup["detail"] == (
        "EMP-1 paid 3 times for 2026-11-01..2026-11-15 (PAY-1, PAY-2, PAY-3): 5,000.00 USD paid "
        "more than once"
    )


def test_other_dates_are_ignored_and_no_payroll_gives_empty_typed_frame(spark):
    payments = [payment("PAY-1", "EMP-X", business_date=date(2026, 11, 12))]
    roster = [employee(), employee(business_date=date(2026, 11, 12))]
    result = run(spark, payments, roster)
    assert result.count() == 0
    assert result.columns == EXCEPTION_COLUMNS


def test_exception_row_shape(spark):
    result = run(spark, [payment("PAY-1", "EMP-X", legal_entity="GB01", currency="GBP")], [])
    expected = local_frame(
        spark,
        [
            (
                PAY_DATE,
                "payroll_hris",
                "PAID_UNKNOWN_EMPLOYEE",
                "GB01",
                "open",
                None,
                PAY_DATE,
                None,
                0,
                Decimal("2000.00"),
                "GBP",
                Decimal("2500.00"),
                ["payroll_register:PAY-1"],
                "PAID_UNKNOWN_EMPLOYEE",
                "EMP-X paid 2,000.00 GBP for 2026-11-01..2026-11-15 (PAY-1) but is not in the "
                "HRIS roster",
            )
        ],
        "business_date date, recon string, exception_type string, legal_entity string, "
        "status string, resolution string, first_seen_date date, closed_on date, age_days int, "
        "amount decimal(18,2), currency string, amount_usd decimal(18,2), records array<string>, "
        "rule string, detail string",
    )
    expected = expected.withColumn(
        "exception_id", group_id("payroll_hris", "PAID_UNKNOWN_EMPLOYEE", expected["records"])
    ).select(*EXCEPTION_COLUMNS)
    assert_df_equality(result, expected, ignore_nullable=True)


# --- Several pay dates in one plan ------------------------------------------------------------

D1, D2, D3 = date(2026, 11, 12), PAY_DATE, date(2026, 11, 14)
FX_SCHEMA = "rate_date date, currency string, rate_to_usd decimal(18,8), business_date date"


def several_dates(spark):
    """Three pay dates whose registers and rosters differ, plus a date outside the run."""
    on = {d: {"business_date": d} for d in (D1, D2, D3)}
    payments = [
        payment("PAY-0", "EMP-X", business_date=date(2026, 11, 11)),  # not a date of the run
        payment("PAY-1", "EMP-1", **on[D1]),
        payment("PAY-2", "EMP-X", **on[D1]),  # unknown on D1
        # EMP-1 paid again on D2 for the same period: one register a day, no duplicate.
        payment("PAY-3", "EMP-1", **on[D2]),
        payment("PAY-4", "EMP-3", **on[D2]),
        payment("PAY-5", "EMP-3", **on[D2]),  # duplicate of PAY-4 on D2
        payment("PAY-2", "EMP-X", **on[D2]),  # EMP-X is on D2's roster
        payment("PAY-6", "EMP-2", **on[D2]),  # EMP-2 terminated on D2's roster
        payment("PAY-2", "EMP-X", **on[D3]),  # landed again: unknown again on D3
        payment("PAY-7", "EMP-1", gross=Decimal("3000.00"), **on[D3]),
    ]
    gbp = {"currency": "GBP", "annual_salary": Decimal("36000")}
    gone = {"status": "terminated", "termination_date": date(2026, 10, 1)}
    roster = [
        employee("EMP-1", **on[D1]),
        employee("EMP-2", **gbp, **on[D1]),  # active, not paid on D1
        employee("EMP-1", **on[D2]),
        employee("EMP-3", **on[D2]),
        employee("EMP-X", **on[D2]),
        employee("EMP-2", **gone, **on[D2]),
        employee("EMP-1", **on[D3]),
        employee("EMP-2", **gbp, **on[D3]),  # active, not paid on D3: D3's rate
        employee("EMP-4", **gbp, business_date=date(2026, 11, 11)),  # not a date of the run
    ]
    fx = local_frame(
        spark,
        [
            (D1, "GBP", Decimal("1.30000000"), D1),
            (D2, "GBP", Decimal("1.25000000"), D2),
            (D3, "GBP", Decimal("1.20000000"), D3),
        ],
        FX_SCHEMA,
    )
    return frame(spark, PAYROLL_SCHEMA, payments), frame(spark, ROSTER_SCHEMA, roster), fx


def test_several_dates_in_one_plan_equal_each_date_alone(spark):
    payroll, roster, fx = several_dates(spark)
    days = [D1, D2, D3]
    together = reconcile_payroll_hris_dates(payroll, roster, days, fx).localCheckpoint()
    one_by_one = reconcile_payroll_hris(payroll, roster, D1, fx)
    for d in days[1:]:
        one_by_one = one_by_one.unionByName(reconcile_payroll_hris(payroll, roster, d, fx))
    assert_df_equality(together, one_by_one, ignore_row_order=True, ignore_nullable=True)
    # Each date's rows as the per-date reconciliation gave them before it was set-based.
    rows = sorted(
        (
            r["business_date"],
            r["exception_type"],
            tuple(r["records"]),
            r["amount"],
            r["amount_usd"],
            r["first_seen_date"],
            r["age_days"],
            r["detail"],
        )
        for r in together.collect()
    )
    pay = "payroll_register:PAY-"
    assert rows == [
        (
            D1,
            "ACTIVE_NOT_PAID",
            ("hris_roster:EMP-2",),
            Decimal("1500.00"),
            Decimal("1950.00"),
            D1,
            0,
            "EMP-2 is active in US01 but has no payment for 2026-11-01..2026-11-15",
        ),
        (
            D1,
            "PAID_UNKNOWN_EMPLOYEE",
            (f"{pay}2",),
            Decimal("2000.00"),
            Decimal("2000.00"),
            D1,
            0,
            "EMP-X paid 2,000.00 USD for 2026-11-01..2026-11-15 (PAY-2) but is not in the HRIS "
            "roster",
        ),
        (
            D2,
            "DUPLICATE_PAYMENT",
            (f"{pay}4", f"{pay}5"),
            Decimal("2000.00"),
            Decimal("2000.00"),
            D2,
            0,
            "EMP-3 paid 2 times for 2026-11-01..2026-11-15 (PAY-4, PAY-5): 2,000.00 USD paid "
            "more than once",
        ),
        (
            D2,
            "PAID_NOT_ACTIVE",
            (f"{pay}6",),
            Decimal("2000.00"),
            Decimal("2000.00"),
            D2,
            0,
            "EMP-2 paid 2,000.00 USD for 2026-11-01..2026-11-15 (PAY-6) but terminated on "
            "2026-10-01",
        ),
        (
            D3,
            "ACTIVE_NOT_PAID",
            ("hris_roster:EMP-2",),
            Decimal("1500.00"),
            Decimal("1800.00"),
            D3,
            0,
            "EMP-2 is active in US01 but has no payment for 2026-11-01..2026-11-15",
        ),
        (
            D3,
            "PAID_UNKNOWN_EMPLOYEE",
            (f"{pay}2",),
            Decimal("2000.00"),
            Decimal("2000.00"),
            D3,
            0,
            "EMP-X paid 2,000.00 USD for 2026-11-01..2026-11-15 (PAY-2) but is not in the HRIS "
            "roster",
        ),
        (
            D3,
            "PAY_VARIANCE",
            (f"{pay}7",),
            Decimal("1000.00"),
            Decimal("1000.00"),
            D3,
            0,
            "EMP-1 paid 3,000.00 USD for 2026-11-01..2026-11-15 (PAY-7), 50.0% above the "
            "expected gross (tolerance 25%)",
        ),
    ]
