"""Invoice documents ↔ AP subledger: the keys, every exception type and carry-forward, on tiny
frames of gold documents and silver AP invoices."""

from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from tests.transforms.test_carry_forward import checkpointed, states
from tests.transforms.test_recon_ap import INVOICE_SCHEMA
from tests.transforms.test_recon_cash import CURRENCY, D, days, usd
from transforms.frames import local_frame
from transforms.recon.carry_forward import reconcile_with_carry_forward
from transforms.recon.common import EXCEPTION_COLUMNS, MATCH_COLUMNS
from transforms.recon.documents import (
    DOCUMENT_SCHEMA,
    invoice_number_key,
    reconcile_documents_ap,
    reconcile_documents_ap_dates,
    vendor_key,
    vendors_agree,
)

FX_SCHEMA = "rate_date date, currency string, rate_to_usd decimal(18,8), business_date date"
EUR_RATE = Decimal("1.10")


def documents_df(spark: SparkSession, *rows: dict) -> DataFrame:
    """Gold invoice documents; each row states only what matters (``file``, ``number``, ...)."""
    data = [
        (
            r.get("landed", D),
            r["file"],
            r.get("vendor", "Acme Office Supply"),
            r.get("number"),
            r.get("date", r.get("landed", D)),
            r.get("currency", "USD"),
            None if r.get("total") is None else Decimal(r["total"]),
            r.get("sha", r["file"]),
        )
        for r in rows
    ]
    return local_frame(spark, data, DOCUMENT_SCHEMA)


def invoices_df(spark: SparkSession, *rows: dict) -> DataFrame:
    """Silver AP invoices (``id``, ``amount``, and ``po``, ``landed``, ``entity``, ``date``)."""
    data = []
    for r in rows:
        entity, landed = r.get("entity", "US01"), r.get("landed", D)
        amount, fx = Decimal(r["amount"]), Decimal(r.get("fx", "1"))
        data.append(
            (
                r["id"],
                entity,
                "V-1",
                r.get("vendor", "Acme Office Supply"),
                r.get("date", landed),
                None,
                amount,
                CURRENCY[entity],
                None,
                r.get("po", "PO-1"),
                "open",
                landed,
                fx,
                usd(amount, fx),
            )
        )
    return local_frame(spark, data, INVOICE_SCHEMA)


def fx_df(spark: SparkSession) -> DataFrame:
    rows = [
        (days(n), c, r, days(n))
        for n in range(-3, 3)
        for c, r in (("EUR", EUR_RATE), ("USD", Decimal(1)))
    ]
    return local_frame(spark, rows, FX_SCHEMA)


def reconcile(spark: SparkSession, documents: DataFrame, invoices: DataFrame, as_of=D):
    return reconcile_documents_ap(documents, invoices, fx_df(spark), as_of, checkpointed)


