"""A broken endpoint costs a bounded number of requests, and its records get marked offline answers.

Providers as ``_enrich_batches`` builds them on an executor (``build_provider(config,
fallback=True)``), against the fake server's fault modes, without Spark. Several providers built
from one config play the partitions one Python worker runs: they share the run's breakers.
"""

import uuid
from collections import Counter
from typing import Any

import pytest

from enrichment.breaker import request_bound
from enrichment.models import SOURCE_LLM, SOURCE_MODEL, STATUS_FAILED, STATUS_OK, RecordIn
from enrichment.prompts import EXPENSE_LINE_TASK, HR_CASE_TASK
from enrichment.providers import build_provider
from enrichment.providers.base import EMBEDDED_MODEL_ID, ProviderConfig
from enrichment.providers.embedded import EmbeddedProvider
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from tests.enrichment.fake_openai import FakeOpenAI, Fault
from tests.enrichment.test_openai_provider import make_records

TASK = EXPENSE_LINE_TASK
THRESHOLD = 3
PARTITIONS = 3

# (fault, timeout, what the breaker's reason quotes, the records' error when the breaker opened)
FAULTS = {
    "malformed-json": (Fault.malformed(), 5.0, "malformed JSON"),
    "500": (Fault.http(500), 5.0, "InternalServerError"),
    "hang-past-timeout": (Fault.slow(2.0), 0.2, "APITimeoutError"),
}


def config_for(server: FakeOpenAI, **overrides: Any) -> ProviderConfig:
    """A chat config for ``server`` whose breakers are shared by every provider built from it."""
    settings: dict[str, Any] = {
        "kind": "openai",
        "base_url": server.base_url,
        "api_key": "test-key",
        "max_records_per_request": 4,
        "max_attempts_per_record": 3,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.001,
        "breaker_failures": THRESHOLD,
        "breaker_scope": f"run-{uuid.uuid4().hex}",
        **overrides,
    }
    return ProviderConfig(**settings)


def run_partitions(config: ProviderConfig, records: list[RecordIn]) -> dict[str, Any]:
    """Records split over ``PARTITIONS`` providers run one after another, as in one worker."""
    outcomes = {}
    for i in range(PARTITIONS):
        part = records[i::PARTITIONS]
        outcomes.update({o.id: o for o in build_provider(config, fallback=True).run(TASK, part)})
    return outcomes


def offline_answers(records: list[RecordIn]) -> dict[str, Any]:
    return {o.id: o for o in EmbeddedProvider().run(TASK, records)}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_failing_endpoint_costs_at_most_the_threshold_then_falls_back(
    fake_openai: FakeOpenAI, name: str
) -> None:
    fault, timeout, quoted = FAULTS[name]
    records, _ = make_records(24)
    fake_openai.fail_always(fault)
    config = config_for(fake_openai, request_timeout_s=timeout)
    outcomes = run_partitions(config, records)

    # 24 records in 6 packs over 3 partitions, 3 attempts each, would be 18+ requests without it.
    assert len(fake_openai.chat_requests()) == THRESHOLD == request_bound(THRESHOLD, workers=1)
    offline = offline_answers(records)
    assert sorted(outcomes) == sorted(r.id for r in records)
    for rid, out in outcomes.items():
        assert out.status == STATUS_OK, (rid, out.error)
        assert (out.source, out.model) == (SOURCE_MODEL, EMBEDDED_MODEL_ID)
        assert (out.label, out.summary) == (offline[rid].label, offline[rid].summary)
        assert out.error is not None and out.error.startswith(FALLBACK_ERROR_PREFIX), out.error
    # Records never sent say the breaker stopped them, quoting the last error.
    unsent = [o for o in outcomes.values() if o.attempts == 0]
    assert unsent
    for out in unsent:
        reason = out.error.removeprefix(FALLBACK_ERROR_PREFIX)
        assert reason.startswith(f"circuit open after {THRESHOLD} consecutive failures: {quoted}")
    sent = Counter(rid for req in fake_openai.chat_requests() for rid in req.record_ids)
    assert sum(o.attempts for o in outcomes.values()) == sum(sent.values())


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_costs_one_request(fake_openai: FakeOpenAI, status: int) -> None:
    records, _ = make_records(12)
    fake_openai.fail_always(Fault.http(status))
    config = config_for(fake_openai)
    outcomes = run_partitions(config, records)

    assert len(fake_openai.chat_requests()) == 1
    for out in outcomes.values():
        assert (out.status, out.source) == (STATUS_OK, SOURCE_MODEL)
        assert f"Error code: {status}" in out.error
    unsent = [o for o in outcomes.values() if o.attempts == 0]
    assert len(unsent) == 12 - 4  # the first pack went; nothing after it
    assert all("circuit open after an authentication error" in o.error for o in unsent)


def test_fallback_off_leaves_the_records_failed_and_still_bounded(fake_openai: FakeOpenAI) -> None:
    records, _ = make_records(12)
    fake_openai.fail_always(Fault.http(500))
    config = config_for(fake_openai, fallback_off=(TASK.name,))
    outcomes = run_partitions(config, records)

    assert len(fake_openai.chat_requests()) == THRESHOLD
    for out in outcomes.values():
        assert (out.status, out.source, out.label) == (STATUS_FAILED, SOURCE_LLM, None)
        assert out.error.startswith(("InternalServerError", "circuit open after 3"))
    # Only that task: another task of the same config falls back.
    assert config.falls_back(HR_CASE_TASK.name) and not config.falls_back(TASK.name)
    assert not config_for(fake_openai, fallback_off=("all",)).falls_back(HR_CASE_TASK.name)


def test_an_open_circuit_from_an_earlier_call_sends_nothing(fake_openai: FakeOpenAI) -> None:
    records, _ = make_records(5)
    reason = "circuit open after 3 consecutive failures: InternalServerError: 500"
    config = config_for(fake_openai, circuit_open=reason)
    outcomes = build_provider(config, fallback=True).run(TASK, records)

    assert fake_openai.chat_requests() == []
    assert {o.error for o in outcomes} == {FALLBACK_ERROR_PREFIX + reason}
    assert {o.attempts for o in outcomes} == {0}


def test_intermittent_failures_do_not_open_it(fake_openai: FakeOpenAI) -> None:
    records, expected = make_records(12)
    # Every other request fails: never THRESHOLD in a row, so everything is answered by the LLM.
    fake_openai.inject(*[Fault.http(500), Fault.slow(0.0)] * 4)
    config = config_for(fake_openai, max_records_per_request=2)
    outcomes = run_partitions(config, records)

    assert {o.source for o in outcomes.values()} == {SOURCE_LLM}
    assert all(o.status == STATUS_OK and o.error is None for o in outcomes.values())
    assert {rid: o.label for rid, o in outcomes.items()} == expected


def test_the_batch_route_stops_submitting_once_open(fake_openai: FakeOpenAI) -> None:
    records, _ = make_records(8)
    fake_openai.fail_always(Fault.http(401))
    config = config_for(fake_openai, kind="openai_batch", batch_poll_interval_s=0.0)
    outcomes = run_partitions(config, records)

    # One refused upload; no partition after it submits anything.
    assert len(fake_openai.batch_api_requests()) == 1
    assert all(o.source == SOURCE_MODEL for o in outcomes.values())
    sent = [o for o in outcomes.values() if o.attempts]
    assert sent and all("AuthenticationError" in o.error for o in sent)
    assert all(
        "circuit open after an authentication error" in o.error
        for o in outcomes.values()
        if not o.attempts
    )
