"""Close summary: the grid, counts, match rate, age buckets and the AP unexplained variance."""

from datetime import date, timedelta
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from transforms.frames import local_frame
from transforms.recon.common import EXCEPTION_COLUMNS, MATCH_COLUMNS, RECONS
from transforms.recon.summary import CLOSE_SUMMARY_COLUMNS, close_summary, close_summary_dates
from transforms.reference_data import LEGAL_ENTITIES

AS_OF = date(2026, 11, 20)

EXCEPTION_SCHEMA = (
    "business_date date, exception_id string, recon string, exception_type string, "
    "legal_entity string, status string, resolution string, first_seen_date date, "
    "closed_on date, age_days int, amount decimal(18,2), currency string, "
    "amount_usd decimal(18,2), records array<string>, rule string, detail string"
)
MATCH_SCHEMA = (
    "business_date date, recon string, match_id string, rule string, legal_entity string, "
    "left_records array<string>, right_records array<string>, left_amount decimal(18,2), "
    "right_amount decimal(18,2), currency string, amount_usd decimal(18,2), matched_on date"
)
AP_SCHEMA = (
    "legal_entity string, currency string, ap_subledger_balance decimal(18,2), "
    "ap_gl_balance decimal(18,2), ap_variance decimal(18,2)"
)


def exception(records: list[str], **change) -> tuple:
    row = {
        "business_date": AS_OF,
        "exception_id": "|".join(records),
        "recon": "bank_gl",
        "exception_type": "BANK_NOT_IN_GL",
        "legal_entity": "US01",
        "status": "open",
        "resolution": None,
        "first_seen_date": AS_OF,
        "closed_on": None,
        "age_days": 0,
        "amount": Decimal("100.00"),
        "currency": "USD",
        "amount_usd": Decimal("100.00"),
        "records": records,
        "rule": "LEFT_OVER",
        "detail": "",
        **change,
    }
    return tuple(row[c] for c in EXCEPTION_COLUMNS)


def match(left: list[str], right: list[str], **change) -> tuple:
    row = {
        "business_date": AS_OF,
        "recon": "bank_gl",
        "match_id": "|".join(left + right),
        "rule": "REFERENCE",
        "legal_entity": "US01",
        "left_records": left,
        "right_records": right,
        "left_amount": Decimal("10.00"),
        "right_amount": Decimal("10.00"),
        "currency": "USD",
        "amount_usd": Decimal("10.00"),
        "matched_on": AS_OF,
        **change,
    }
    return tuple(row[c] for c in MATCH_COLUMNS)


def summarize(spark: SparkSession, exceptions=(), matches=(), balances=()):
    return close_summary(
        local_frame(spark, list(exceptions), EXCEPTION_SCHEMA),
        local_frame(spark, list(matches), MATCH_SCHEMA),
        local_frame(spark, list(balances), AP_SCHEMA),
        AS_OF,
    )


def by_key(df) -> dict[tuple[str, str], dict]:
    return {(r["legal_entity"], r["recon"]): r.asDict() for r in df.collect()}


def test_empty_night_gives_a_zero_row_per_entity_and_recon(spark):
    result = summarize(spark)
    assert result.columns == CLOSE_SUMMARY_COLUMNS
    rows = by_key(result)
    assert set(rows) == {(e, r) for e in LEGAL_ENTITIES for r in RECONS}
    row = rows[("US01", "bank_gl")]
    assert row == {
        "business_date": AS_OF,
        "legal_entity": "US01",
        "recon": "bank_gl",
        "records_matched": 0,
        "records_unmatched": 0,
        "match_rate": None,
        "matched_amount_usd": Decimal("0.00"),
        "open_exceptions": 0,
        "open_amount_usd": Decimal("0.00"),
        "closed_today": 0,
        "open_by_type": {},
        "open_by_age": {"0": 0, "1-2": 0, "3-7": 0, "8-30": 0, "31+": 0},
        "oldest_open_age_days": None,
        "ap_subledger_balance": None,
        "ap_gl_balance": None,
        "ap_variance": None,
        "ap_variance_unexplained": None,
    }


