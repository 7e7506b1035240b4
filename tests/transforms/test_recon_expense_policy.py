"""Expense policy: each rule, its boundary and near misses, on tiny hand-built claims."""

from datetime import date, timedelta
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from transforms.frames import local_frame
from transforms.recon.common import EXCEPTION_COLUMNS, group_id
from transforms.recon.expense_policy import reconcile_expense_policy, reconcile_expense_policy_dates

AS_OF = date(2026, 11, 20)  # a Friday
WEEKDAY = date(2026, 11, 18)  # Wednesday
SATURDAY = date(2026, 11, 14)

SCHEMA = (
    "report_id string, line_id int, employee_id string, transaction_date date, merchant string, "
    "amount decimal(18,2), currency string, claimed_category string, justification string, "
    "business_date date, fx_rate_to_usd decimal(18,8), amount_usd decimal(18,2)"
)
NAMES = [c.split()[0] for c in SCHEMA.split(", ")]


def claim(report_id: str, line_id: int = 1, **change) -> dict:
    """A 50.00 USD weekday meal claimed on the as-of date, at a merchant of its own."""
    row = {
        "report_id": report_id,
        "line_id": line_id,
        "employee_id": "E1",
        "transaction_date": WEEKDAY,
        "merchant": f"Bistro {report_id}",
        "amount": Decimal("50.00"),
        "currency": "USD",
        "claimed_category": "meals",
        "justification": "Team lunch with Jane Doe",
        "business_date": AS_OF,
        "fx_rate_to_usd": Decimal("1"),
        **change,
    }
    row.setdefault("amount_usd", row["amount"])
    return row


def run(spark: SparkSession, *rows: dict, as_of: date = AS_OF):
    df = local_frame(spark, [tuple(r[n] for n in NAMES) for r in rows], SCHEMA)
    return reconcile_expense_policy(df, as_of)


def found(df) -> list[tuple]:
    return sorted(
        (r["exception_type"], tuple(r["records"]), r["amount_usd"])
        for r in df.select("exception_type", "records", "amount_usd").collect()
    )


def rec(report_id: str, line_id: int = 1) -> str:
    return f"expense_lines:{report_id}|{line_id}"


def test_clean_claim_raises_nothing(spark):
    assert run(spark, claim("ER-1")).count() == 0


def test_over_limit_is_strictly_over(spark):
    result = run(
        spark,
        claim("ER-1", amount=Decimal("300.00")),  # exactly the meals limit
        claim("ER-2", amount=Decimal("300.01")),
        claim("ER-3", claimed_category="unknown_category", amount=Decimal("99999.00")),
        claim("ER-4", claimed_category=None, amount=Decimal("99999.00")),
        # The limit applies to the USD amount, not the claim currency's.
        claim("ER-5", amount=Decimal("280.00"), currency="GBP", amount_usd=Decimal("350.00")),
    )
    assert found(result) == [
        ("OVER_LIMIT", (rec("ER-2"),), Decimal("300.01")),
        ("OVER_LIMIT", (rec("ER-5"),), Decimal("350.00")),
    ]
    gbp = result.where("currency = 'GBP'").first()
    assert (gbp["amount"], gbp["legal_entity"]) == (Decimal("280.00"), "GROUP")
    assert gbp["detail"] == (
        "ER-5|1 (E1, Bistro ER-5, 2026-11-18, 280.00 GBP): 350.00 USD in meals is over the "
        "300.00 USD limit"
    )


def test_weekend_only_in_weekday_only_categories(spark):
    result = run(
        spark,
        claim("ER-1", claimed_category="software", transaction_date=SATURDAY),
        claim("ER-2", claimed_category="telecom", transaction_date=SATURDAY + timedelta(days=1)),
        claim("ER-3", claimed_category="meals", transaction_date=SATURDAY),
        claim("ER-4", claimed_category="software", transaction_date=WEEKDAY),
    )
    assert found(result) == [
        ("WEEKEND_EXPENSE", (rec("ER-1"),), Decimal("50.00")),
        ("WEEKEND_EXPENSE", (rec("ER-2"),), Decimal("50.00")),
    ]
    details = sorted(r["detail"] for r in result.collect())
    assert details[0].endswith(": software bought on a Saturday, a weekday-only category")


