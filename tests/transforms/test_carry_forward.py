"""Carry-forward: closing yesterday's exceptions with a resolution, and the D vs D−1 runs."""

from datetime import date, timedelta
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from tests.transforms.test_recon_ap import control, invoices_df, payments_df
from tests.transforms.test_recon_cash import D, bank_df, days, gl_df
from transforms.frames import local_frame
from transforms.recon.ap import reconcile_ap_gl
from transforms.recon.carry_forward import (
    carry_forward,
    carry_forward_dates,
    reconcile_with_carry_forward,
)
from transforms.recon.cash import reconcile_bank_gl
from transforms.recon.common import EXCEPTION_COLUMNS

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


def exception(
    id_: str,
    records: list[str],
    first_seen: date,
    as_of: date,
    status: str = "open",
    resolution: str | None = None,
) -> tuple:
    closed_on = as_of if status == "closed" else None
    age = (as_of - first_seen).days
    ten = Decimal("10.00")
    return (
        as_of,
        id_,
        "bank_gl",
        "GL_NOT_IN_BANK",
        "US01",
        status,
        resolution,
        first_seen,
        closed_on,
        age,
        ten,
        "USD",
        ten,
        records,
        "UNMATCHED",
        "text",
    )


def exceptions_df(spark: SparkSession, *rows: tuple) -> DataFrame:
    return local_frame(spark, list(rows), EXCEPTION_SCHEMA)


def matches_df(spark: SparkSession, *pairs: tuple[list[str], list[str]]) -> DataFrame:
    ten = Decimal("10.00")
    rows = [
        (D, "bank_gl", f"M{i}", "REFERENCE", "US01", left, right, ten, ten, "USD", ten, D)
        for i, (left, right) in enumerate(pairs)
    ]
    return local_frame(spark, rows, MATCH_SCHEMA)


