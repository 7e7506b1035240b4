"""Bank ↔ GL cash reconciliation: every rule, the window and determinism, on tiny silver frames."""

from datetime import date, timedelta
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms.frames import local_frame
from transforms.recon.cash import LOOKBACK_DAYS, reconcile_bank_gl, reconcile_bank_gl_dates
from transforms.recon.common import EXCEPTION_COLUMNS, MATCH_COLUMNS

D = date(2026, 11, 20)
BANK_SCHEMA = (
    "bank_account string, statement_line_id string, value_date date, amount decimal(18,2), "
    "currency string, counterparty string, reference string, narrative string, "
    "business_date date, fx_rate_to_usd decimal(18,8), amount_usd decimal(18,2)"
)
GL_SCHEMA = (
    "journal_id string, line_number int, legal_entity string, posting_date date, account string, "
    "cost_centre string, debit decimal(18,2), credit decimal(18,2), currency string, "
    "description string, source_system string, reference string, business_date date, "
    "fx_rate_to_usd decimal(18,8), debit_usd decimal(18,2), credit_usd decimal(18,2), "
    "signed_amount decimal(18,2), signed_amount_usd decimal(18,2)"
)
CURRENCY = {"US01": "USD", "GB01": "GBP", "DE01": "EUR"}


def reconcile(bank: DataFrame, gl: DataFrame, as_of: date):
    """The reconciliation as the close runs it: its intermediate results checkpointed (planning
    the whole plan inlined cost more than running it: one test took 70 s so, 18 s checkpointed)."""
    return reconcile_bank_gl(bank, gl, as_of, materialize=lambda df: df.localCheckpoint())


def days(n: int) -> date:
    return D + timedelta(days=n)


def usd(amount: Decimal, fx: Decimal) -> Decimal:
    return (amount * fx).quantize(Decimal("0.01"))


def bank_df(spark: SparkSession, *rows: dict) -> DataFrame:
    """Silver bank lines; each row states only what matters (``id``, ``amount``, ...)."""
    data = []
    for r in rows:
        account = r.get("account", "US01-OPER-001")
        landed = r.get("landed", D)
        amount = Decimal(str(r["amount"]))
        fx = Decimal(str(r.get("fx", "1")))
        data.append(
            (
                account,
                r["id"],
                r.get("value_date", landed),
                amount,
                r.get("currency", CURRENCY.get(account[:4], "USD")),
                None,
                r.get("ref"),
                None,
                landed,
                fx,
                usd(amount, fx),
            )
        )
    return local_frame(spark, data, BANK_SCHEMA)


def gl_df(spark: SparkSession, *rows: dict) -> DataFrame:
    """Silver GL lines; ``amount`` is signed (debit − credit), ``id`` is ``"JE|line"``."""
    data = []
    for r in rows:
        journal, line = r["id"].split("|")
        entity = r.get("entity", "US01")
        landed = r.get("landed", D)
        signed = Decimal(str(r["amount"]))
        fx = Decimal(str(r.get("fx", "1")))
        debit = max(signed, Decimal("0.00"))
        credit = max(-signed, Decimal("0.00"))
        data.append(
            (
                journal,
                int(line),
                entity,
                r.get("posting_date", landed),
                r.get("account", "1010"),
                None,
                debit,
                credit,
                r.get("currency", CURRENCY[entity]),
                None,
                r.get("source_system", "TREASURY"),
                r.get("ref"),
                landed,
                fx,
                usd(debit, fx),
                usd(credit, fx),
                signed,
                usd(signed, fx),
            )
        )
    return local_frame(spark, data, GL_SCHEMA)


def bank_rec(id_: str, account: str = "US01-OPER-001") -> str:
    return f"bank_statement_lines:{account}|{id_}"


def gl_rec(id_: str) -> str:
    return f"gl_journal_lines:{id_}"


def match_view(
    spark: SparkSession, matches: DataFrame, *rows: tuple
) -> tuple[DataFrame, DataFrame]:
    """(actual, expected) on rule, left records, right records: what a match test states."""
    actual = matches.select("rule", "left_records", "right_records")
    expected = local_frame(
        spark, list(rows), "rule string, left_records array<string>, right_records array<string>"
    )
    return actual, expected


