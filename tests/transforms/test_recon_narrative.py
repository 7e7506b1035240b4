"""The close narrative: the template's exact paragraphs offline, staged LLM summaries online.

Online, paragraphs go through ``EnrichmentResource.summarize_groups`` as the asset composes it
(``assets/narrative.py``): requests are counted on the fake OpenAI server.
"""

from datetime import date
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from enrichment.prompts import CLOSE_NARRATIVE_TASK
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from infra.enrichment import GROUP_SUMMARY_CACHE, EnrichmentResource
from infra.lakehouse import LakehouseResource
from tests.enrichment.fake_openai import FakeOpenAI, Fault
from transforms.frames import local_frame
from transforms.recon.narrative import (
    NARRATIVE_GROUP,
    NO_OPEN_LINE,
    TEMPLATE_MODEL_ID,
    close_narratives,
    exception_lines,
    exception_lines_dates,
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
    summary = local_frame(spark, [("US01",), ("GB01",), ("DE01",)], "legal_entity string")
    return local_frame(spark, data, SCHEMA), summary


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


def test_a_runs_nights_are_told_in_one_plan_each_as_if_alone(spark):
    exceptions, _ = _exceptions(spark)
    before = date(2026, 10, 1)
    # Each night's entities are its own close summary's: DE01 reports on AS_OF only.
    dated = local_frame(
        spark,
        [(AS_OF, "US01"), (AS_OF, "GB01"), (AS_OF, "DE01"), (before, "US01"), (before, "GB01")],
        "business_date date, legal_entity string",
    )
    together = exception_lines_dates(exceptions, dated, [before, AS_OF])
    alone = exception_lines(exceptions, dated, AS_OF).unionByName(
        exception_lines(exceptions, dated, before)
    )
    assert_df_equality(together, alone, ignore_row_order=True)
    nights = {(r["business_date"], r["legal_entity"], r["seq"]) for r in together.collect()}
    assert nights == {
        (AS_OF, "US01", 1), (AS_OF, "US01", 2), (AS_OF, "US01", 3), (AS_OF, "GB01", 1),
        (AS_OF, "DE01", 0), (before, "US01", 1), (before, "GB01", 0),
    }  # fmt: skip


def test_offline_the_template_writes_each_paragraph_and_says_so(spark):
    exceptions, entities = _exceptions(spark)
    lines = exception_lines(exceptions, entities, AS_OF)
    out = {r["legal_entity"]: r for r in close_narratives(lines).collect()}
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


def test_a_paragraph_the_llm_failed_is_the_templates_and_says_why(spark):
    exceptions, entities = _exceptions(spark)
    lines = exception_lines(exceptions, entities, AS_OF)
    template = {r["legal_entity"]: r["narrative"] for r in close_narratives(lines).collect()}
    schema = (
        "business_date date, legal_entity string, status string, narrative string, stages int, "
        "truncated_rows int, tokens_in int, tokens_out int, cost_usd double, source string, "
        "model string, prompt_version string, error string"
    )
    why = "circuit open after 5 consecutive failures: InternalServerError: 500"
    budget = "run token budget exhausted before this record was sent"
    rows = [
        (AS_OF, "US01", "failed", None, 1, 0, 40, 0, 0.01, "llm", "gpt-4o-mini", "n-v1", why),
        (AS_OF, "GB01", "ok", "GB01: one ghost.", 1, 0, 30, 9, 0.02, "llm", "gpt-4o-mini", "n-v1",
         None),
        (AS_OF, "DE01", "skipped", None, 0, 0, 0, 0, 0.0, "llm", "gpt-4o-mini", "n-v1", budget),
    ]  # fmt: skip
    summaries = local_frame(spark, rows, schema)
    out = {r["legal_entity"]: r for r in close_narratives(lines, summaries, True).collect()}
    us = out["US01"]
    assert (us["status"], us["narrative"]) == ("ok", template["US01"])
    assert (us["source"], us["model"], us["prompt_version"]) == ("rule", TEMPLATE_MODEL_ID, None)
    assert us["error"] == FALLBACK_ERROR_PREFIX + why
    assert us["tokens_in"] == 40  # what the failed LLM calls cost is still reported
    assert (out["GB01"]["source"], out["GB01"]["error"]) == ("llm", None)
    assert out["DE01"]["status"] == "skipped"  # the budget's decision, not a failure
    # Without the fallback the failure stays visible as such.
    kept = {r["legal_entity"]: r for r in close_narratives(lines, summaries).collect()}
    assert (kept["US01"]["status"], kept["US01"]["narrative"]) == ("failed", None)


def _narrate(spark, server: FakeOpenAI, exceptions, entities) -> dict:
    """The night's paragraphs by entity, through the group summary cache, as the asset does."""
    lines = exception_lines(exceptions, entities, AS_OF)
    summaries = EnrichmentResource(api_key="sk-test", base_url=server.base_url).summarize_groups(
        LakehouseResource(),
        lines,
        CLOSE_NARRATIVE_TASK,
        group_cols=NARRATIVE_GROUP,
        text_col="line",
        order_col="seq",
        label_col="legal_entity",
    )
    written = close_narratives(lines, summaries)
    # More than one action reads the result, as the staging write, the spend and audits do.
    assert written.count() == entities.count()
    assert written.agg({"tokens_in": "sum"}).first()[0] is not None
    return {r["legal_entity"]: r.asDict() for r in written.collect()}


def _two_lines_each(spark, changed: str | None = None):
    """Two short open exceptions per entity; ``changed`` rewrites one line of that entity."""
    rows = []
    for n, entity in enumerate(("US01", "GB01", "DE01")):
        for i in range(2):
            detail = f"Bank line BANK:{n}{i} has no GL posting."
            if entity == changed and i == 1:
                detail = "Bank line BANK:99 has no GL posting; the bank reversed it."
            rows.append(
                (AS_OF, f"{entity}-{i}", "bank_gl", "unmatched_bank", entity, "open", None,
                 date(2026, 9, 28 + i), 4 - i, Decimal(f"{100 * (n + 1) + i}.00"), "USD", detail)
            )  # fmt: skip
    entities = local_frame(spark, [("US01",), ("GB01",), ("DE01",)], "legal_entity string")
    return local_frame(spark, rows, SCHEMA), entities


def test_with_an_llm_every_line_is_sent_and_the_paragraph_says_llm(spark, lakehouse_root):
    exceptions, entities = _exceptions(spark)
    lines = exception_lines(exceptions, entities, AS_OF)
    with FakeOpenAI() as server:
        out = _narrate(spark, server, exceptions, entities)
        sent = " ".join(r.user or "" for r in server.chat_requests())
    for line in [r["line"] for r in lines.collect()]:
        assert line in sent
    assert "Another night's row" not in sent
    for row in out.values():
        assert (row["status"], row["source"], row["model"]) == ("ok", "llm", "gpt-4o-mini")
        assert row["prompt_version"] == "close-narrative-v1" and row["tokens_in"] > 0
        assert row["narrative"] and row["business_date"] == AS_OF
    assert (out["US01"]["open_exceptions"], out["US01"]["closed_today"]) == (2, 1)


def test_one_request_per_group_then_none_then_only_the_changed_group(spark, lakehouse_root):
    exceptions, entities = _two_lines_each(spark)
    lines: dict[str, list[str]] = {}
    for row in exception_lines(exceptions, entities, AS_OF).orderBy("seq").collect():
        lines.setdefault(row["legal_entity"], []).append(row["line"])
    with FakeOpenAI() as server:
        first = _narrate(spark, server, exceptions, entities)
        requests = server.chat_requests()
        # (a) Each group fits one request: one request per group, whatever reads the result.
        assert len(requests) == 3
        assert sorted(r.record_ids[0] for r in requests) == ["DE01/s1/0", "GB01/s1/0", "US01/s1/0"]
        for request in requests:
            entity = request.record_ids[0].split("/")[0]
            assert request.records[0]["text"] == "\n".join(lines[entity])
        assert {(r["status"], r["source"], r["model"]) for r in first.values()} == {
            ("ok", "llm", "gpt-4o-mini")
        }
        assert LakehouseResource().read(spark, GROUP_SUMMARY_CACHE).count() == 3

        # (b) The same night again: nothing sent, the same paragraphs, read from the cache.
        server.reset_log()
        again = _narrate(spark, server, exceptions, entities)
        assert server.chat_requests() == []
        for entity, row in again.items():
            assert row["narrative"] == first[entity]["narrative"]
            assert (row["status"], row["source"], row["model"]) == ("ok", "cache", "gpt-4o-mini")
            assert row["prompt_version"] == "close-narrative-v1"
            assert (row["tokens_in"], row["tokens_out"], row["cost_usd"]) == (0, 0, 0.0)
            assert row["stages"] == 1
        assert LakehouseResource().read(spark, GROUP_SUMMARY_CACHE).count() == 3

        # (c) One line of GB01 changed: only GB01 is sent again.
        server.reset_log()
        changed = _narrate(spark, server, *_two_lines_each(spark, changed="GB01"))
        assert [r.record_ids for r in server.chat_requests()] == [["GB01/s1/0"]]
        assert "BANK:99" in server.chat_requests()[0].records[0]["text"]
    assert changed["GB01"]["source"] == "llm" and changed["GB01"]["tokens_in"] > 0
    assert {changed[e]["source"] for e in ("US01", "DE01")} == {"cache"}
    assert LakehouseResource().read(spark, GROUP_SUMMARY_CACHE).count() == 4


def test_a_failed_group_is_not_cached_and_is_sent_again(spark, lakehouse_root):
    exceptions, entities = _two_lines_each(spark)
    with FakeOpenAI() as server:
        server.fail_always(Fault.http(400))  # not retried: one request per group
        failed = _narrate(spark, server, exceptions, entities)
        assert len(server.chat_requests()) == 3
        assert {(r["status"], r["narrative"]) for r in failed.values()} == {("failed", None)}
        assert not LakehouseResource().exists(spark, GROUP_SUMMARY_CACHE)

        server.fail_always(None)
        server.reset_log()
        retried = _narrate(spark, server, exceptions, entities)
        assert len(server.chat_requests()) == 3
    assert {(r["status"], r["source"]) for r in retried.values()} == {("ok", "llm")}


@pytest.mark.parametrize("route", ["embedded model", "template"])
def test_offline_answers_are_never_cached(spark, lakehouse_root, route):
    exceptions, entities = _two_lines_each(spark)
    lines = exception_lines(exceptions, entities, AS_OF)
    if route == "template":
        rows = close_narratives(lines).collect()
        assert {(r["source"], r["model"]) for r in rows} == {("rule", TEMPLATE_MODEL_ID)}
    else:  # no API key: the embedded extractive model, free and deterministic
        summaries = EnrichmentResource().summarize_groups(
            LakehouseResource(),
            lines,
            CLOSE_NARRATIVE_TASK,
            group_cols=NARRATIVE_GROUP,
            text_col="line",
            order_col="seq",
        )
        assert {r["source"] for r in close_narratives(lines, summaries).collect()} == {"model"}
    assert not LakehouseResource().exists(spark, GROUP_SUMMARY_CACHE)
