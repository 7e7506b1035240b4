"""Validating a run's dates together: each date's exact report, for a cost that does not grow with
the number of dates.

Rules that read differently on each date (a claim window, a drift reference) and rules on
aggregates (``mostly`` shares, a label distribution) are the cases that used to cost a GX
validation per date; each date must still get what ``validate`` gives it alone.
"""

from dataclasses import asdict
from datetime import date, timedelta

import pytest

from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from expectations import runner
from expectations.expense_lines import gold_expense_lines_suite
from expectations.reconciliation import close_narrative_suite
from expectations.runner import plan_dates, validate, validate_dates
from expectations.sources import silver_source_suite
from tests.gold_helpers import DAY, SCHEMA, line
from transforms.contracts import GL_JOURNAL_LINES
from transforms.frames import local_frame

# The drift reference of each date: the last date's recent mix is all meals, so its lines (all
# ground transport) drift; the others' do not.
DAYS = [DAY + timedelta(days=n) for n in range(4)]
EMPTY = DAY + timedelta(days=10)  # asked for, without rows


def _reference(day: date) -> dict[str, int]:
    return {"meals": 50} if day == DAYS[3] else {"ground_transport": 50, "meals": n(day)}


def n(day: date) -> int:
    return (day - DAY).days + 1


def _suite_for(day: date):
    return gold_expense_lines_suite(day, _reference(day))


def _failed(i: int, day: date) -> dict:
    """A line neither the LLM nor the fallback answered."""
    return line(
        i,
        day,
        enrichment_status="failed",
        spend_category=None,
        confidence=None,
        failure_kind="circuit_open",
        error="circuit open",
    )


def _rows(spark):
    """Ten lines a date. DAYS[1]: one claim dated after its business date (the date-dependent
    window) and one failed enrichment (10%: ``enriched_share`` fails, ``failed_share`` holds with
    one unexpected row). DAYS[2]: a claim dated DAYS[2], inside its own window though outside
    DAYS[1]'s. DAYS[3]: three failed enrichments (30%: ``failed_share`` blocks) and a drifted
    label mix."""
    rows = []
    for day in DAYS:
        for i in range(10):
            if day == DAYS[1] and i == 4:
                rows.append(line(i, day, transaction_date=DAYS[2]))
            elif day == DAYS[1] and i == 7:
                rows.append(_failed(i, day))
            elif day == DAYS[2] and i == 4:
                rows.append(line(i, day, transaction_date=DAYS[2]))
            elif day == DAYS[3] and i in (1, 5, 8):
                rows.append(_failed(i, day))
            else:
                rows.append(line(i, day))
    return local_frame(spark, rows, SCHEMA)


def _as_dicts(report) -> dict:
    out = asdict(report)
    # Where the Data Docs are, how many passes ran and on which engine are how the dates were
    # validated, not what was found.
    for field in ("docs_url", "failures_docs_url", "passes", "engine"):
        out.pop(field)
    return out


def test_the_rules_that_used_to_cost_a_validation_a_date_no_longer_do():
    plan = plan_dates({day: _suite_for(day) for day in DAYS})
    assert plan.per_date == ()
    assert "transaction_date_in_claim_window" in {r.name for r in plan.ranged}
    assert set(plan.counted) == {
        "enriched_share",
        "failed_share",
        "fallback_share",
        "refusal_and_truncation_rate",
        "spend_category_drift",
    }


def test_each_date_gets_exactly_the_report_it_gets_alone(spark):
    df = _rows(spark).cache()
    together = validate_dates(df, _suite_for, [*DAYS, EMPTY])
    for day in DAYS:
        alone = validate(df.where(df.business_date == day), _suite_for(day))
        assert _as_dicts(together[day]) == _as_dicts(alone), day
    assert together[EMPTY].passed and together[EMPTY].rows == 0
    failed = {day: {r.name for r in together[day].results if not r.success} for day in DAYS}
    assert failed == {
        DAYS[0]: set(),
        DAYS[1]: {"transaction_date_in_claim_window", "enriched_share"},
        DAYS[2]: set(),
        DAYS[3]: {"enriched_share", "failed_share", "spend_category_drift"},
    }
    by_name = {r.name: r for r in together[DAYS[3]].results}
    assert by_name["failed_share"].unexpected_count == 3
    assert sorted(k["line_id"] for k in by_name["failed_share"].offending_keys) == [2, 3, 3]
    assert by_name["spend_category_drift"].observed_value > 0.5
    # A share that holds with offending rows names none (as alone).
    held = {r.name: r for r in together[DAYS[1]].results}["failed_share"]
    assert held.success and held.unexpected_count == 1 and not held.offending_keys
    window = {r.name: r for r in together[DAYS[1]].results}["transaction_date_in_claim_window"]
    assert window.offending_keys == [{"report_id": "ER-1", "line_id": 2}]