def exception_view(
    spark: SparkSession, exceptions: DataFrame, *rows: tuple
) -> tuple[DataFrame, DataFrame]:
    """(actual, expected) on type, records, amount, age."""
    actual = exceptions.select("exception_type", "records", "amount", "age_days")
    expected = local_frame(
        spark,
        [(t, recs, Decimal(str(a)), age) for t, recs, a, age in rows],
        "exception_type string, records array<string>, amount decimal(18,2), age_days int",
    )
    return actual, expected


def assert_same(pair: tuple[DataFrame, DataFrame]) -> None:
    assert_df_equality(*pair, ignore_row_order=True, ignore_nullable=True)


def test_reference_match_one_to_one_in_output_shapes(spark):
    bank = bank_df(spark, {"id": "B1", "amount": "1234.56", "ref": "RCPT-1", "landed": days(-1)})
    gl = gl_df(
        spark,
        {"id": "JE1|1", "amount": "1234.56", "ref": "RCPT-1", "landed": days(-2)},
        {"id": "JE1|2", "amount": "-1234.56", "account": "1200", "ref": "RCPT-1"},
    )
    result = reconcile(bank, gl, D)

    assert result.matches.columns == MATCH_COLUMNS
    assert result.exceptions.columns == EXCEPTION_COLUMNS
    assert result.exceptions.count() == 0
    expected = local_frame(
        spark,
        [
            (
                D,
                "bank_gl",
                "REFERENCE",
                "US01",
                [bank_rec("B1")],
                [gl_rec("JE1|1")],
                Decimal("1234.56"),
                Decimal("1234.56"),
                "USD",
                Decimal("1234.56"),
                days(-1),
            )
        ],
        "business_date date, recon string, rule string, legal_entity string, "
        "left_records array<string>, right_records array<string>, left_amount decimal(18,2), "
        "right_amount decimal(18,2), currency string, amount_usd decimal(18,2), matched_on date",
    )
    assert_df_equality(result.matches.drop("match_id"), expected, ignore_nullable=True)
    assert result.matches.first()["match_id"] == reconcile(bank, gl, D).matches.first()["match_id"]


def test_reference_within_tolerance_matches(spark):
    bank = bank_df(spark, {"id": "B1", "amount": "100.00", "ref": "R1"})
    gl = gl_df(spark, {"id": "JE1|1", "amount": "100.01", "ref": "R1"})
    result = reconcile(bank, gl, D)
    assert_same(
        match_view(spark, result.matches, ("REFERENCE", [bank_rec("B1")], [gl_rec("JE1|1")]))
    )
    assert result.exceptions.count() == 0


def test_reference_beyond_tolerance_is_amount_mismatch(spark):
    bank = bank_df(spark, {"id": "B1", "amount": "100.00", "ref": "R1", "landed": days(-2)})
    gl = gl_df(spark, {"id": "JE1|1", "amount": "100.02", "ref": "R1"})
    result = reconcile(bank, gl, D)
    assert result.matches.count() == 0
    assert_same(
        exception_view(
            spark,
            result.exceptions,
            ("AMOUNT_MISMATCH", [bank_rec("B1"), gl_rec("JE1|1")], "-0.02", 2),
        )
    )
    row = result.exceptions.first()
    assert row["rule"] == "REFERENCE"
    assert row["detail"] == "Reference R1: bank 100.00 USD vs GL cash 100.02 USD (difference -0.02)"


def test_one_bank_line_settles_several_postings(spark):
    bank = bank_df(spark, {"id": "B1", "amount": "300.00", "ref": "BATCH-7"})
    gl = gl_df(
        spark,
        {"id": "JE1|1", "amount": "100.00", "ref": "BATCH-7"},
        {"id": "JE2|1", "amount": "200.00", "ref": "BATCH-7"},
    )
    result = reconcile(bank, gl, D)
    assert_same(
        match_view(
            spark,
            result.matches,
            ("REFERENCE", [bank_rec("B1")], [gl_rec("JE1|1"), gl_rec("JE2|1")]),
        )
    )
    assert result.exceptions.count() == 0