def test_blocked_merchant_is_a_case_insensitive_substring(spark):
    result = run(
        spark,
        claim("ER-1", merchant="Lucky CASINO Resort"),
        claim("ER-2", merchant="Liquor Barn"),
        claim("ER-3", merchant="Casa Nostra"),
    )
    assert found(result) == [
        ("BLOCKED_MERCHANT", (rec("ER-1"),), Decimal("50.00")),
        ("BLOCKED_MERCHANT", (rec("ER-2"),), Decimal("50.00")),
    ]
    assert (
        result.where("records[0] LIKE '%ER-1%'")
        .first()["detail"]
        .endswith(": merchant matches blocked term casino")
    )


def test_duplicate_across_business_dates_within_the_lookback(spark):
    earlier = AS_OF - timedelta(days=5)
    too_old = AS_OF - timedelta(days=31)
    result = run(
        spark,
        claim("ER-0", merchant="Bistro", business_date=earlier),
        claim("ER-9", merchant="Bistro"),
        # An old copy outside the lookback is not an earlier claim.
        claim("ER-5", merchant="Cafe", business_date=too_old),
        claim("ER-6", merchant="Cafe"),
        # Differs in amount: not a duplicate.
        claim("ER-7", merchant="Deli", amount=Decimal("10.00")),
        claim("ER-8", merchant="Deli", amount=Decimal("10.01")),
    )
    assert found(result) == [("DUPLICATE_CLAIM", (rec("ER-0"), rec("ER-9")), Decimal("50.00"))]
    assert result.first()["detail"] == (
        "ER-9|1 (E1, Bistro, 2026-11-18, 50.00 USD) repeats ER-0|1 claimed on 2026-11-15"
    )


def test_three_copies_each_later_pairs_with_the_first(spark):
    same = {"merchant": "Bistro"}
    result = run(
        spark, claim("ER-1", 2, **same), claim("ER-1", 1, **same), claim("ER-2", 1, **same)
    )
    assert found(result) == [
        ("DUPLICATE_CLAIM", (rec("ER-1", 1), rec("ER-1", 2)), Decimal("50.00")),
        ("DUPLICATE_CLAIM", (rec("ER-1", 1), rec("ER-2", 1)), Decimal("50.00")),
    ]


def test_only_claims_of_the_as_of_date_are_reported(spark):
    yesterday = AS_OF - timedelta(days=1)
    result = run(
        spark,
        claim("ER-1", business_date=yesterday - timedelta(days=1)),
        claim("ER-2", business_date=yesterday),
        claim("ER-3", merchant="Nightclub", amount=Decimal("999.00"), business_date=yesterday),
    )
    assert result.count() == 0


def test_split_transaction_vs_single_and_over_limit_parts(spark):
    lodging = {"claimed_category": "lodging", "merchant": "Hilton"}
    result = run(
        spark,
        # Split: 700 + 600 = 1,300 over the 1,200 lodging limit, each within it.
        claim("ER-1", 1, amount=Decimal("700.00"), **lodging),
        claim("ER-1", 2, amount=Decimal("600.00"), **lodging),
        # Together exactly at the limit: fine.
        claim("ER-2", 1, amount=Decimal("600.00"), employee_id="E2", **lodging),
        claim("ER-2", 2, amount=Decimal("600.00"), employee_id="E2", **lodging),
        # One part over the limit: OVER_LIMIT, not a split.
        claim("ER-3", 1, amount=Decimal("1300.00"), employee_id="E3", **lodging),
        claim("ER-3", 2, amount=Decimal("100.00"), employee_id="E3", **lodging),
        # A single claim is never a split.
        claim("ER-4", 1, amount=Decimal("1100.00"), employee_id="E4", **lodging),
    )
    assert found(result) == [
        ("DUPLICATE_CLAIM", (rec("ER-2", 1), rec("ER-2", 2)), Decimal("600.00")),
        ("OVER_LIMIT", (rec("ER-3", 1),), Decimal("1300.00")),
        ("SPLIT_TRANSACTION", (rec("ER-1", 1), rec("ER-1", 2)), Decimal("1300.00")),
    ]
    split = result.where("exception_type = 'SPLIT_TRANSACTION'").first()
    assert (split["amount"], split["currency"]) == (Decimal("1300.00"), "USD")
    assert split["detail"] == (
        "2 claims by E1 at Hilton on 2026-11-18 in lodging (ER-1|1, ER-1|2) total 1,300.00 USD, "
        "over the 1,200.00 USD limit though each is within it"
    )


