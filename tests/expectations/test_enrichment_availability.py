"""The gate knows a failed night: failed and fallback shares per task, with their thresholds.

A mostly-failed enrichment blocks its gold partition; a night answered partly by the offline
fallback publishes with a visible warning.
"""

from datetime import date

from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from expectations import hr_cases, reconciliation
from expectations.expense_lines import (
    MAX_FAILED_SHARE,
    MAX_FALLBACK_SHARE,
    gold_expense_lines_suite,
)
from expectations.runner import validate
from expectations.suite import ERROR, WARN
from tests.gold_helpers import gate, line
from transforms.frames import local_frame

CIRCUIT = "circuit open after 5 consecutive failures: InternalServerError: Error code: 500"


def failed(i: int) -> dict:
    """A line neither the LLM nor the fallback answered."""
    row = line(i, enrichment_status="failed", spend_category=None, confidence=None, error=CIRCUIT)
    row.update(failure_kind="circuit_open", source="llm", model="gpt-4o-mini")
    return row


def fell_back(i: int) -> dict:
    """A line the offline model answered because the LLM did not."""
    row = line(i, error=FALLBACK_ERROR_PREFIX + CIRCUIT)
    row["failure_kind"] = "fallback"
    return row


def verdicts(report) -> set[tuple[str, str]]:
    return {(r.name, r.severity) for r in report.results if not r.success}


def test_thresholds_sit_beside_the_rules() -> None:
    rules = {r.name: r for r in gold_expense_lines_suite(date(2026, 3, 31)).rules}
    assert rules["failed_share"].severity == ERROR
    assert rules["fallback_share"].severity == WARN
    assert rules["failed_share"].expectation.mostly == 1 - MAX_FAILED_SHARE
    assert rules["fallback_share"].expectation.mostly == 1 - MAX_FALLBACK_SHARE
    # Every enriched gold table carries them, per task.
    hr = {r.name for r in hr_cases.gold_hr_cases_suite().rules}
    assert {"case_type_failed_share", "case_type_fallback_share"} <= hr
    assert {"urgency_failed_share", "urgency_fallback_share"} <= hr
    notes = {r.name for r in reconciliation.exception_notes_suite().rules}
    assert {"failed_share", "fallback_share"} <= notes
    narrative = {r.name: r.severity for r in reconciliation.close_narrative_suite().rules}
    assert narrative["narrative_failed_share"] == ERROR
    assert narrative["narrative_fallback_share"] == WARN


def test_a_mostly_failed_night_is_not_published(spark, lakehouse_root) -> None:
    rows = [failed(i) for i in range(3)] + [line(i) for i in range(3, 10)]  # 30% failed
    report, published = gate(spark, rows)
    assert ("failed_share", ERROR) in verdicts(report)
    assert published is None


def test_a_night_answered_by_the_fallback_publishes_with_a_warning(spark, lakehouse_root) -> None:
    # Half the rows from the fallback, one failed (10%: under the blocking threshold).
    rows = [fell_back(i) for i in range(5)] + [failed(5)] + [line(i) for i in range(6, 10)]
    report, published = gate(spark, rows)
    assert verdicts(report) == {("fallback_share", WARN), ("enriched_share", WARN)}
    assert published is not None
    [fallback] = [r for r in report.results if r.name == "fallback_share"]
    assert fallback.unexpected_count == 5


def test_narratives_the_template_wrote_for_the_llm_warn(spark) -> None:
    schema = "legal_entity string, status string, source string, narrative string, error string"
    fallback_row = ("US01", "ok", "rule", "US01: 2 exceptions open.", FALLBACK_ERROR_PREFIX + "x")
    rows = [fallback_row, ("GB01", "ok", "llm", "GB01: all matched.", None)]
    report = validate(local_frame(spark, rows, schema), reconciliation.close_narrative_suite())
    assert verdicts(report) == {("narrative_fallback_share", WARN)}
    rows = [("US01", "failed", "llm", None, "InternalServerError"), rows[1]]
    report = validate(local_frame(spark, rows, schema), reconciliation.close_narrative_suite())
    assert ("narrative_failed_share", ERROR) in verdicts(report)