def test_several_bank_lines_for_one_posting(spark):
    bank = bank_df(
        spark,
        {"id": "B1", "amount": "-40.00", "ref": "PAY-9"},
        {"id": "B2", "amount": "-60.00", "ref": "PAY-9"},
    )
    gl = gl_df(spark, {"id": "JE1|1", "amount": "-100.00", "ref": "PAY-9"})
    result = reconcile(bank, gl, D)
    assert_same(
        match_view(
            spark,
            result.matches,
            ("REFERENCE", [bank_rec("B1"), bank_rec("B2")], [gl_rec("JE1|1")]),
        )
    )


def test_amount_and_date_window_without_reference(spark):
    bank = bank_df(
        spark,
        {"id": "B1", "amount": "50.00", "value_date": days(-2)},
        {"id": "B2", "amount": "75.00", "value_date": days(-4)},
    )
    gl = gl_df(
        spark,
        {"id": "JE1|1", "amount": "50.01", "posting_date": D},
        {"id": "JE2|1", "amount": "75.00", "posting_date": D},
    )
    result = reconcile(bank, gl, D)
    assert_same(
        match_view(
            spark, result.matches, ("AMOUNT_DATE_WINDOW", [bank_rec("B1")], [gl_rec("JE1|1")])
        )
    )
    assert_same(
        exception_view(
            spark,
            result.exceptions,
            ("BANK_NOT_IN_GL", [bank_rec("B2")], "75.00", 0),
            ("GL_NOT_IN_BANK", [gl_rec("JE2|1")], "75.00", 0),
        )
    )


def test_window_rule_needs_same_entity_and_currency(spark):
    bank = bank_df(spark, {"id": "B1", "amount": "50.00", "account": "GB01-OPER-001"})
    gl = gl_df(spark, {"id": "JE1|1", "amount": "50.00", "entity": "US01"})
    result = reconcile(bank, gl, D)
    assert result.matches.count() == 0
    assert result.exceptions.count() == 2


def test_mutual_best_is_deterministic_and_prefers_nearer_date(spark):
    bank_rows = [
        {"id": "B1", "amount": "80.00", "value_date": days(-1)},
        {"id": "B2", "amount": "80.00", "value_date": days(-3)},
    ]
    gl_rows = [
        {"id": "JE9|1", "amount": "80.00", "posting_date": days(-3)},
        {"id": "JE1|1", "amount": "80.00", "posting_date": days(-4)},
        {"id": "JE5|1", "amount": "80.00", "posting_date": days(-1)},
    ]
    expected_matches = [
        ("AMOUNT_DATE_WINDOW", [bank_rec("B1")], [gl_rec("JE5|1")]),
        ("AMOUNT_DATE_WINDOW", [bank_rec("B2")], [gl_rec("JE9|1")]),
    ]
    result = reconcile(bank_df(spark, *bank_rows), gl_df(spark, *gl_rows), D)
    assert_same(match_view(spark, result.matches, *expected_matches))
    assert_same(
        exception_view(spark, result.exceptions, ("GL_NOT_IN_BANK", [gl_rec("JE1|1")], "80.00", 0))
    )

    shuffled = reconcile(
        bank_df(spark, *reversed(bank_rows)).repartition(2),
        gl_df(spark, *reversed(gl_rows)).repartition(3),
        D,
    )
    assert_df_equality(
        result.matches, shuffled.matches, ignore_row_order=True, ignore_nullable=True
    )
    assert_df_equality(
        result.exceptions, shuffled.exceptions, ignore_row_order=True, ignore_nullable=True
    )


def test_mutual_best_equal_distance_ties_break_on_record_id(spark):
    bank = bank_df(spark, {"id": "B1", "amount": "10.00", "value_date": D})
    gl = gl_df(
        spark,
        {"id": "JE2|1", "amount": "10.00", "posting_date": days(-1)},
        {"id": "JE1|1", "amount": "10.00", "posting_date": days(-1)},
    )
    result = reconcile(bank, gl, D)
    assert_same(
        match_view(
            spark, result.matches, ("AMOUNT_DATE_WINDOW", [bank_rec("B1")], [gl_rec("JE1|1")])
        )
    )


