"""AP subledger ↔ GL AP control: matches, every exception type, balances, on tiny silver frames."""

from datetime import date
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.transforms.test_recon_cash import CURRENCY, D, days, gl_df, usd
from transforms.frames import local_frame
from transforms.recon.ap import (
    LOOKBACK_DAYS,
    ap_control_balances,
    ap_control_balances_dates,
    reconcile_ap_gl,
    reconcile_ap_gl_dates,
)
from transforms.recon.common import EXCEPTION_COLUMNS, MATCH_COLUMNS

INVOICE_SCHEMA = (
    "invoice_id string, legal_entity string, vendor_id string, vendor_name string, "
    "invoice_date date, due_date date, amount decimal(18,2), currency string, memo string, "
    "po_number string, status string, business_date date, fx_rate_to_usd decimal(18,8), "
    "amount_usd decimal(18,2)"
)
PAYMENT_SCHEMA = (
    "payment_id string, invoice_id string, legal_entity string, vendor_id string, "
    "vendor_name string, payment_date date, amount decimal(18,2), currency string, memo string, "
    "status string, business_date date, fx_rate_to_usd decimal(18,8), amount_usd decimal(18,2)"
)


def reconcile(invoices: DataFrame, payments: DataFrame, gl: DataFrame, as_of: date):
    """The reconciliation as the close runs it: its intermediate results checkpointed."""
    return reconcile_ap_gl(
        invoices, payments, gl, as_of, materialize=lambda df: df.localCheckpoint()
    )


def invoices_df(spark: SparkSession, *rows: dict) -> DataFrame:
    data = []
    for r in rows:
        entity = r.get("entity", "US01")
        landed = r.get("landed", D)
        amount = Decimal(str(r["amount"]))
        fx = Decimal(str(r.get("fx", "1")))
        currency = r.get("currency", CURRENCY[entity])
        data.append(
            (
                r["id"],
                entity,
                "V1",
                "Vendor",
                landed,
                None,
                amount,
                currency,
                None,
                None,
                "open",
                landed,
                fx,
                usd(amount, fx),
            )
        )
    return local_frame(spark, data, INVOICE_SCHEMA)


def payments_df(spark: SparkSession, *rows: dict) -> DataFrame:
    data = []
    for r in rows:
        entity = r.get("entity", "US01")
        landed = r.get("landed", D)
        amount = Decimal(str(r["amount"]))
        fx = Decimal(str(r.get("fx", "1")))
        currency = r.get("currency", CURRENCY[entity])
        data.append(
            (
                r["id"],
                r.get("invoice", "INV-1"),
                entity,
                "V1",
                "Vendor",
                landed,
                amount,
                currency,
                None,
                "released",
                landed,
                fx,
                usd(amount, fx),
            )
        )
    return local_frame(spark, data, PAYMENT_SCHEMA)


def control(id_: str, amount: str, ref: str | None = None, **more) -> dict:
    """A GL line on the AP control account; ``amount`` signed (debit − credit)."""
    return {
        "id": id_,
        "amount": amount,
        "ref": ref,
        "account": "2100",
        "source_system": "AP",
    } | more