def view(spark: SparkSession, exceptions: DataFrame, *rows: tuple) -> None:
    """(type, entity, records, amount, currency, amount_usd) of each open exception."""
    actual = exceptions.select(
        "exception_type", "legal_entity", "records", "amount", "currency", "amount_usd"
    )
    expected = local_frame(
        spark,
        [
            (t, e, sorted(recs), Decimal(a), c, None if u is None else Decimal(u))
            for t, e, recs, a, c, u in rows
        ],
        "exception_type string, legal_entity string, records array<string>, "
        "amount decimal(18,2), currency string, amount_usd decimal(18,2)",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def doc(name: str, day=D) -> str:
    return f"invoice_documents:{day.isoformat()}|{name}"


def test_keys_ignore_case_spaces_and_punctuation_and_unread_vendors_agree(spark):
    rows = [
        ("# inv-0012", "INV0012", "Acme, Inc.", "Acme Inc", True),
        ("INV 0012", "INV0012", "ACME", "Acme Office Supply", True),
        ("Faktura Nr. 7/2026", "FAKTURANR72026", "Łódź Sp. z o.o.", "Globex", False),
        ("--", None, None, "Globex", True),
        (None, None, "Globex", None, True),
    ]
    df = local_frame(
        spark, [(n, d, a) for n, _, d, a, _ in rows], "number string, doc string, ap string"
    )
    got = df.select(
        invoice_number_key("number").alias("key"),
        vendor_key("doc").alias("doc_key"),
        vendors_agree(vendor_key("doc"), vendor_key("ap")).alias("agree"),
    ).collect()
    assert [(r["key"], r["agree"]) for r in got] == [(k, a) for _, k, _, _, a in rows]
    assert got[0]["doc_key"] == "acmeinc" and got[2]["doc_key"] == "łódźspzoo"


def test_agreeing_documents_match_and_a_different_total_or_date_is_an_exception(spark):
    documents = documents_df(
        spark,
        {
            "file": "ok.pdf",
            "number": "inv-1",
            "total": "100.00",
            "date": days(-1),
            "vendor": "ACME OFFICE SUPPLY",
        },
        {"file": "more.pdf", "number": "INV-2", "total": "230.00"},
        {"file": "early.pdf", "number": "INV-3", "total": "300.00", "date": days(-4)},
        {"file": "no_total.pdf", "number": "INV-4", "total": None},
        {"file": "pounds.pdf", "number": "INV-5", "total": "500.00", "currency": "GBP"},
    )
    invoices = invoices_df(
        spark,
        {"id": "INV-1", "amount": "100.00", "landed": days(-1)},
        {"id": "INV-2", "amount": "200.00"},
        {"id": "INV-3", "amount": "300.00"},
        {"id": "INV-4", "amount": "400.00"},
        {"id": "INV-5", "amount": "500.00", "entity": "DE01", "fx": "1.1"},
    )
    result = reconcile(spark, documents, invoices)

    assert result.matches.columns == MATCH_COLUMNS
    assert result.exceptions.columns == EXCEPTION_COLUMNS
    [match] = result.matches.collect()
    assert (match["recon"], match["rule"], match["left_records"], match["right_records"]) == (
        "document_ap",
        "REFERENCE",
        [doc("ok.pdf")],
        ["ap_invoices:INV-1"],
    )
    assert (match["left_amount"], match["right_amount"], match["matched_on"]) == (
        Decimal("100.00"),
        Decimal("100.00"),
        D,
    )
    view(
        spark,
        result.exceptions,
        (
            "DOC_AMOUNT_MISMATCH",
            "US01",
            [doc("more.pdf"), "ap_invoices:INV-2"],
            "30.00",
            "USD",
            "30.00",
        ),
        (
            "DOC_DATE_MISMATCH",
            "US01",
            [doc("early.pdf"), "ap_invoices:INV-3"],
            "300.00",
            "USD",
            "300.00",
        ),
        # An unread total, or one in another currency, confirms nothing of the AP amount.
        (
            "DOC_AMOUNT_MISMATCH",
            "US01",
            [doc("no_total.pdf"), "ap_invoices:INV-4"],
            "-400.00",
            "USD",
            "-400.00",
        ),
        (
            "DOC_AMOUNT_MISMATCH",
            "DE01",
            [doc("pounds.pdf"), "ap_invoices:INV-5"],
            "-500.00",
            "EUR",
            "-550.00",
        ),
    )
    details = {r["records"][-1]: r["detail"] for r in result.exceptions.collect()}
    assert details[doc("more.pdf")] == (
        "Invoice INV-2 of Acme Office Supply: document more.pdf states 230.00 USD, AP invoice "
        "INV-2 holds 200.00 USD (difference 30.00)"
    )
    assert details[doc("early.pdf")].endswith(f"is dated {days(-4)}, AP invoice INV-3 {D}")


def test_documents_ap_does_not_hold_are_reported_with_their_total_in_usd(spark):
    documents = documents_df(
        spark,
        {"file": "stray.pdf", "number": "INV-9", "total": "50.00", "currency": "EUR"},
        {"file": "other_vendor.pdf", "number": "INV-1", "total": "100.00", "vendor": "Globex"},
        {"file": "unread.pdf", "number": None, "total": None, "currency": None},
    )
    invoices = invoices_df(spark, {"id": "INV-1", "amount": "100.00", "po": None})
    result = reconcile(spark, documents, invoices)

    assert result.matches.count() == 0
    view(
        spark,
        result.exceptions,
        ("DOC_NOT_IN_AP", "GROUP", [doc("stray.pdf")], "50.00", "EUR", "55.00"),
        ("DOC_NOT_IN_AP", "GROUP", [doc("other_vendor.pdf")], "100.00", "USD", "100.00"),
        ("DOC_NOT_IN_AP", "GROUP", [doc("unread.pdf")], "0.00", None, None),
    )
    details = {r["records"][-1]: r["detail"] for r in result.exceptions.collect()}
    assert details[doc("unread.pdf")] == (
        "Document unread.pdf: no invoice number could be read, so it matches no AP invoice"
    )
    assert details[doc("stray.pdf")] == (
        f"Document stray.pdf: Invoice INV-9 of Acme Office Supply for 50.00 EUR dated {D} is not "
        "in the AP subledger (no invoice of that number and vendor)"
    )


def test_a_second_document_of_an_invoice_is_a_duplicate_and_the_first_still_matches(spark):
    documents = documents_df(
        spark,
        {"file": "a.pdf", "number": "INV-1", "total": "100.00", "sha": "s1", "landed": days(-2)},
        {"file": "a_resent.pdf", "number": "INV-1", "total": "100.00", "sha": "s1"},
        {"file": "a_rescan.png", "number": "INV 1", "total": "100.00", "vendor": None},
        {"file": "b.pdf", "number": "INV-7", "total": "70.00", "sha": "s7"},
        {"file": "b2.pdf", "number": "INV-7", "total": "70.00", "sha": "s7b"},
    )
    invoices = invoices_df(spark, {"id": "INV-1", "amount": "100.00", "landed": days(-2)})
    result = reconcile(spark, documents, invoices)

    assert [r["left_records"] for r in result.matches.collect()] == [[doc("a.pdf", days(-2))]]
    view(
        spark,
        result.exceptions,
        (
            "DUPLICATE_DOCUMENT",
            "US01",
            sorted([doc("a.pdf", days(-2)), doc("a_resent.pdf"), doc("a_rescan.png")]),
            "200.00",
            "USD",
            "200.00",
        ),
        ("DUPLICATE_DOCUMENT", "GROUP", [doc("b.pdf"), doc("b2.pdf")], "70.00", "USD", "70.00"),
        ("DOC_NOT_IN_AP", "GROUP", [doc("b.pdf")], "70.00", "USD", "70.00"),
    )
    [first] = [r for r in result.exceptions.collect() if r["legal_entity"] == "US01"]
    assert first["first_seen_date"] == days(-2) and first["age_days"] == 2
    assert first["detail"] == (
        f"Invoice INV-1 of Acme Office Supply landed as 3 documents: a.pdf ({days(-2)}), "
        f"a_rescan.png ({D}), a_resent.pdf ({D}, the same bytes as the first)"
    )


def test_only_po_invoices_of_a_date_with_documents_are_expected_to_have_one(spark):
    documents = documents_df(spark, {"file": "a.pdf", "number": "INV-1", "total": "100.00"})
    invoices = invoices_df(
        spark,
        {"id": "INV-1", "amount": "100.00"},
        {"id": "INV-2", "amount": "200.00", "entity": "GB01"},  # PO, same date: expected
        {"id": "INV-3", "amount": "300.00", "po": " "},  # no purchase order
        {"id": "INV-4", "amount": "400.00", "landed": days(-1)},  # no document landed that day
    )
    result = reconcile(spark, documents, invoices)

    view(
        spark,
        result.exceptions,
        ("AP_WITHOUT_DOC", "GB01", ["ap_invoices:INV-2"], "200.00", "GBP", "200.00"),
    )
    assert result.exceptions.first()["detail"] == (
        f"AP invoice INV-2 of Acme Office Supply for 200.00 GBP dated {D} (PO PO-1) has no "
        f"vendor document, though documents landed on {D}"
    )
    assert result.matches.count() == 1


def test_corrected_ap_invoice_and_late_document_close_matched_and_the_rest_carries(spark):
    yesterday = days(-1)
    documents = documents_df(
        spark,
        {"file": "a.pdf", "number": "INV-1", "total": "110.00", "landed": yesterday},
        {"file": "b.pdf", "number": "INV-2", "total": "200.00", "date": yesterday},
        {"file": "stray.pdf", "number": "INV-9", "total": "90.00", "landed": yesterday},
    )
    invoices = invoices_df(
        spark,
        {"id": "INV-1", "amount": "100.00", "landed": yesterday},
        {"id": "INV-1", "amount": "110.00", "date": yesterday},  # AP corrects it today
        {"id": "INV-2", "amount": "200.00", "landed": yesterday},  # its document lands today
    )
    result = reconcile_with_carry_forward(
        reconcile_documents_ap,
        documents,
        invoices,
        fx_df(spark),
        as_of=D,
        materialize=checkpointed,
    )
    a, b = ("ap_invoices:INV-1", doc("a.pdf", yesterday)), ("ap_invoices:INV-2",)
    assert states(result.exceptions) == [
        ("AP_WITHOUT_DOC", "closed", "matched", 1, yesterday, D, b),
        ("DOC_AMOUNT_MISMATCH", "closed", "matched", 1, yesterday, D, a),
        ("DOC_NOT_IN_AP", "open", None, 1, yesterday, None, (doc("stray.pdf", yesterday),)),
    ]
    assert result.matches.count() == 2


RUN = [days(-2), days(-1), D]


def multi_date_inputs(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Documents, AP invoices and FX rates over the run's dates, earlier landings mattering
    later."""
    documents = documents_df(
        spark,
        # Out of D's window, in D - 2's and D - 1's: its mismatch ages out of the run.
        {"file": "old.pdf", "number": "INV-8", "total": "80.00", "landed": days(-46)},
        # Mismatched on D - 2 and D - 1; AP corrects the invoice on D: a match.
        {"file": "a.pdf", "number": "INV-1", "total": "100.00", "landed": days(-2)},
        # The document of an invoice landed on D - 2 lands on D: AP_WITHOUT_DOC until then.
        {"file": "b.pdf", "number": "INV-2", "total": "200.00", "date": days(-2)},
        # Landed on D - 1 and again (the same bytes) on D: a duplicate on D only.
        {"file": "c.pdf", "number": "INV-3", "total": "300.00", "sha": "c", "landed": days(-1)},
        {"file": "c_resent.pdf", "number": "INV-3", "total": "300.00", "sha": "c"},
        # Not in AP, priced at its own landing date's rate every night (not the night's rate).
        {"file": "stray.pdf", "number": "INV-9", "total": "50.00", "currency": "EUR",
         "landed": days(-2)},
        # Landed after the run: no night of the run reads it.
        {"file": "late.pdf", "number": "INV-1", "total": "100.00", "landed": days(1)},
    )  # fmt: skip
    invoices = invoices_df(
        spark,
        {"id": "INV-8", "amount": "85.00", "landed": days(-46)},
        {"id": "INV-1", "amount": "110.00", "landed": days(-2), "date": days(-2)},
        {"id": "INV-1", "amount": "100.00", "date": days(-2)},
        {"id": "INV-2", "amount": "200.00", "landed": days(-2), "date": days(-2)},
        {"id": "INV-3", "amount": "300.00", "landed": days(-1), "date": days(-1)},
        {"id": "INV-4", "amount": "400.00", "landed": days(1)},
    )
    # EUR's rate moves every day: 1.10 on D - 2, 1.20 on D - 1, 1.30 on D.
    fx = local_frame(
        spark,
        [(days(n), "EUR", Decimal("1.30") + Decimal("0.10") * n, days(n)) for n in range(-3, 1)],
        FX_SCHEMA,
    )
    return documents, invoices, fx


def test_a_run_of_dates_is_each_date_reconciled_alone(spark):
    documents, invoices, fx = multi_date_inputs(spark)
    result = reconcile_documents_ap_dates(documents, invoices, fx, RUN, checkpointed)
    alone = [reconcile_documents_ap(documents, invoices, fx, d, checkpointed) for d in RUN]
    for got, one_by_one in (
        (result.matches, [r.matches for r in alone]),
        (result.exceptions, [r.exceptions for r in alone]),
    ):
        union = one_by_one[0].unionByName(one_by_one[1]).unionByName(one_by_one[2])
        assert_df_equality(got, union, ignore_row_order=True)

    # Each date's rows, as the reconciliation of one date gave them before it was set-based.
    a, b, c = doc("a.pdf", days(-2)), doc("b.pdf"), doc("c.pdf", days(-1))
    assert sorted(
        tuple(r)
        for r in result.matches.select(
            "business_date", "left_records", "right_records", "left_amount", "amount_usd",
            "matched_on",
        ).collect()
    ) == [
        (days(-1), [c], ["ap_invoices:INV-3"], Decimal("300.00"), Decimal("300.00"), days(-1)),
        (D, [a], ["ap_invoices:INV-1"], Decimal("100.00"), Decimal("100.00"), D),
        (D, [c], ["ap_invoices:INV-3"], Decimal("300.00"), Decimal("300.00"), days(-1)),
        (D, [b], ["ap_invoices:INV-2"], Decimal("200.00"), Decimal("200.00"), D),
    ]  # fmt: skip
    old, stray = doc("old.pdf", days(-46)), doc("stray.pdf", days(-2))
    without = (
        "AP invoice INV-2 of Acme Office Supply for 200.00 USD dated 2026-11-18 (PO PO-1) has no "
        "vendor document, though documents landed on 2026-11-18"
    )
    old_detail = (
        "Invoice INV-8 of Acme Office Supply: document old.pdf states 80.00 USD, AP invoice INV-8 "
        "holds 85.00 USD (difference -5.00)"
    )
    a_detail = (
        "Invoice INV-1 of Acme Office Supply: document a.pdf states 100.00 USD, AP invoice INV-1 "
        "holds 110.00 USD (difference -10.00)"
    )
    stray_detail = (
        "Document stray.pdf: Invoice INV-9 of Acme Office Supply for 50.00 EUR dated 2026-11-18 "
        "is not in the AP subledger (no invoice of that number and vendor)"
    )
    duplicate = (
        "Invoice INV-3 of Acme Office Supply landed as 2 documents: c.pdf (2026-11-19), "
        "c_resent.pdf (2026-11-20, the same bytes as the first)"
    )
    m = Decimal
    expected = [
        (n, "AP_WITHOUT_DOC", "US01", days(-2), age, m("200.00"), "USD", m("200.00"),
         ["ap_invoices:INV-2"], without)
        for n, age in ((days(-2), 0), (days(-1), 1))
    ] + [
        (n, "DOC_AMOUNT_MISMATCH", "US01", days(-46), age, m("-5.00"), "USD", m("-5.00"),
         ["ap_invoices:INV-8", old], old_detail)
        for n, age in ((days(-2), 44), (days(-1), 45))
    ] + [
        (n, "DOC_AMOUNT_MISMATCH", "US01", days(-2), age, m("-10.00"), "USD", m("-10.00"),
         ["ap_invoices:INV-1", a], a_detail)
        for n, age in ((days(-2), 0), (days(-1), 1))
    ] + [
        (n, "DOC_NOT_IN_AP", "GROUP", days(-2), age, m("50.00"), "EUR", m("55.00"), [stray],
         stray_detail)
        for n, age in ((days(-2), 0), (days(-1), 1), (D, 2))
    ] + [
        (D, "DUPLICATE_DOCUMENT", "US01", days(-1), 1, m("300.00"), "USD", m("300.00"),
         [c, doc("c_resent.pdf")], duplicate),
    ]  # fmt: skip
    assert sorted(
        tuple(r)
        for r in result.exceptions.select(
            "business_date", "exception_type", "legal_entity", "first_seen_date", "age_days",
            "amount", "currency", "amount_usd", "records", "detail",
        ).collect()
    ) == sorted(expected)  # fmt: skip
