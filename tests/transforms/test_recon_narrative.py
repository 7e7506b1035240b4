"""The close narrative: the template's exact paragraphs offline, staged LLM summaries online."""

from datetime import date
from decimal import Decimal

from enrichment.prompts import CLOSE_NARRATIVE_TASK
from enrichment.providers.base import EMBEDDED, OPENAI, ProviderConfig
from tests.enrichment.fake_openai import FakeOpenAI
from transforms.recon.narrative import (
    NO_OPEN_LINE,
    TEMPLATE_MODEL_ID,
    close_narratives,
    exception_lines,
)

AS_OF = date(2026, 10, 2)
SCHEMA = (
    "business_date date, exception_id string, recon string, exception_type string, "
    "legal_entity string, status string, resolution string, first_seen_date date, "
    "age_days int, amount decimal(18,2), currency string, detail string"
)


def _exceptions(spark):
    rows = [
        ("e1", "bank_gl", "unmatched_bank", "US01", "open", None, date(2026, 9, 28), 4,
         Decimal("-1200.50"), "USD", "Bank line BANK:77 has no GL posting."),
        ("e2", "bank_gl", "unmatched_gl", "US01", "open", None, date(2026, 10, 1), 1,
         Decimal("300.00"), "USD", "GL line GL:5 has no bank line."),
        ("e3", "ap_gl", "ap_unposted", "US01", "closed", "matched", date(2026, 9, 30), 2,
         Decimal("50.00"), "USD", "Invoice INV-9 posted late."),
        ("e4", "payroll_hris", "ghost_employee", "GB01", "open", None, date(2026, 10, 2), 0,
         Decimal("2500.00"), "GBP", "Payment PAY-3 to an employee not on the roster."),
        ("old", "bank_gl", "unmatched_bank", "US01", "open", None, date(2026, 9, 1), 30,
         Decimal("1.00"), "USD", "Another night's row: not part of this narrative."),
    ]  # fmt: skip
    data = [(AS_OF if r[0] != "old" else date(2026, 10, 1), *r) for r in rows]
    summary = spark.createDataFrame([("US01",), ("GB01",), ("DE01",)], "legal_entity string")
    return spark.createDataFrame(data, SCHEMA), summary


def test_lines_cover_every_exception_of_the_night_and_every_entity(spark):
    exceptions, entities = _exceptions(spark)
    lines = {
        (r["legal_entity"], r["seq"]): r["line"]
        for r in exception_lines(exceptions, entities, AS_OF).collect()
    }
    assert set(lines) == {("US01", 1), ("US01", 2), ("US01", 3), ("GB01", 1), ("DE01", 0)}
    # Open first, oldest first; closed items last; a quiet entity says so.
    assert lines[("US01", 1)].startswith("unmatched_bank (bank_gl) open 4 days, since 2026-09-28")
    assert lines[("US01", 3)].startswith("ap_unposted (ap_gl) closed today (matched) after 2 days")
    assert lines[("DE01", 0)] == NO_OPEN_LINE


def test_offline_the_template_writes_each_paragraph_and_says_so(spark):
    exceptions, entities = _exceptions(spark)
    lines = exception_lines(exceptions, entities, AS_OF)
    out = {
        r["legal_entity"]: r
        for r in close_narratives(
            lines, AS_OF, ProviderConfig(kind=EMBEDDED), CLOSE_NARRATIVE_TASK
        ).collect()
    }
    assert out["US01"]["narrative"] == (
        "US01: 2 reconciliation exceptions are open (1 unmatched_bank, 1 unmatched_gl), "
        "USD 1,500.50 unexplained in absolute terms. The oldest is unmatched_bank in bank_gl, "
        "open 4 days since 2026-09-28. 1 exception closed today."
    )
    assert out["GB01"]["narrative"] == (
        "GB01: 1 reconciliation exception is open (1 ghost_employee), GBP 2,500.00 unexplained "
        "in absolute terms. The oldest is ghost_employee in payroll_hris, open 0 days since "
        "2026-10-02."
    )
    assert out["DE01"]["narrative"] == "DE01: no reconciliation exception is open."
    for row in out.values():
        assert (row["source"], row["model"], row["prompt_version"]) == (
            "rule",
            TEMPLATE_MODEL_ID,
            None,
        )
        assert row["business_date"] == AS_OF and row["tokens_in"] == 0
    assert (out["US01"]["open_exceptions"], out["US01"]["closed_today"]) == (2, 1)
    assert (out["DE01"]["open_exceptions"], out["DE01"]["closed_today"]) == (0, 0)


def test_with_an_llm_every_line_is_sent_and_the_paragraph_says_llm(spark):
    exceptions, entities = _exceptions(spark)
    lines = exception_lines(exceptions, entities, AS_OF)
    with FakeOpenAI() as server:
        config = ProviderConfig(kind=OPENAI, api_key="sk-test", base_url=server.base_url)
        out = {
            r["legal_entity"]: r
            for r in close_narratives(lines, AS_OF, config, CLOSE_NARRATIVE_TASK).collect()
        }
        sent = " ".join(r.user or "" for r in server.chat_requests())
    for line in [r["line"] for r in lines.collect()]:
        assert line in sent
    assert "Another night's row" not in sent
    for row in out.values():
        assert (row["status"], row["source"], row["model"]) == ("ok", "llm", "gpt-4o-mini")
        assert row["prompt_version"] == "close-narrative-v1" and row["tokens_in"] > 0
        assert row["narrative"]