def view(spark: SparkSession, exceptions: DataFrame, *rows: tuple) -> None:
    actual = exceptions.select("exception_type", "records", "amount", "age_days")
    expected = local_frame(
        spark,
        [(t, recs, Decimal(a), age) for t, recs, a, age in rows],
        "exception_type string, records array<string>, amount decimal(18,2), age_days int",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_invoice_and_payment_posted_match(spark):
    invoices = invoices_df(spark, {"id": "INV-1", "amount": "1000.00", "landed": days(-3)})
    payments = payments_df(spark, {"id": "PAY-1", "amount": "400.00"})
    gl = gl_df(
        spark,
        control("JE1|2", "-1000.00", "INV-1", landed=days(-2)),
        {"id": "JE1|1", "amount": "1000.00", "account": "6000", "ref": "INV-1"},
        control("JE2|1", "400.00", "PAY-1"),
    )
    result = reconcile(invoices, payments, gl, D)

    assert result.matches.columns == MATCH_COLUMNS
    assert result.exceptions.columns == EXCEPTION_COLUMNS
    assert result.exceptions.count() == 0
    actual = result.matches.select(
        "recon",
        "rule",
        "left_records",
        "right_records",
        "left_amount",
        "right_amount",
        "matched_on",
    )
    expected = local_frame(
        spark,
        [
            (
                "ap_gl",
                "REFERENCE",
                ["ap_invoices:INV-1"],
                ["gl_journal_lines:JE1|2"],
                Decimal("1000.00"),
                Decimal("1000.00"),
                days(-2),
            ),
            (
                "ap_gl",
                "REFERENCE",
                ["ap_payments:PAY-1"],
                ["gl_journal_lines:JE2|1"],
                Decimal("-400.00"),
                Decimal("-400.00"),
                D,
            ),
        ],
        "recon string, rule string, left_records array<string>, right_records array<string>, "
        "left_amount decimal(18,2), right_amount decimal(18,2), matched_on date",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_unposted_documents_and_undocumented_postings(spark):
    invoices = invoices_df(spark, {"id": "INV-2", "amount": "200.00", "landed": days(-4)})
    payments = payments_df(spark, {"id": "PAY-2", "amount": "300.00", "fx": "1.25"})
    gl = gl_df(
        spark,
        control("MJ1|1", "-50.00", source_system="MANUAL", landed=days(-1)),
        control("MJ2|1", "-10.00", source_system="MANUAL"),
        control("MJ3|1", "-5.00", "ACCR-1", source_system="MANUAL"),
        control("MJ3|2", "-7.00", "ACCR-1", source_system="MANUAL"),
    )
    result = reconcile(invoices, payments, gl, D)
    assert result.matches.count() == 0
    view(
        spark,
        result.exceptions,
        ("AP_NOT_IN_GL", ["ap_invoices:INV-2"], "200.00", 4),
        ("AP_NOT_IN_GL", ["ap_payments:PAY-2"], "-300.00", 0),
        ("GL_NOT_IN_AP", ["gl_journal_lines:MJ1|1"], "-50.00", 1),
        ("GL_NOT_IN_AP", ["gl_journal_lines:MJ2|1"], "-10.00", 0),
        ("GL_NOT_IN_AP", ["gl_journal_lines:MJ3|1", "gl_journal_lines:MJ3|2"], "-12.00", 0),
    )
    details = {r["records"][0]: r for r in result.exceptions.collect()}
    assert details["ap_payments:PAY-2"]["amount_usd"] == Decimal("-375.00")
    assert details["ap_invoices:INV-2"]["detail"] == (
        "Invoice INV-2 of 200.00 USD dated 2026-11-16 has no posting on AP control account 2100"
    )
    assert details["gl_journal_lines:MJ1|1"]["detail"] == (
        "AP control account 2100 posting journal MJ1 line 1 (no ref) of 50.00 USD "
        "(credit − debit) has no AP document"
    )


def test_tolerance_and_amount_mismatch(spark):
    invoices = invoices_df(
        spark, {"id": "INV-3", "amount": "500.00"}, {"id": "INV-4", "amount": "70.00"}
    )
    gl = gl_df(spark, control("JE3|1", "-480.00", "INV-3"), control("JE4|1", "-70.01", "INV-4"))
    result = reconcile(invoices, payments_df(spark), gl, D)
    assert [r["left_records"] for r in result.matches.collect()] == [["ap_invoices:INV-4"]]
    view(
        spark,
        result.exceptions,
        ("AMOUNT_MISMATCH", ["ap_invoices:INV-3", "gl_journal_lines:JE3|1"], "20.00", 0),
    )
    assert result.exceptions.first()["detail"] == (
        "Invoice INV-3: subledger 500.00 USD vs GL AP control 2100 480.00 USD (difference 20.00)"
    )


def test_reference_must_be_same_entity(spark):
    invoices = invoices_df(spark, {"id": "INV-5", "amount": "10.00", "entity": "GB01"})
    gl = gl_df(spark, control("JE5|1", "-10.00", "INV-5", entity="US01", currency="GBP"))
    result = reconcile(invoices, payments_df(spark), gl, D)
    assert result.matches.count() == 0
    assert sorted(r["exception_type"] for r in result.exceptions.collect()) == [
        "AP_NOT_IN_GL",
        "GL_NOT_IN_AP",
    ]


def test_window_edges(spark):
    too_old = days(-LOOKBACK_DAYS - 1)
    invoices = invoices_df(
        spark,
        {"id": "INV-OLD", "amount": "1.00", "landed": too_old},
        {"id": "INV-NEXT", "amount": "2.00", "landed": days(1)},
        {"id": "INV-EDGE", "amount": "3.00", "landed": days(-LOOKBACK_DAYS)},
    )
    gl = gl_df(spark, control("JE1|1", "-1.00", "INV-NEXT", landed=too_old))
    result = reconcile(invoices, payments_df(spark), gl, D)
    view(spark, result.exceptions, ("AP_NOT_IN_GL", ["ap_invoices:INV-EDGE"], "3.00", 45))


def test_balances_variance_equals_open_exceptions(spark):
    invoices = invoices_df(
        spark,
        {"id": "INV-1", "amount": "1000.00", "landed": days(-2)},
        {"id": "INV-2", "amount": "200.00"},
        {"id": "INV-3", "amount": "500.00"},
        {"id": "INV-9", "amount": "999.00", "landed": days(1)},  # after as_of: not counted
        {"id": "INV-DE", "amount": "80.00", "entity": "DE01"},
    )
    payments = payments_df(
        spark,
        {"id": "PAY-1", "amount": "400.00", "landed": days(-1)},
        {"id": "PAY-2", "amount": "300.00"},
    )
    gl = gl_df(
        spark,
        control("JE1|2", "-1000.00", "INV-1", landed=days(-2)),
        control("JE2|1", "400.00", "PAY-1", landed=days(-1)),
        control("JE3|1", "-480.00", "INV-3"),
        control("MJ1|1", "-50.00", source_system="MANUAL"),
        control("JE8|1", "-80.00", "INV-DE", entity="DE01"),
        {"id": "JE1|1", "amount": "1000.00", "account": "6000", "ref": "INV-1"},
    )
    balances = ap_control_balances(invoices, payments, gl, D)
    expected = local_frame(
        spark,
        [
            ("US01", "USD", Decimal("1000.00"), Decimal("1130.00"), Decimal("-130.00")),
            ("GB01", "GBP", Decimal("0.00"), Decimal("0.00"), Decimal("0.00")),
            ("DE01", "EUR", Decimal("80.00"), Decimal("80.00"), Decimal("0.00")),
        ],
        "legal_entity string, currency string, ap_subledger_balance decimal(18,2), "
        "ap_gl_balance decimal(18,2), ap_variance decimal(18,2)",
    )
    assert_df_equality(balances, expected, ignore_row_order=True, ignore_nullable=True)

    exceptions = reconcile(invoices, payments, gl, D).exceptions
    explained = (
        exceptions.where(F.col("status") == "open")
        .groupBy("legal_entity")
        .agg(F.sum("amount").alias("explained"))
    )
    assert {r["legal_entity"]: r["explained"] for r in explained.collect()} == {
        "US01": Decimal("-130.00")
    }
    assert exceptions.count() == 4  # INV-2, PAY-2, INV-3 mismatch, MJ1


def test_balances_count_a_relanded_document_once(spark):
    invoices = invoices_df(
        spark,
        {"id": "INV-1", "amount": "100.00", "landed": days(-1)},
        {"id": "INV-1", "amount": "100.00", "landed": D},
    )
    balances = ap_control_balances(invoices, payments_df(spark), gl_df(spark), D)
    row = balances.where(F.col("legal_entity") == "US01").first()
    assert row["ap_subledger_balance"] == Decimal("100.00")
    exception = reconcile(invoices, payments_df(spark), gl_df(spark), D).exceptions.first()
    assert (exception["first_seen_date"], exception["age_days"]) == (days(-1), 1)


def multi_date_inputs(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    """AP documents and control postings landing over several nights (as of ``D``, ``days(1)``,
    ``days(2)``): INV-1's posting lands late (unposted, then a match); INV-2 landed again with a
    new amount while its posting is completed over two nights (mismatch, mismatch, match); PAY-1's
    posting lands on ``days(2)``; INV-OLD leaves the window after ``D``; ACCR-1 grows a line."""
    invoices = invoices_df(
        spark,
        {"id": "INV-1", "amount": "1000.00", "landed": days(-2)},
        {"id": "INV-2", "amount": "190.00", "landed": D},
        {"id": "INV-2", "amount": "200.00", "landed": days(1)},
        {"id": "INV-OLD", "amount": "5.00", "landed": days(-LOOKBACK_DAYS)},
        {"id": "INV-DE", "amount": "80.00", "entity": "DE01", "landed": days(1)},
    )
    payments = payments_df(spark, {"id": "PAY-1", "amount": "400.00", "landed": D})
    gl = gl_df(
        spark,
        control("JE1|2", "-1000.00", "INV-1", landed=days(1)),
        {"id": "JE1|1", "amount": "1000.00", "account": "6000", "ref": "INV-1", "landed": days(1)},
        control("JE2|1", "-150.00", "INV-2", landed=D),
        control("JE2|2", "-50.00", "INV-2", landed=days(2)),
        control("JE3|1", "400.00", "PAY-1", landed=days(2)),
        control("JE8|1", "-80.00", "INV-DE", entity="DE01", landed=days(1)),
        control("MJ1|1", "-50.00", source_system="MANUAL", landed=D),
        control("MJ3|1", "-5.00", "ACCR-1", source_system="MANUAL", landed=D),
        control("MJ3|2", "-7.00", "ACCR-1", source_system="MANUAL", landed=days(1)),
        control("JE9|1", "-3.00", "INV-9", landed=days(3)),
    )
    return invoices, payments, gl


def union(frames: list[DataFrame]) -> DataFrame:
    result = frames[0]
    for more in frames[1:]:
        result = result.unionByName(more)
    return result


def test_dates_are_each_date_alone(spark):
    invoices, payments, gl = multi_date_inputs(spark)
    run = [D, days(1), days(2)]
    together = reconcile_ap_gl_dates(
        invoices, payments, gl, run, materialize=lambda df: df.localCheckpoint()
    )

    alone = [reconcile(invoices, payments, gl, d) for d in run]
    for part in ("matches", "exceptions"):
        assert_df_equality(
            getattr(together, part),
            union([getattr(result, part) for result in alone]),
            ignore_row_order=True,
            ignore_nullable=True,
        )

    # The rows of each date, as the per-date reconciliation gave them before it was set-based.
    inv = lambda id_: f"ap_invoices:{id_}"  # noqa: E731
    gl_line = lambda id_: f"gl_journal_lines:{id_}"  # noqa: E731
    matches = together.matches.select(
        "business_date", "left_records", "right_records", "left_amount", "matched_on"
    )
    later = [
        ([inv("INV-DE")], [gl_line("JE8|1")], Decimal("80.00"), days(1)),
        ([inv("INV-1")], [gl_line("JE1|2")], Decimal("1000.00"), days(1)),
    ]
    expected_matches = [
        *[(days(1), *row) for row in later],
        *[(days(2), *row) for row in later],
        (days(2), [inv("INV-2")], [gl_line("JE2|1"), gl_line("JE2|2")], Decimal("200.00"), days(2)),
        (days(2), ["ap_payments:PAY-1"], [gl_line("JE3|1")], Decimal("-400.00"), days(2)),
    ]
    assert_df_equality(
        matches,
        local_frame(spark, expected_matches, matches.schema),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert {r["rule"] for r in together.matches.collect()} == {"REFERENCE"}
    exceptions = together.exceptions.select(
        "business_date", "exception_type", "records", "amount", "age_days"
    )
    accrual = [gl_line("MJ3|1"), gl_line("MJ3|2")]
    expected_exceptions = [
        (D, "AP_NOT_IN_GL", [inv("INV-1")], Decimal("1000.00"), 2),
        (D, "AP_NOT_IN_GL", ["ap_payments:PAY-1"], Decimal("-400.00"), 0),
        (D, "AP_NOT_IN_GL", [inv("INV-OLD")], Decimal("5.00"), LOOKBACK_DAYS),
        (D, "GL_NOT_IN_AP", [gl_line("MJ1|1")], Decimal("-50.00"), 0),
        (D, "GL_NOT_IN_AP", [gl_line("MJ3|1")], Decimal("-5.00"), 0),
        (D, "AMOUNT_MISMATCH", [inv("INV-2"), gl_line("JE2|1")], Decimal("40.00"), 0),
        (days(1), "AP_NOT_IN_GL", ["ap_payments:PAY-1"], Decimal("-400.00"), 1),
        (days(1), "GL_NOT_IN_AP", accrual, Decimal("-12.00"), 1),
        (days(1), "GL_NOT_IN_AP", [gl_line("MJ1|1")], Decimal("-50.00"), 1),
        (days(1), "AMOUNT_MISMATCH", [inv("INV-2"), gl_line("JE2|1")], Decimal("50.00"), 1),
        (days(2), "GL_NOT_IN_AP", accrual, Decimal("-12.00"), 2),
        (days(2), "GL_NOT_IN_AP", [gl_line("MJ1|1")], Decimal("-50.00"), 2),
    ]
    assert_df_equality(
        exceptions,
        local_frame(spark, expected_exceptions, exceptions.schema),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_balances_dates_are_each_date_alone(spark):
    invoices, payments, gl = multi_date_inputs(spark)
    run = [D, days(1), days(2)]
    together = ap_control_balances_dates(invoices, payments, gl, run)

    alone = union(
        [
            ap_control_balances(invoices, payments, gl, d).select(
                F.lit(d).alias("business_date"), "*"
            )
            for d in run
        ]
    )
    assert_df_equality(together, alone, ignore_row_order=True, ignore_nullable=True)

    # Cumulative (INV-OLD counts on every date), INV-2 once at its newest amount, as the per-date
    # balances gave them before they were set-based.
    zeros = (Decimal("0.00"),) * 3
    expected = [
        (D, "US01", "USD", Decimal("795.00"), Decimal("205.00"), Decimal("590.00")),
        (D, "GB01", "GBP", *zeros),
        (D, "DE01", "EUR", *zeros),
        (days(1), "US01", "USD", Decimal("805.00"), Decimal("1212.00"), Decimal("-407.00")),
        (days(1), "GB01", "GBP", *zeros),
        (days(1), "DE01", "EUR", Decimal("80.00"), Decimal("80.00"), Decimal("0.00")),
        (days(2), "US01", "USD", Decimal("805.00"), Decimal("862.00"), Decimal("-57.00")),
        (days(2), "GB01", "GBP", *zeros),
        (days(2), "DE01", "EUR", Decimal("80.00"), Decimal("80.00"), Decimal("0.00")),
    ]
    assert_df_equality(
        together,
        local_frame(spark, expected, together.schema),
        ignore_row_order=True,
        ignore_nullable=True,
    )