def test_carry_forward_resolutions(spark):
    yesterday = D - timedelta(days=1)
    open_yesterday = exceptions_df(
        spark,
        exception("E-MATCHED", ["a", "b"], days(-3), yesterday),
        exception("E-SUPERSEDED", ["c", "d"], days(-2), yesterday),
        exception("E-AGED", ["e"], days(-46), yesterday),
        exception("E-OLD-BUT-MATCHED", ["f"], days(-50), yesterday),
        exception("E-STILL-OPEN", ["g"], days(-5), yesterday),
    )
    open_today = exceptions_df(
        spark,
        exception("E-STILL-OPEN", ["g"], days(-5), D),
        exception("E-NEW", ["c", "d", "h"], days(-2), D),
    )
    matches = matches_df(spark, (["a"], ["b", "c"]), (["x"], ["f"]))

    result = carry_forward(open_today, open_yesterday, matches, D, lookback_days=45)

    assert result.columns == EXCEPTION_COLUMNS
    expected = exceptions_df(
        spark,
        exception("E-STILL-OPEN", ["g"], days(-5), D),
        exception("E-NEW", ["c", "d", "h"], days(-2), D),
        exception("E-MATCHED", ["a", "b"], days(-3), D, "closed", "matched"),
        exception("E-SUPERSEDED", ["c", "d"], days(-2), D, "closed", "superseded"),
        exception("E-AGED", ["e"], days(-46), D, "closed", "aged_out"),
        exception("E-OLD-BUT-MATCHED", ["f"], days(-50), D, "closed", "matched"),
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_carry_forward_of_several_recons_reads_each_recons_own_matches(spark):
    """The close carries the matching recons forward together: a record matched by another
    reconciliation does not close an exception as matched."""
    yesterday = D - timedelta(days=1)

    def of(recon: str, row: tuple) -> tuple:
        return (*row[:2], recon, *row[3:])

    open_yesterday = exceptions_df(
        spark,
        of("bank_gl", exception("E-BANK", ["a"], days(-3), yesterday)),
        of("ap_gl", exception("E-AP", ["a"], days(-3), yesterday)),
    )
    ap_match = (D, "ap_gl", "M0", "REFERENCE", "US01", ["a"], ["z"])
    ten = Decimal("10.00")
    matches = local_frame(spark, [(*ap_match, ten, ten, "USD", ten, D)], MATCH_SCHEMA)

    result = carry_forward_dates(open_yesterday, matches, [D], lookback_days=45)

    assert sorted((r["recon"], r["status"], r["resolution"]) for r in result.collect()) == [
        ("ap_gl", "closed", "matched"),
        ("bank_gl", "closed", "superseded"),
    ]


def checkpointed(df: DataFrame) -> DataFrame:
    """The ``materialize`` the close asset passes: each assertion reads a result, not its plan."""
    return df.localCheckpoint()


def states(result_exceptions: DataFrame) -> list[tuple]:
    return sorted(
        (
            r["exception_type"],
            r["status"],
            r["resolution"],
            r["age_days"],
            r["first_seen_date"],
            r["closed_on"],
            tuple(r["records"]),
        )
        for r in result_exceptions.collect()
    )


def test_timing_difference_open_then_closed_matched(spark):
    day1, day2, day3 = D, days(1), days(2)
    gl = gl_df(spark, {"id": "JE1|1", "amount": "250.00", "landed": day1})
    bank = bank_df(spark, {"id": "B1", "amount": "250.00", "value_date": day2, "landed": day3})
    gl_line = ("gl_journal_lines:JE1|1",)

    runs = {
        d: reconcile_with_carry_forward(
            reconcile_bank_gl, bank, gl, as_of=d, materialize=checkpointed
        )
        for d in (day1, day2, day3)
    }
    assert states(runs[day1].exceptions) == [
        ("GL_NOT_IN_BANK", "open", None, 0, day1, None, gl_line)
    ]
    assert states(runs[day2].exceptions) == [
        ("GL_NOT_IN_BANK", "open", None, 1, day1, None, gl_line)
    ]
    assert states(runs[day3].exceptions) == [
        ("GL_NOT_IN_BANK", "closed", "matched", 2, day1, day3, gl_line)
    ]
    ids = {d: runs[d].exceptions.first()["exception_id"] for d in runs}
    assert len(set(ids.values())) == 1
    assert [r["rule"] for r in runs[day3].matches.collect()] == ["AMOUNT_DATE_WINDOW"]
    assert runs[day3].exceptions.first()["business_date"] == day3


def test_superseded_then_aged_out(spark):
    gl = gl_df(spark, {"id": "JE1|1", "amount": "90.00", "ref": "R1", "landed": D})
    bank = bank_df(spark, {"id": "B1", "amount": "95.00", "ref": "R1", "landed": days(1)})

    next_day = reconcile_with_carry_forward(
        reconcile_bank_gl, bank, gl, as_of=days(1), materialize=checkpointed
    )
    assert [(t, s, res) for t, s, res, *_ in states(next_day.exceptions)] == [
        ("AMOUNT_MISMATCH", "open", None),
        ("GL_NOT_IN_BANK", "closed", "superseded"),
    ]

    aged = reconcile_with_carry_forward(
        reconcile_bank_gl, bank_df(spark), gl, as_of=days(46), materialize=checkpointed
    )
    assert states(aged.exceptions) == [
        ("GL_NOT_IN_BANK", "closed", "aged_out", 46, D, days(46), ("gl_journal_lines:JE1|1",))
    ]


def test_ap_invoice_posted_a_day_late_closes_matched(spark):
    invoices = invoices_df(spark, {"id": "INV-1", "amount": "100.00", "landed": D})
    gl = gl_df(spark, control("JE1|2", "-100.00", "INV-1", landed=days(1)))
    result = reconcile_with_carry_forward(
        reconcile_ap_gl, invoices, payments_df(spark), gl, as_of=days(1), materialize=checkpointed
    )
    assert states(result.exceptions) == [
        ("AP_NOT_IN_GL", "closed", "matched", 1, D, days(1), ("ap_invoices:INV-1",))
    ]