def test_unmatched_lines_have_amounts_ages_ids_and_detail(spark):
    bank = bank_df(
        spark,
        {
            "id": "B1",
            "amount": "1234.56",
            "account": "DE01-OPER-001",
            "ref": "RCPT-1",
            "landed": days(-5),
            "value_date": days(-6),
            "fx": "1.10",
        },
    )
    gl = gl_df(spark, {"id": "JE1|2", "amount": "-20.00", "entity": "GB01", "fx": "1.25"})
    result = reconcile(bank, gl, D)
    actual = result.exceptions.select(
        "business_date",
        "exception_type",
        "legal_entity",
        "status",
        "resolution",
        "first_seen_date",
        "closed_on",
        "age_days",
        "amount",
        "currency",
        "amount_usd",
        "records",
        "rule",
        "detail",
    )
    expected = local_frame(
        spark,
        [
            (
                D,
                "BANK_NOT_IN_GL",
                "DE01",
                "open",
                None,
                days(-5),
                None,
                5,
                Decimal("1234.56"),
                "EUR",
                Decimal("1358.02"),
                [bank_rec("B1", "DE01-OPER-001")],
                "UNMATCHED",
                "Bank line B1 on DE01-OPER-001 of 1,234.56 EUR on 2026-11-14 (ref RCPT-1) "
                "has no GL cash posting",
            ),
            (
                D,
                "GL_NOT_IN_BANK",
                "GB01",
                "open",
                None,
                D,
                None,
                0,
                Decimal("-20.00"),
                "GBP",
                Decimal("-25.00"),
                [gl_rec("JE1|2")],
                "UNMATCHED",
                "GL cash posting JE1 line 2 of -20.00 GBP on 2026-11-20 (ref none) "
                "has no bank statement line",
            ),
        ],
        "business_date date, exception_type string, legal_entity string, status string, "
        "resolution string, first_seen_date date, closed_on date, age_days int, "
        "amount decimal(18,2), currency string, amount_usd decimal(18,2), records array<string>, "
        "rule string, detail string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)

    # The id is stable: the same item a day later keeps it (only the age moves).
    later = reconcile(bank, gl, days(1))
    ids = lambda df: sorted(r["exception_id"] for r in df.collect())  # noqa: E731
    assert ids(later.exceptions) == ids(result.exceptions)
    assert sorted(r["age_days"] for r in later.exceptions.collect()) == [1, 6]


def test_unknown_bank_account_is_reported_not_dropped(spark):
    bank = bank_df(
        spark, {"id": "B1", "amount": "9.99", "account": "XX99-OPER-001", "currency": "CHF"}
    )
    result = reconcile(bank, gl_df(spark, {"id": "JE1|1", "amount": "1.00"}), D)
    row = result.exceptions.where(F.col("exception_type") == "BANK_NOT_IN_GL").first()
    assert (row["legal_entity"], row["currency"]) == ("UNKNOWN", "CHF")
    assert "unknown bank account XX99-OPER-001" in row["detail"]


def test_window_edges(spark):
    oldest = days(-LOOKBACK_DAYS)
    bank = bank_df(
        spark,
        {"id": "OLDEST", "amount": "1.00", "landed": oldest},
        {"id": "TOO-OLD", "amount": "2.00", "landed": oldest - timedelta(days=1)},
        {"id": "FUTURE", "amount": "3.00", "landed": days(1)},
    )
    gl = gl_df(
        spark,
        {"id": "JE1|1", "amount": "4.00", "landed": oldest - timedelta(days=1)},
        {"id": "JE2|1", "amount": "5.00", "landed": days(1)},
    )
    result = reconcile(bank, gl, D)
    assert result.matches.count() == 0
    assert_same(
        exception_view(
            spark,
            result.exceptions,
            ("BANK_NOT_IN_GL", [bank_rec("OLDEST")], "1.00", LOOKBACK_DAYS),
        )
    )


def multi_date_inputs(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    """Bank and GL lines landing over several nights, where earlier nights matter for later ones.

    As of ``D``, ``days(1)`` and ``days(2)``: R1's posting lands a day late (an exception, then a
    match); B2 landed twice (counted once) and prefers, once it has landed, a GL line of the same
    amount nearer its date; R5's GL side is completed over two nights (bank only, then a mismatch,
    then a match); OLD leaves the window after ``D``; B6 (unknown account) lands on ``days(1)``.
    """
    bank = bank_df(
        spark,
        {"id": "B1", "amount": "100.00", "ref": "R1", "landed": days(-2)},
        {"id": "B2", "amount": "60.00", "value_date": D, "landed": D},
        {"id": "B2", "amount": "60.00", "value_date": D, "landed": days(1)},
        {"id": "B4", "amount": "80.00", "value_date": D, "landed": D},
        {"id": "B5", "amount": "100.00", "ref": "R5", "landed": D},
        {"id": "OLD", "amount": "1.00", "landed": days(-LOOKBACK_DAYS)},
        {
            "id": "B6",
            "amount": "9.99",
            "account": "XX99-OPER-001",
            "currency": "CHF",
            "landed": days(1),
        },
    )
    gl = gl_df(
        spark,
        {"id": "JE1|1", "amount": "100.00", "ref": "R1", "landed": days(1)},
        {"id": "JE2|1", "amount": "60.00", "posting_date": days(-1), "landed": D},
        {"id": "JE3|1", "amount": "60.00", "posting_date": D, "landed": days(1)},
        {"id": "JE4|1", "amount": "80.00", "posting_date": D, "landed": days(2)},
        {"id": "JE8|1", "amount": "90.00", "ref": "R5", "landed": days(1)},
        {"id": "JE8|2", "amount": "10.00", "ref": "R5", "landed": days(2)},
        {"id": "JE9|1", "amount": "50.00", "account": "1200", "landed": D},
        {"id": "JE10|1", "amount": "7.00", "landed": days(3)},
    )
    return bank, gl


def test_dates_are_each_date_alone(spark):
    bank, gl = multi_date_inputs(spark)
    run = [D, days(1), days(2)]
    together = reconcile_bank_gl_dates(bank, gl, run, materialize=lambda df: df.localCheckpoint())

    alone = [reconcile(bank, gl, d) for d in run]
    for part in ("matches", "exceptions"):
        each = getattr(alone[0], part)
        for more in alone[1:]:
            each = each.unionByName(getattr(more, part))
        assert_df_equality(
            getattr(together, part), each, ignore_row_order=True, ignore_nullable=True
        )

    # The rows of each date, as the per-date reconciliation gave them before it was set-based.
    b, g = bank_rec, gl_rec
    matches = together.matches.select(
        "business_date", "rule", "left_records", "right_records", "matched_on"
    )
    window, reference = "AMOUNT_DATE_WINDOW", "REFERENCE"
    assert_same(
        (
            matches,
            local_frame(
                spark,
                [
                    (D, window, [b("B2")], [g("JE2|1")], D),
                    (days(1), window, [b("B2")], [g("JE3|1")], days(1)),
                    (days(1), reference, [b("B1")], [g("JE1|1")], days(1)),
                    (days(2), window, [b("B2")], [g("JE3|1")], days(1)),
                    (days(2), reference, [b("B1")], [g("JE1|1")], days(1)),
                    (days(2), window, [b("B4")], [g("JE4|1")], days(2)),
                    (days(2), reference, [b("B5")], [g("JE8|1"), g("JE8|2")], days(2)),
                ],
                matches.schema,
            ),
        )
    )
    exceptions = together.exceptions.select(
        "business_date", "exception_type", "records", "amount", "age_days"
    )
    bank_only, gl_only, mismatch = "BANK_NOT_IN_GL", "GL_NOT_IN_BANK", "AMOUNT_MISMATCH"
    unknown = b("B6", "XX99-OPER-001")
    assert_same(
        (
            exceptions,
            local_frame(
                spark,
                [
                    (D, bank_only, [b("B1")], Decimal("100.00"), 2),
                    (D, bank_only, [b("B4")], Decimal("80.00"), 0),
                    (D, bank_only, [b("B5")], Decimal("100.00"), 0),
                    (D, bank_only, [b("OLD")], Decimal("1.00"), LOOKBACK_DAYS),
                    (days(1), gl_only, [g("JE2|1")], Decimal("60.00"), 1),
                    (days(1), mismatch, [b("B5"), g("JE8|1")], Decimal("10.00"), 1),
                    (days(1), bank_only, [b("B4")], Decimal("80.00"), 1),
                    (days(1), bank_only, [unknown], Decimal("9.99"), 0),
                    (days(2), gl_only, [g("JE2|1")], Decimal("60.00"), 2),
                    (days(2), bank_only, [unknown], Decimal("9.99"), 1),
                ],
                exceptions.schema,
            ),
        )
    )