def test_counts_match_rate_and_age_buckets(spark):
    exceptions = [
        exception(["b:1"], age_days=0, amount_usd=Decimal("-40.00")),
        exception(["b:2"], age_days=2, exception_type="GL_NOT_IN_BANK"),
        exception(["b:3", "g:3"], age_days=5, exception_type="AMOUNT_MISMATCH"),
        exception(["b:2", "g:4"], age_days=45, exception_type="AMOUNT_MISMATCH"),
        exception(["b:9"], status="closed", resolution="matched", closed_on=AS_OF, age_days=3),
        # Another entity, another day: neither counts here.
        exception(["b:5"], legal_entity="GB01"),
        exception(["b:6"], business_date=AS_OF - timedelta(days=1)),
    ]
    matches = [
        match(["b:9"], ["g:9"], amount_usd=Decimal("5.00")),
        match(["b:7", "b:8"], ["g:7"], amount_usd=Decimal("7.50")),
    ]
    rows = by_key(summarize(spark, exceptions, matches))
    row = rows[("US01", "bank_gl")]
    assert (row["records_matched"], row["records_unmatched"]) == (5, 5)
    assert row["match_rate"] == 0.5
    assert row["matched_amount_usd"] == Decimal("12.50")
    assert (row["open_exceptions"], row["open_amount_usd"], row["closed_today"]) == (
        4,
        Decimal("340.00"),
        1,
    )
    assert row["open_by_type"] == {
        "AMOUNT_MISMATCH": 2,
        "BANK_NOT_IN_GL": 1,
        "GL_NOT_IN_BANK": 1,
    }
    assert row["open_by_age"] == {"0": 1, "1-2": 1, "3-7": 1, "8-30": 0, "31+": 1}
    assert row["oldest_open_age_days"] == 45
    assert rows[("GB01", "bank_gl")]["open_exceptions"] == 1
    assert rows[("US01", "ap_gl")]["open_exceptions"] == 0


def test_other_entities_present_get_rows_too(spark):
    exceptions = [exception(["e:1"], recon="expense_policy", legal_entity="GROUP")]
    rows = by_key(summarize(spark, exceptions))
    assert {r for (e, r) in rows if e == "GROUP"} == set(RECONS)
    assert rows[("GROUP", "expense_policy")]["match_rate"] == 0.0


def test_ap_unexplained_variance_is_zero_when_open_items_explain_it(spark):
    exceptions = [
        exception(
            ["ap_invoices:INV-1"],
            recon="ap_gl",
            exception_type="AP_NOT_IN_GL",
            amount=Decimal("300"),
        ),
        exception(
            ["gl:J-1|1"], recon="ap_gl", exception_type="GL_NOT_IN_AP", amount=Decimal("-50")
        ),
        # Closed items explain nothing any more.
        exception(
            ["gl:J-2|1"],
            recon="ap_gl",
            exception_type="GL_NOT_IN_AP",
            amount=Decimal("-999"),
            status="closed",
            closed_on=AS_OF,
        ),
        exception(
            ["ap_invoices:INV-2"],
            recon="ap_gl",
            exception_type="AP_NOT_IN_GL",
            legal_entity="GB01",
            currency="GBP",
            amount=Decimal("100"),
        ),
    ]
    balances = [
        ("US01", "USD", Decimal("1250.00"), Decimal("1000.00"), Decimal("250.00")),
        # GB01: 120 of difference, only 100 explained.
        ("GB01", "GBP", Decimal("620.00"), Decimal("500.00"), Decimal("120.00")),
        # A second currency of GB01 is not its functional one: not used.
        ("GB01", "USD", Decimal("1.00"), Decimal("0.00"), Decimal("1.00")),
    ]
    rows = by_key(summarize(spark, exceptions, balances=balances))
    ap = ["ap_subledger_balance", "ap_gl_balance", "ap_variance", "ap_variance_unexplained"]
    assert [rows[("US01", "ap_gl")][c] for c in ap] == [
        Decimal("1250.00"),
        Decimal("1000.00"),
        Decimal("250.00"),
        Decimal("0.00"),
    ]
    assert rows[("GB01", "ap_gl")]["ap_variance_unexplained"] == Decimal("20.00")
    assert rows[("DE01", "ap_gl")]["ap_variance"] is None
    assert all(rows[("US01", r)]["ap_variance"] is None for r in RECONS if r != "ap_gl")


