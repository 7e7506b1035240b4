"""The quality gate on the close: silver GL journals must balance, recon gold is published only
through its suite, and the Delta constraints refuse what no writer may write."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from assets.close import EXCEPTIONS
from expectations.reconciliation import recon_exceptions_suite
from expectations.runner import validate
from expectations.sources import silver_source_suite
from infra import wap
from infra.lakehouse import LakehouseResource
from transforms.contracts import GL_JOURNAL_LINES
from transforms.frames import local_frame
from transforms.recon.common import EXCEPTION_COLUMNS

DAY = date(2026, 11, 20)
GL_SCHEMA = (
    "journal_id string, line_number int, legal_entity string, posting_date date, account string, "
    "cost_centre string, debit decimal(18,2), credit decimal(18,2), currency string, "
    "description string, source_system string, reference string, fx_rate_to_usd decimal(18,8), "
    "debit_usd decimal(18,2), credit_usd decimal(18,2), business_date date"
)


def gl_line(journal: str, line: int, debit: str, credit: str) -> tuple:
    d, c = Decimal(debit), Decimal(credit)
    return (
        journal,
        line,
        "US01",
        DAY,
        "5000",
        None,
        d,
        c,
        "USD",
        None,
        "GL",
        None,
        Decimal(1),
        d,
        c,
        DAY,
    )


def test_unbalanced_journal_fails_the_silver_gl_suite_naming_its_lines(spark):
    rows = [
        gl_line("JE-1", 1, "100.00", "0"),
        gl_line("JE-1", 2, "0", "100.00"),
        gl_line("JE-2", 1, "50.00", "0"),
        gl_line("JE-2", 2, "0", "49.00"),
    ]
    report = validate(
        local_frame(spark, rows, GL_SCHEMA), silver_source_suite(GL_JOURNAL_LINES, DAY)
    )
    failed = {r.name: r for r in report.results if not r.success}
    assert set(failed) == {"journals_balance"}
    assert not report.passed
    assert sorted(
        (k["journal_id"], k["line_number"]) for k in failed["journals_balance"].offending_keys
    ) == [
        ("JE-2", 1),
        ("JE-2", 2),
    ]


def test_an_empty_partition_passes_every_rule_without_running_gx(spark):
    empty = local_frame(spark, [], GL_SCHEMA)
    report = validate(empty, silver_source_suite(GL_JOURNAL_LINES, DAY))
    assert report.passed and report.rows == 0
    assert {r.observed_value for r in report.results} == {"no rows to check"}


def exception_row(**changes) -> dict:
    row = {
        "business_date": DAY,
        "exception_id": "e1",
        "recon": "bank_gl",
        "exception_type": "BANK_NOT_IN_GL",
        "legal_entity": "US01",
        "status": "open",
        "resolution": None,
        "first_seen_date": DAY - timedelta(days=2),
        "closed_on": None,
        "age_days": 2,
        "amount": Decimal("-12.50"),
        "currency": "USD",
        "amount_usd": Decimal("-12.50"),
        "records": ["bank_statement_lines:US01-OPER-001|S1"],
        "rule": "UNMATCHED",
        "detail": "Bank line of -12.50 USD has no GL cash posting",
    }
    row.update(changes)
    return row


EXCEPTION_SCHEMA = (
    "business_date date, exception_id string, recon string, exception_type string, "
    "legal_entity string, status string, resolution string, first_seen_date date, closed_on date, "
    "age_days int, amount decimal(18,2), currency string, amount_usd decimal(18,2), "
    "records array<string>, rule string, detail string"
)


def stage_and_audit(spark, rows: list[dict]):
    lakehouse = LakehouseResource()
    df = local_frame(
        spark, [tuple(r[c] for c in EXCEPTION_COLUMNS) for r in rows], EXCEPTION_SCHEMA
    )
    version = wap.stage(lakehouse, df, EXCEPTIONS, DAY)
    return wap.audit(
        lakehouse, spark, EXCEPTIONS, DAY, version, recon_exceptions_suite(DAY), "test"
    )


@pytest.fixture(scope="module")
def published_exception(spark, tmp_path_factory):
    """A lakehouse where one good exception row passed the gate and is in gold (shared by the
    bad-row cases: each stages its bad row over the same date and must leave gold as it is)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_ROOT", str(tmp_path_factory.mktemp("gate")))
        lakehouse = LakehouseResource()
        good = stage_and_audit(spark, [exception_row()])
        assert good.passed, [r.name for r in good.results if not r.success]
        wap.publish(lakehouse, spark, EXCEPTIONS, DAY, "test")
        yield lakehouse


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ({"exception_type": "SOMETHING_ODD"}, "exception_type_known"),
        ({"status": "closed"}, "closure_consistent"),
        ({"age_days": 5}, "age_consistent"),
        ({"records": []}, "names_its_records"),
        (
            {
                "recon": "payroll_hris",
                "exception_type": "PAY_VARIANCE",
                "detail": "EMP-1 (jane.doe@example.com) paid 120% of expected",
            },
            "no_personal_data_in_detail",
        ),
    ],
)
def test_bad_exception_rows_are_stopped_at_the_gate(spark, published_exception, bad, rule):
    lakehouse = published_exception
    version = lakehouse.version(spark, EXCEPTIONS.gold)

    report = stage_and_audit(spark, [exception_row(exception_id="e2", **bad)])
    assert {r.name for r in report.results if not r.success} == {rule}
    with pytest.raises(wap.PublishRefusedError):
        wap.publish(lakehouse, spark, EXCEPTIONS, DAY, "test")
    assert lakehouse.version(spark, EXCEPTIONS.gold) == version
    assert [r["exception_id"] for r in lakehouse.read(spark, EXCEPTIONS.gold).collect()] == ["e1"]


def test_recon_gold_constraints_refuse_a_direct_write(spark, published_exception):
    lakehouse = published_exception
    bad = local_frame(
        spark,
        [tuple(exception_row(status="closed")[c] for c in EXCEPTION_COLUMNS)],
        EXCEPTION_SCHEMA,
    )
    with pytest.raises(Exception, match="closed_has_date"):
        bad.write.format("delta").mode("append").save(lakehouse.path(EXCEPTIONS.gold))