def test_a_claim_can_raise_several_types_with_distinct_ids(spark):
    result = run(
        spark,
        claim(
            "ER-1",
            merchant="Betting Shop",
            claimed_category="software",
            transaction_date=SATURDAY,
            amount=Decimal("3500.00"),
        ),
    )
    rows = result.collect()
    assert sorted(r["exception_type"] for r in rows) == [
        "BLOCKED_MERCHANT",
        "OVER_LIMIT",
        "WEEKEND_EXPENSE",
    ]
    assert len({r["exception_id"] for r in rows}) == 3
    for r in rows:
        assert (
            r["exception_id"]
            == spark.range(1)
            .select(
                group_id("expense_policy", r["exception_type"], F.array(*map(F.lit, r["records"])))
            )
            .first()[0]
        )
        assert "Jane" not in r["detail"]
    assert result.columns == EXCEPTION_COLUMNS
    assert {(r["status"], r["business_date"], r["age_days"], r["rule"]) for r in rows} == {
        ("open", AS_OF, 0, t) for t in ("BLOCKED_MERCHANT", "OVER_LIMIT", "WEEKEND_EXPENSE")
    }


# --- Several as-of dates in one plan ----------------------------------------------------------

D1, D2, D3 = AS_OF - timedelta(days=2), AS_OF - timedelta(days=1), AS_OF
LODGING = {"claimed_category": "lodging", "merchant": "Hilton"}


def several_dates(spark: SparkSession):
    """Claims over three as-of dates whose duplicate windows differ, plus older claims."""
    rows = [
        claim("ER-0", merchant="Bistro", business_date=D1 - timedelta(days=8)),
        claim("ER-1", merchant="Bistro", business_date=D1),  # repeats ER-0 on D1
        claim("ER-2", merchant="Bistro", business_date=D3),  # repeats ER-0 on D3
        # In D1's window only (D1 - 30): the first copy on D1, not on D2.
        claim("ER-5", merchant="Cafe", business_date=D1 - timedelta(days=30)),
        claim("ER-6", merchant="Cafe", business_date=D1),  # repeats ER-5 on D1
        claim("ER-7", merchant="Cafe", business_date=D2),  # repeats ER-6 on D2
        # The same line landed again on D3.
        claim("ER-8", merchant="Deli", employee_id="E8", business_date=D1),
        claim("ER-8", merchant="Deli", employee_id="E8", business_date=D3),
        claim("ER-3", merchant="Casino Royale", employee_id="E3", business_date=D1),
        claim("ER-4", amount=Decimal("400.00"), employee_id="E4", business_date=D2),
        claim(
            "ER-9",
            claimed_category="software",
            transaction_date=SATURDAY,
            employee_id="E9",
            business_date=D2,
        ),
        # Lodging split over two dates is no split; over one date it is.
        claim("ER-10", 1, amount=Decimal("700.00"), employee_id="E10", business_date=D2, **LODGING),
        claim("ER-10", 2, amount=Decimal("600.00"), employee_id="E10", business_date=D3, **LODGING),
        claim("ER-11", 1, amount=Decimal("700.00"), employee_id="E11", business_date=D3, **LODGING),
        claim("ER-11", 2, amount=Decimal("600.00"), employee_id="E11", business_date=D3, **LODGING),
    ]
    return local_frame(spark, [tuple(r[n] for n in NAMES) for r in rows], SCHEMA)