# --- Several business dates in one plan -------------------------------------------------------

D1, D2, D3 = AS_OF - timedelta(days=2), AS_OF - timedelta(days=1), AS_OF
DATED_AP_SCHEMA = f"{AP_SCHEMA}, business_date date"


def several_dates(spark: SparkSession):
    """Three nights of exceptions, matches and AP balances, and a night outside the run."""
    d = {n: {"business_date": n} for n in (D1, D2, D3)}
    exceptions = [
        exception(["b:0"], business_date=D1 - timedelta(days=1)),  # not a date of the run
        exception(["b:1"], **d[D1]),
        exception(["b:1"], age_days=1, first_seen_date=D1, **d[D2]),
        exception(["b:1"], status="closed", resolution="matched", closed_on=D3, **d[D3]),
        exception(["e:1"], recon="expense_policy", legal_entity="GROUP", **d[D2]),
        exception(["ap:1"], recon="ap_gl", exception_type="AP_NOT_IN_GL", **d[D1]),
        exception(
            ["ap:2"], recon="ap_gl", exception_type="AP_NOT_IN_GL", amount=Decimal("40"), **d[D3]
        ),
        exception(["b:2", "g:2"], age_days=9, exception_type="AMOUNT_MISMATCH", **d[D3]),
    ]
    matches = [
        match(["b:1"], ["g:1"], **d[D3]),
        match(["b:7"], ["g:7"], legal_entity="GB01", currency="GBP", **d[D2]),
        match(["b:8"], ["g:8"], **d[D1]),
        match(["b:9"], ["g:9"], business_date=D3 + timedelta(days=1)),  # not a date of the run
    ]
    balances = [
        ("US01", "USD", Decimal("1100.00"), Decimal("1000.00"), Decimal("100.00"), D1),
        ("US01", "USD", Decimal("1000.00"), Decimal("1000.00"), Decimal("0.00"), D2),
        ("US01", "USD", Decimal("1040.00"), Decimal("1000.00"), Decimal("40.00"), D3),
        ("GB01", "GBP", Decimal("500.00"), Decimal("490.00"), Decimal("10.00"), D3),
        ("GB01", "USD", Decimal("1.00"), Decimal("0.00"), Decimal("1.00"), D3),
        ("XX01", "EUR", Decimal("5.00"), Decimal("0.00"), Decimal("5.00"), D2),
    ]
    return (
        local_frame(spark, exceptions, EXCEPTION_SCHEMA),
        local_frame(spark, matches, MATCH_SCHEMA),
        local_frame(spark, balances, DATED_AP_SCHEMA),
    )


# The per-date summaries before they were set-based: the entities of each date's grid...
EXPECTED_GRID = [
    (date(2026, 11, 18), "DE01"),
    (date(2026, 11, 18), "GB01"),
    (date(2026, 11, 18), "US01"),
    (date(2026, 11, 19), "DE01"),
    (date(2026, 11, 19), "GB01"),
    (date(2026, 11, 19), "GROUP"),
    (date(2026, 11, 19), "US01"),
    (date(2026, 11, 19), "XX01"),
    (date(2026, 11, 20), "DE01"),
    (date(2026, 11, 20), "GB01"),
    (date(2026, 11, 20), "US01"),
]


