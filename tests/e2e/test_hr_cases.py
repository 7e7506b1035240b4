"""HR cases through Dagster: redacted before anything is sent, typed, prioritised, summarized.

Against an LLM: one generated date of the roster and the cases, materialized against the local
fake OpenAI server, whose recorded requests must hold none of the roster's personal data. Offline
(the embedded model answered), on a date of the session's closed lakehouse: ``test_close.py``, with
the other tests that read that lakehouse (they share one worker, so it is built once).
"""

import csv
import json
import re
from datetime import date
from pathlib import Path

import pytest
from dagster import materialize

from assets import hr_cases, sources
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from infra.lakehouse import LakehouseResource, TableRef
from pipelines.definitions import build_resources
from sample import close as sample_close
from tests.enrichment.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.slow

DAY = date(2026, 10, 1)  # a Thursday (cases land on weekdays), a date of the session's close
GOLD = TableRef("gold", "hr_cases")
STEPS = [
    a
    for a in sources.source_assets
    if {k.to_user_string() for k in a.keys}
    & {"bronze_hr_cases", "silver_hr_cases", "bronze_hris_roster", "silver_hris_roster"}
] + [hr_cases.staging_hr_cases, hr_cases.gold_hr_cases]


def _landed(root: Path, generate: bool = True) -> tuple[list[dict], list[dict], dict]:
    if generate:
        sample_close.generate_close(
            root, DAY, DAY, seed=5, gl_lines_per_day=20, employees=30, with_documents=False
        )
    folder = f"business_date={DAY.isoformat()}"
    cases_file = next((root / "landing" / "hr_cases" / folder).glob("*.jsonl"))
    cases = [json.loads(line) for line in cases_file.read_text().splitlines() if line.strip()]
    roster_file = next((root / "landing" / "hris_roster" / folder).glob("*.csv"))
    with roster_file.open() as f:
        roster = list(csv.DictReader(f))
    key = json.loads((root / "answer_keys" / "close" / f"{DAY}.json").read_text())
    return cases, roster, key["hr_cases"]


def _materialize(monkeypatch, root: Path, **env: str):
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = materialize(STEPS, resources=build_resources(), partition_key=DAY.isoformat())
    assert result.success
    return result


def _secrets(cases: list[dict], roster: list[dict]) -> set[str]:
    """Every name, e-mail, phone and salary figure of the people the cases are about."""
    people = {r["employee_id"]: r for r in roster}
    found = set()
    for case in cases:
        person = people[case["employee_id"]]
        found |= {person["name"], person["email"], *person["name"].split()}
        found |= set(re.findall(r"\d{3}[ .-]\d{3}[ .-]\d{4}", case["description"]))
        found |= set(re.findall(r"\d{1,3}(?:,\d{3})+", case["description"]))
    return {s for s in found if len(s) >= 3}


def test_nothing_personal_reaches_the_llm_and_rows_say_llm(spark, tmp_path, monkeypatch):
    root = tmp_path / "lakehouse"
    cases, roster, _ = _landed(root)
    # Retries wait milliseconds, not Spark's seconds: the waits are not under test here.
    env = {
        "OPENAI_API_KEY": "sk-test-hr",
        "LLM_BACKOFF_BASE_S": "0.01",
        "LLM_BACKOFF_MAX_S": "0.05",
    }
    with FakeOpenAI() as server:
        # The first night the endpoint answers nothing usable: the circuit breaker stops the
        # requests, the offline fallback answers every case, marked, and the night publishes.
        server.fail_always(Fault.malformed())
        broken = _materialize(monkeypatch, root, OPENAI_BASE_URL=server.base_url, **env)
        failed_requests = server.chat_requests()
        fell_back = LakehouseResource().read(spark, GOLD).collect()
        # The next night the endpoint is healthy: the date is computed again (nothing changed
        # but its fallback rows) and exactly those rows are sent, once per task.
        server.fail_always(None)
        server.reset_log()
        _materialize(monkeypatch, root, OPENAI_BASE_URL=server.base_url, **env)
        requests = server.chat_requests()
    # Per task at most LLM_BREAKER_FAILURES (5) failed requests per worker sending it.
    assert 0 < len(failed_requests) <= 2 * 5 * 4
    assert len(fell_back) == len(cases)
    for row in fell_back:
        assert (row["enrichment_status"], row["source"], row["urgency_source"]) == (
            "ok",
            "model",
            "model",
        )
        assert row["error"].startswith(FALLBACK_ERROR_PREFIX), row["error"]
        assert row["urgency_error"].startswith(FALLBACK_ERROR_PREFIX)
    staged = next(
        m
        for m in broken.asset_materializations_for_node("staging_hr_cases")
        if m.asset_key.to_user_string() == "staging_hr_cases"
    )
    assert "LLM unavailable" in str(staged.metadata["llm_unavailable"].value)
    sent = " ".join(json.dumps(r.body) for r in failed_requests + requests)
    assert requests and "[PERSON_1]" in sent and "[EMAIL_1]" in sent
    for secret in _secrets(cases, roster):
        assert secret not in sent, secret
    assert "sk-test-hr" not in sent
    # One request per task: the day's cases are packed together.
    assert len(requests) == 2
    assert {i for r in requests for i in r.record_ids} == {r["input_hash"] for r in fell_back} | {
        r["urgency_input_hash"] for r in fell_back
    }

    gold = LakehouseResource().read(spark, GOLD).collect()
    assert len(gold) == len(cases)
    for row in gold:
        assert (row["source"], row["urgency_source"]) == ("llm", "llm")
        assert row["model"] == "gpt-4o-mini"
        assert (row["prompt_version"], row["urgency_prompt_version"]) == (
            "hr-case-v1",
            "hr-urgency-v2",
        )
        assert row["tokens_in"] > 0 and row["urgency_tokens_in"] > 0
        assert row["urgency_rationale"] == f"the record reads like {row['urgency']}"