def test_nulls_counted_per_date_as_gx_counts_them(spark):
    schema = (
        "legal_entity string, status string, source string, narrative string, error string, "
        "business_date date"
    )
    fell_back = FALLBACK_ERROR_PREFIX + "x"
    rows = [
        ("US01", "ok", "rule", "US01: 2 exceptions open.", fell_back, DAYS[0]),
        ("GB01", "ok", "llm", "GB01: all matched.", None, DAYS[0]),
        ("US01", "ok", "llm", "US01: all matched.", None, DAYS[1]),
        ("GB01", "failed", "llm", None, "InternalServerError", DAYS[1]),
        ("DE01", None, "llm", "DE01: all matched.", None, DAYS[1]),
        ("US01", "ok", "llm", "US01: all matched.", None, DAYS[2]),
    ]
    df = local_frame(spark, rows, schema)
    together = validate_dates(df, lambda _: close_narrative_suite(), DAYS[:3])
    for day in DAYS[:3]:
        alone = validate(df.where(df.business_date == day), close_narrative_suite())
        assert _as_dicts(together[day]) == _as_dicts(alone), day
    assert not together[DAYS[1]].passed and together[DAYS[2]].passed


@pytest.fixture
def gx_validations(monkeypatch):
    """How many GX validations (``_run_pass`` calls) ran."""
    calls = []
    run_pass = runner._run_pass

    def counted(*args, **kwargs):
        calls.append(args[2])
        return run_pass(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_pass", counted)
    return calls


def test_gx_validations_do_not_grow_with_the_dates(spark, gx_validations):
    def run(count: int) -> int:
        days = [DAY + timedelta(days=d) for d in range(count)]
        rows = [line(i, day) for day in days for i in range(4)]
        # One bad claim and one failed enrichment (25%) on the last date.
        rows[-1] = line(3, days[-1], transaction_date=days[-1] + timedelta(days=1))
        rows[-2] = _failed(2, days[-1])
        df = local_frame(spark, rows, SCHEMA)
        before = len(gx_validations)
        reports = validate_dates(df, _suite_for, days)
        assert [day for day in days if not reports[day].passed] == [days[-1]]
        assert sum(r.passes for r in reports.values()) == len(gx_validations) - before
        return len(gx_validations) - before

    # One pass over every date, one lookup of the failed rules' rows: whatever the dates.
    assert run(3) == run(10) == 2


def test_more_offending_rows_than_a_lookup_brings_back_are_looked_up_date_by_date(
    spark, monkeypatch, gx_validations
):
    # Two keys a date: over three dates a lookup brings back six rows; the bad currency has seven.
    monkeypatch.setattr(runner, "MAX_OFFENDING_KEYS", 2)
    days = DAYS[:3]
    rows = [line(i, day) for day in days for i in range(10)]
    rows[10:17] = [line(i, days[1], currency="XXX") for i in range(7)]
    # The failed share (three of ten) fits in the lookup.
    rows[20:23] = [_failed(i, days[2]) for i in range(3)]
    df = local_frame(spark, rows, SCHEMA)
    together = validate_dates(df, gold_expense_lines_suite, days)
    for day in days:
        alone = validate(df.where(df.business_date == day), gold_expense_lines_suite(day))
        assert _as_dicts(together[day]) == _as_dicts(alone), day
    [currency] = [r for r in together[days[1]].results if r.name == "currency_is_iso"]
    assert currency.unexpected_count == 7 and len(currency.offending_keys) == 2
    # The pass over all dates and the lookup of the share; then the currency rule on each date
    # (no date's count of it is known): a counts pass on each, and a lookup on the bad one.
    assert sum(r.passes for r in together.values()) == 2 + 3 + 1


def test_a_journal_is_netted_within_its_own_date(spark):
    # JE-1 is posted on both dates, unbalanced on each: netted over the run it would balance.
    from tests.expectations.test_close_gate import DAY as GL_DAY
    from tests.expectations.test_close_gate import GL_SCHEMA, gl_line

    days = [GL_DAY, GL_DAY + timedelta(days=1)]
    rows = [
        (*gl_line("JE-1", 1, "100.00", "0")[:-1], days[0]),
        (*gl_line("JE-2", 1, "5.00", "0")[:-1], days[0]),
        (*gl_line("JE-2", 2, "0", "5.00")[:-1], days[0]),
        (*gl_line("JE-1", 1, "0", "100.00")[:-1], days[1]),
    ]
    df = local_frame(spark, rows, GL_SCHEMA)

    def suite_for(day):
        return silver_source_suite(GL_JOURNAL_LINES, day)

    together = validate_dates(df, suite_for, days)
    for day in days:
        alone = validate(df.where(df.business_date == day), suite_for(day))
        assert _as_dicts(together[day]) == _as_dicts(alone), day
        assert not together[day].passed