# ...and the figures of each (entity, recon) with anything in it: business_date, legal_entity,
# recon, records_matched, records_unmatched, match_rate, open_exceptions, open_amount_usd,
# closed_today, open_by_type, oldest_open_age_days, ap_variance, ap_variance_unexplained.
EXPECTED_FIGURES = [
    (
        date(2026, 11, 18),
        "US01",
        "ap_gl",
        0,
        1,
        0.0,
        1,
        Decimal("100.00"),
        0,
        (("AP_NOT_IN_GL", 1),),
        0,
        Decimal("100.00"),
        Decimal("0.00"),
    ),
    (
        date(2026, 11, 18),
        "US01",
        "bank_gl",
        2,
        1,
        0.6666666666666666,
        1,
        Decimal("100.00"),
        0,
        (("BANK_NOT_IN_GL", 1),),
        0,
        None,
        None,
    ),
    (date(2026, 11, 19), "GB01", "bank_gl", 2, 0, 1.0, 0, Decimal("0.00"), 0, (), None, None, None),
    (
        date(2026, 11, 19),
        "GROUP",
        "expense_policy",
        0,
        1,
        0.0,
        1,
        Decimal("100.00"),
        0,
        (("BANK_NOT_IN_GL", 1),),
        0,
        None,
        None,
    ),
    (
        date(2026, 11, 19),
        "US01",
        "ap_gl",
        0,
        0,
        None,
        0,
        Decimal("0.00"),
        0,
        (),
        None,
        Decimal("0.00"),
        Decimal("0.00"),
    ),
    (
        date(2026, 11, 19),
        "US01",
        "bank_gl",
        0,
        1,
        0.0,
        1,
        Decimal("100.00"),
        0,
        (("BANK_NOT_IN_GL", 1),),
        1,
        None,
        None,
    ),
    (
        date(2026, 11, 19),
        "XX01",
        "ap_gl",
        0,
        0,
        None,
        0,
        Decimal("0.00"),
        0,
        (),
        None,
        Decimal("5.00"),
        Decimal("5.00"),
    ),
    (
        date(2026, 11, 20),
        "GB01",
        "ap_gl",
        0,
        0,
        None,
        0,
        Decimal("0.00"),
        0,
        (),
        None,
        Decimal("10.00"),
        Decimal("10.00"),
    ),
    (
        date(2026, 11, 20),
        "US01",
        "ap_gl",
        0,
        1,
        0.0,
        1,
        Decimal("100.00"),
        0,
        (("AP_NOT_IN_GL", 1),),
        0,
        Decimal("40.00"),
        Decimal("0.00"),
    ),
    (
        date(2026, 11, 20),
        "US01",
        "bank_gl",
        2,
        2,
        0.5,
        1,
        Decimal("100.00"),
        1,
        (("AMOUNT_MISMATCH", 1),),
        9,
        None,
        None,
    ),
]


def comparable(summary):
    """The summary with its maps as sorted entries (rows with maps cannot be sorted)."""
    for c in ("open_by_type", "open_by_age"):
        summary = summary.withColumn(c, F.array_sort(F.map_entries(c)))
    return summary


def test_several_dates_in_one_plan_equal_each_date_alone(spark):
    exceptions, matches, balances = several_dates(spark)
    days = [D1, D2, D3]
    together = close_summary_dates(exceptions, matches, balances, days).localCheckpoint()
    assert together.columns == CLOSE_SUMMARY_COLUMNS
    on = F.col("business_date")
    one_by_one = None
    for d in days:
        night = close_summary(exceptions, matches, balances.where(on == F.lit(d)), d)
        one_by_one = night if one_by_one is None else one_by_one.unionByName(night)
    assert_df_equality(
        comparable(together), comparable(one_by_one), ignore_row_order=True, ignore_nullable=True
    )
    # Each date's rows as the per-date summary gave them before it was set-based: the grid per
    # date, and the figures of each (entity, recon) with anything in it.
    rows = together.collect()
    grid = sorted((r["business_date"], r["legal_entity"]) for r in rows if r["recon"] == "ap_gl")
    assert grid == EXPECTED_GRID
    assert len(rows) == len(EXPECTED_GRID) * len(RECONS)
    figures = sorted(
        (
            r["business_date"],
            r["legal_entity"],
            r["recon"],
            r["records_matched"],
            r["records_unmatched"],
            r["match_rate"],
            r["open_exceptions"],
            r["open_amount_usd"],
            r["closed_today"],
            tuple(sorted(r["open_by_type"].items())),
            r["oldest_open_age_days"],
            r["ap_variance"],
            r["ap_variance_unexplained"],
        )
        for r in rows
        if r["records_matched"] or r["records_unmatched"] or r["ap_variance"] is not None
    )
    assert figures == EXPECTED_FIGURES
