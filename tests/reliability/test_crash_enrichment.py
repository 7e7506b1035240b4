"""Case 2, kill -9 mid-enrichment: the re-run pays only for what the killed run did not get.

A child (``tests/reliability/children.py``, scenario ``crash-enrich``) enriches sixteen distinct
texts against the local fake OpenAI server, two records a request, one request at a time, and is
killed (SIGKILL to its process group) once half the requests have arrived. The answers it had
received are in its journal (``enrichment/journal.py``); the re-run here merges them into the
cache first and sends only the rest. The uninterrupted reference is enriched here, against a
server of its own, while the child's JVM starts.
"""

import json

import pytest

from enrichment.prompts import EXPENSE_LINE_TASK
from infra.enrichment import EnrichmentResource
from infra.lakehouse import LakehouseResource
from tests.enrichment.fake_openai import FakeOpenAI
from tests.reliability.children import (
    ENRICH_SETTINGS,
    ENRICH_TEXTS,
    ROSTER,
    Child,
    enrich_lines,
)

pytestmark = pytest.mark.slow
PER_REQUEST = ENRICH_SETTINGS["max_records_per_request"]
REQUESTS = len(ENRICH_TEXTS) // PER_REQUEST


def _answers(run) -> dict[str, tuple]:
    return {
        r["input_hash"]: (r["enrichment_status"], r["label"], r["summary"], r["model"])
        for r in run.rows.collect()
    }


def test_a_rerun_after_kill_9_pays_only_for_the_answers_the_killed_run_did_not_get(spark, tmp_path):
    # The killed run's answers come slowly, so it is killed with one request in flight.
    with FakeOpenAI(latency_s=0.4) as fake, FakeOpenAI() as uninterrupted:
        root = tmp_path / "lakehouse"
        child = Child("crash-enrich", root, tmp_path / "child", {"FAKE_OPENAI_URL": fake.base_url})
        alone = LakehouseResource(root=str(tmp_path / "uninterrupted"))
        reference = enrich_lines(spark, alone, uninterrupted.base_url, "ref")
        assert len(uninterrupted.chat_requests()) == REQUESTS
        child.go("start")
        child.wait_for(lambda: len(fake.chat_requests()) >= REQUESTS // 2, "half the requests")
        child.kill()
        killed = [r.record_ids for r in fake.chat_requests()]
        bodies = [r.body for r in fake.requests]
        assert REQUESTS // 2 <= len(killed) < REQUESTS
        # Every request before the last was answered, and journaled before the next was sent.
        answered = {rid for ids in killed[:-1] for rid in ids}
        journal = root / "_journal" / "llm" / EXPENSE_LINE_TASK.name
        journaled = {
            json.loads(line)["input_hash"]
            for f in journal.glob("*.jsonl")
            for line in f.read_text().splitlines()
        }
        assert answered <= journaled

        fake.reset_log()
        fake.latency_s = 0.0  # the re-run's answers are not timed
        lakehouse = LakehouseResource(root=str(root))
        rerun = enrich_lines(spark, lakehouse, fake.base_url, "rerun")
        resent = [rid for r in fake.chat_requests() for rid in r.record_ids]
        assert not answered & set(resent)
        assert rerun.cache_hits >= len(answered)
        # Both runs together: each record sent once, but the one request in flight at the kill.
        distinct = len(ENRICH_TEXTS)
        sent = sum(len(ids) for ids in killed) + len(resent)
        assert sent <= distinct + PER_REQUEST
        retry_budget = ENRICH_SETTINGS.get("max_attempts_per_record", 3) - 1
        assert len(killed) + len(fake.chat_requests()) <= (1 + retry_budget) * REQUESTS
        assert not list(journal.glob("*.jsonl"))  # merged, then deleted
        # No personal data left the process in either run.
        sent_text = json.dumps(bodies + [r.body for r in fake.requests])
        assert "Taxi from the airport" in sent_text
        assert not any(name in sent_text for name in ROSTER)

    assert _answers(rerun) == _answers(reference)
    # Offline nothing is journaled (nothing is paid for).
    assert EnrichmentResource().journal_dir(lakehouse, EXPENSE_LINE_TASK) is None