# Per date, as the per-date reconciliation gave them before it was set-based:
# (business_date, exception_type, records, amount, detail).
EXPECTED_SEVERAL_DATES = [
    (
        date(2026, 11, 18),
        "BLOCKED_MERCHANT",
        ("expense_lines:ER-3|1",),
        Decimal("50.00"),
        "ER-3|1 (E3, Casino Royale, 2026-11-18, 50.00 USD): merchant matches blocked term casino",
    ),
    (
        date(2026, 11, 18),
        "DUPLICATE_CLAIM",
        ("expense_lines:ER-0|1", "expense_lines:ER-1|1"),
        Decimal("50.00"),
        "ER-1|1 (E1, Bistro, 2026-11-18, 50.00 USD) repeats ER-0|1 claimed on 2026-11-10",
    ),
    (
        date(2026, 11, 18),
        "DUPLICATE_CLAIM",
        ("expense_lines:ER-5|1", "expense_lines:ER-6|1"),
        Decimal("50.00"),
        "ER-6|1 (E1, Cafe, 2026-11-18, 50.00 USD) repeats ER-5|1 claimed on 2026-10-19",
    ),
    (
        date(2026, 11, 19),
        "DUPLICATE_CLAIM",
        ("expense_lines:ER-6|1", "expense_lines:ER-7|1"),
        Decimal("50.00"),
        "ER-7|1 (E1, Cafe, 2026-11-18, 50.00 USD) repeats ER-6|1 claimed on 2026-11-18",
    ),
    (
        date(2026, 11, 19),
        "OVER_LIMIT",
        ("expense_lines:ER-4|1",),
        Decimal("400.00"),
        "ER-4|1 (E4, Bistro ER-4, 2026-11-18, 400.00 USD): 400.00 USD in meals is over the "
        "300.00 USD limit",
    ),
    (
        date(2026, 11, 19),
        "WEEKEND_EXPENSE",
        ("expense_lines:ER-9|1",),
        Decimal("50.00"),
        "ER-9|1 (E9, Bistro ER-9, 2026-11-14, 50.00 USD): software bought on a Saturday, a "
        "weekday-only category",
    ),
    (
        date(2026, 11, 20),
        "DUPLICATE_CLAIM",
        ("expense_lines:ER-0|1", "expense_lines:ER-2|1"),
        Decimal("50.00"),
        "ER-2|1 (E1, Bistro, 2026-11-18, 50.00 USD) repeats ER-0|1 claimed on 2026-11-10",
    ),
    (
        date(2026, 11, 20),
        "DUPLICATE_CLAIM",
        ("expense_lines:ER-8|1", "expense_lines:ER-8|1"),
        Decimal("50.00"),
        "ER-8|1 (E8, Deli, 2026-11-18, 50.00 USD) repeats ER-8|1 claimed on 2026-11-18",
    ),
    (
        date(2026, 11, 20),
        "SPLIT_TRANSACTION",
        ("expense_lines:ER-11|1", "expense_lines:ER-11|2"),
        Decimal("1300.00"),
        "2 claims by E11 at Hilton on 2026-11-18 in lodging (ER-11|1, ER-11|2) total 1,300.00 USD, "
        "over the 1,200.00 USD limit though each is within it",
    ),
]


def test_several_dates_in_one_plan_equal_each_date_alone(spark):
    claims = several_dates(spark)
    days = [D1, D2, D3]
    together = reconcile_expense_policy_dates(claims, days).localCheckpoint()
    one_by_one = reconcile_expense_policy(claims, D1)
    for d in days[1:]:
        one_by_one = one_by_one.unionByName(reconcile_expense_policy(claims, d))
    assert_df_equality(together, one_by_one, ignore_row_order=True, ignore_nullable=True)
    # Each date's rows as the per-date reconciliation gave them before it was set-based.
    rows = sorted(
        (r["business_date"], r["exception_type"], tuple(r["records"]), r["amount"], r["detail"])
        for r in together.collect()
    )
    assert rows == EXPECTED_SEVERAL_DATES
