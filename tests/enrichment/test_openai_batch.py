"""``OpenAIBatchProvider`` against the local fake OpenAI server's files and batches endpoints.

Polling and backoff are observed, never waited: the provider's ``sleep`` advances a fake clock.
"""

import json
import logging
from collections import Counter
from typing import Any

import openai
import pytest

from enrichment.models import SOURCE_LLM, STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, RecordIn
from enrichment.packing import pack, response_schema, user_message
from enrichment.prompts import EXPENSE_LINE_TASK, system_prompt
from enrichment.providers import openai_batch
from enrichment.providers.base import EMBEDDED, OPENAI_BATCH, ProviderConfig
from enrichment.providers.factory import build_provider
from enrichment.providers.openai_batch import OpenAIBatchProvider
from enrichment.providers.openai_chat import OpenAIChatProvider
from enrichment.tokens import count_tokens
from tests.enrichment.fake_openai import (
    BATCH_FAILED_CODE,
    BATCH_PROGRESS,
    CHAT_PATH,
    FakeOpenAI,
    Fault,
)

TASK = EXPENSE_LINE_TASK
API_KEY = "test-key"
POLL_S = 30.0

# Texts whose category the fake server's deterministic labeller gets right.
EXPENSES = [
    ("Delta airline flight ticket SFO to JFK", "travel_air"),
    ("Marriott hotel three nights accommodation", "lodging"),
    ("Taxi ride from the airport to the office", "ground_transport"),
    ("Client lunch at an Italian restaurant", "meals"),
    ("Annual SaaS licence seats subscription renewal", "software"),
    ("Printer paper and toner cartridges", "office_supplies"),
    ("Online course certification exam fee", "training"),
    ("Mobile phone plan data roaming charges", "telecom"),
]


def make_records(n: int) -> tuple[list[RecordIn], dict[str, str]]:
    """``n`` records cycling through ``EXPENSES`` and the label each should get."""
    records, expected = [], {}
    for i in range(n):
        text, label = EXPENSES[i % len(EXPENSES)]
        rid = f"r{i:03d}"
        records.append(RecordIn(rid, f"{text} (line {i})"))
        expected[rid] = label
    return records, expected


class FakeTime:
    """A clock that only moves when the provider sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def settings(server: FakeOpenAI, **overrides: Any) -> dict[str, Any]:
    return {
        "kind": OPENAI_BATCH,
        "base_url": server.base_url,
        "api_key": API_KEY,
        "request_timeout_s": 5.0,
        "max_attempts_per_record": 3,
        "batch_poll_interval_s": POLL_S,
        **overrides,
    }


def make_provider(server: FakeOpenAI, fake_time: FakeTime, **overrides: Any) -> OpenAIBatchProvider:
    """A batch provider pointed at ``server`` whose waits only advance ``fake_time``."""
    return OpenAIBatchProvider(
        ProviderConfig(**settings(server, **overrides)),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


def by_id(outcomes: list) -> dict:
    return {o.id: o for o in outcomes}


def line_ids(server: FakeOpenAI, batch_index: int) -> list[list[str]]:
    """Record ids of each input line of one batch."""
    batch = server.batches[batch_index]
    return [line.record_ids for line in server.batch_lines(batch.obj["id"])]


def sends_per_id(server: FakeOpenAI) -> Counter:
    """How many batch lines carried each record id, over every batch."""
    return Counter(rid for line in server.batch_lines() for rid in line.record_ids)


def assert_all_ok(outcomes: list, expected: dict[str, str], attempts: int) -> None:
    assert sorted(o.id for o in outcomes) == sorted(expected)
    for out in outcomes:
        assert out.status == STATUS_OK, (out.id, out.error)
        assert out.error is None
        assert out.label == expected[out.id]
        assert out.attempts == attempts, out.id


# --- the round trip ----------------------------------------------------------------------


def test_round_trip_one_line_per_pack_with_the_chat_body(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, expected = make_records(25)
    provider = make_provider(
        fake_openai, fake_time, max_records_per_request=10, max_output_tokens_per_request=1234
    )
    outcomes = provider.run(TASK, records)

    assert_all_ok(outcomes, expected, attempts=1)
    for out in outcomes:
        assert out.source == SOURCE_LLM
        assert out.model == "gpt-4o-mini"
        assert out.summary
        assert 0.0 <= out.confidence <= 1.0
        assert out.latency_ms == len(BATCH_PROGRESS) * POLL_S * 1000  # submit to completion

    assert fake_openai.chat_requests() == []  # nothing went through the synchronous route
    (batch,) = fake_openai.batches
    assert batch.status == "completed"
    assert batch.obj["endpoint"] == CHAT_PATH
    assert batch.obj["completion_window"] == "24h"
    uploaded = fake_openai.file(batch.obj["input_file_id"])
    assert uploaded.purpose == "batch"
    assert uploaded.filename.endswith(".jsonl")

    raw_lines = uploaded.data.decode().splitlines()
    packs = pack(records, "gpt-4o-mini", 6000, 10)
    assert len(raw_lines) == len(packs) == 3
    parsed = [json.loads(line) for line in raw_lines]
    assert len({p["custom_id"] for p in parsed}) == len(parsed)  # unique custom ids
    assert {(p["method"], p["url"]) for p in parsed} == {("POST", CHAT_PATH)}
    assert line_ids(fake_openai, 0) == [[r.id for r in p] for p in packs]
    for line, records_of_line in zip(parsed, packs, strict=True):
        body = line["body"]
        assert body["model"] == "gpt-4o-mini"
        assert body["temperature"] == 0
        assert body["max_tokens"] == 1234
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["name"] == TASK.name
        assert fmt["json_schema"]["schema"] == response_schema(TASK)
        assert body["messages"] == [
            {"role": "system", "content": system_prompt(TASK)},
            {"role": "user", "content": user_message(records_of_line)},
        ]

    # The body of each line is exactly what the chat provider sends for the same pack.
    chat = OpenAIChatProvider(
        ProviderConfig(
            **settings(
                fake_openai,
                kind="openai",
                max_records_per_request=10,
                max_output_tokens_per_request=1234,
            )
        ),
        sleep=fake_time.sleep,
    )
    chat.run(TASK, records)
    assert [r.body for r in fake_openai.chat_requests()] == [p["body"] for p in parsed]

    # One upload, one create, one poll per progress step (each after a poll interval), then
    # the output download; every request carries the key.
    paths = [r.path for r in fake_openai.batch_api_requests()]
    batch_path = f"/v1/batches/{batch.obj['id']}"
    output_path = f"/v1/files/{batch.obj['output_file_id']}/content"
    assert paths == ["/v1/files", "/v1/batches", *[batch_path] * 3, output_path]
    assert fake_time.sleeps == [POLL_S] * len(BATCH_PROGRESS)
    assert all(
        r.headers["authorization"] == f"Bearer {API_KEY}" for r in fake_openai.batch_api_requests()
    )


def test_cost_is_half_the_chat_price_for_the_same_usage(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, _ = make_records(12)
    overrides = {
        "max_records_per_request": 5,
        "price_input_per_mtok": 2.0,
        "price_output_per_mtok": 8.0,
    }
    batch_out = by_id(make_provider(fake_openai, fake_time, **overrides).run(TASK, records))
    chat_config = ProviderConfig(**settings(fake_openai, kind="openai", **overrides))
    chat_out = by_id(OpenAIChatProvider(chat_config, sleep=fake_time.sleep).run(TASK, records))

    for rid, out in batch_out.items():
        assert (out.tokens_in, out.tokens_out) == (
            chat_out[rid].tokens_in,
            chat_out[rid].tokens_out,
        )
        assert out.tokens_in > 0 and out.tokens_out > 0
        assert out.cost_usd == pytest.approx(chat_out[rid].cost_usd / 2)

    # And the total is the batch price of the usage the output file reports.
    (batch,) = fake_openai.batches
    output = fake_openai.file(batch.obj["output_file_id"]).data.decode().splitlines()
    usages = [json.loads(line)["response"]["body"]["usage"] for line in output]
    billed = sum(u["prompt_tokens"] * 2.0 + u["completion_tokens"] * 8.0 for u in usages) / 1e6
    assert sum(o.cost_usd for o in batch_out.values()) == pytest.approx(billed * 0.5)


def test_build_provider_and_config_defaults(fake_openai: FakeOpenAI) -> None:
    config = ProviderConfig(kind=OPENAI_BATCH, base_url=fake_openai.base_url, api_key=API_KEY)
    provider = build_provider(config)
    assert isinstance(provider, OpenAIBatchProvider)
    assert provider.model_id == config.model_id == "gpt-4o-mini"
    assert config.batch_poll_interval_s == 30.0
    assert config.batch_max_wait_s == 24 * 3600
    assert ProviderConfig().kind == EMBEDDED  # existing defaults unchanged
    with pytest.raises(ValueError, match="openai_batch"):
        build_provider(ProviderConfig(kind="nope"))


# --- row-level failures inside a batch: retried through a follow-up batch ----------------------


def test_line_error_and_bad_label_are_retried_in_a_follow_up_batch(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, expected = make_records(10)
    fake_openai.inject_batch(Fault.line_error("r007"), Fault.bad_label("r002"))
    provider = make_provider(fake_openai, fake_time, max_records_per_request=5)
    outcomes = by_id(provider.run(TASK, records))

    assert {rid: (o.status, o.label, o.error) for rid, o in outcomes.items()} == {
        rid: (STATUS_OK, label, None) for rid, label in expected.items()
    }
    assert {rid: o.attempts for rid, o in outcomes.items() if o.attempts != 1} == {
        "r002": 2,  # its answer was invalid: alone in the follow-up batch
        **{f"r00{i}": 2 for i in range(5, 10)},  # its request errored: again as the same pack
    }
    assert len(fake_openai.batches) == 2
    first = fake_openai.batches[0]
    assert first.obj["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    assert first.obj["error_file_id"]
    assert sorted(line_ids(fake_openai, 1)) == [["r002"], [f"r00{i}" for i in range(5, 10)]]


def test_persistent_row_failures_end_failed_within_the_attempt_budget(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, expected = make_records(10)
    fake_openai.fail_all_batches(Fault.line_error("r007"), Fault.bad_label("r002"))
    provider = make_provider(fake_openai, fake_time, max_records_per_request=5)
    outcomes = by_id(provider.run(TASK, records))

    assert len(outcomes) == len(records)
    bad = outcomes["r002"]
    assert (bad.status, bad.attempts, bad.label) == (STATUS_FAILED, 3, None)
    assert bad.error and bad.error.startswith("label outside the taxonomy")
    for i in range(5, 10):
        out = outcomes[f"r00{i}"]
        assert (out.status, out.attempts, out.label) == (STATUS_FAILED, 3, None)
        assert out.error and out.error.startswith("batch request error: HTTP 500"), out.error
    for rid in ("r000", "r001", "r003", "r004"):
        out = outcomes[rid]
        assert (out.status, out.attempts, out.label) == (STATUS_OK, 1, expected[rid])
    assert len(fake_openai.batches) == 3
    assert sends_per_id(fake_openai)["r002"] == 3
    assert sends_per_id(fake_openai)["r007"] == 3


def test_client_error_in_a_line_is_not_retried(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, _ = make_records(6)
    fake_openai.fail_all_batches(Fault.line_error("r004", status=400))
    outcomes = by_id(
        make_provider(fake_openai, fake_time, max_records_per_request=3).run(TASK, records)
    )

    assert len(fake_openai.batches) == 1
    for rid in ("r003", "r004", "r005"):
        out = outcomes[rid]
        assert (out.status, out.attempts) == (STATUS_FAILED, 1)
        assert out.error and out.error.startswith("batch request error: HTTP 400")
    assert all(outcomes[f"r00{i}"].status == STATUS_OK for i in range(3))


# --- the whole batch ends badly ----------------------------------------------------------------


def test_expired_batch_keeps_finished_lines_and_retries_the_rest(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, expected = make_records(9)
    fake_openai.inject_batch(Fault.batch_expired(lines_done=1))
    provider = make_provider(fake_openai, fake_time, max_records_per_request=3)
    outcomes = by_id(provider.run(TASK, records))

    assert [b.status for b in fake_openai.batches] == ["expired", "completed"]
    assert {rid: o.attempts for rid, o in outcomes.items()} == {
        r.id: 1 if i < 3 else 2 for i, r in enumerate(records)
    }
    assert_all_ok(
        [o for o in outcomes.values() if o.attempts == 1],
        {r.id: expected[r.id] for r in records[:3]},
        attempts=1,
    )
    assert_all_ok(
        [o for o in outcomes.values() if o.attempts == 2],
        {r.id: expected[r.id] for r in records[3:]},
        attempts=2,
    )
    assert sorted(line_ids(fake_openai, 1)) == [
        [r.id for r in records[3:6]],
        [r.id for r in records[6:]],
    ]


@pytest.mark.parametrize(
    ("fault", "error_prefix", "attempts"),
    [
        (Fault.batch_expired(), "batch request error: batch_expired", 3),
        (Fault.batch_failed(), f"batch failed: {BATCH_FAILED_CODE}", 3),
        (Fault.batch_cancelled(), "batch request error: batch_cancelled", 1),
    ],
    ids=["expired", "failed", "cancelled"],
)
def test_batch_that_never_completes_ends_in_failed_rows(
    fake_openai: FakeOpenAI, fake_time: FakeTime, fault: Fault, error_prefix: str, attempts: int
) -> None:
    records, _ = make_records(5)
    fake_openai.fail_all_batches(fault)
    provider = make_provider(fake_openai, fake_time, max_records_per_request=2)
    outcomes = provider.run(TASK, records)  # never raises

    assert len(outcomes) == len(records)
    for out in outcomes:
        assert out.status == STATUS_FAILED
        assert out.label is None
        assert out.error and out.error.startswith(error_prefix), out.error
        assert out.attempts == attempts
        assert out.cost_usd == 0.0  # nothing was answered, nothing billed
    assert len(fake_openai.batches) == attempts  # expired/failed: retried; cancelled: not
    assert sends_per_id(fake_openai) == Counter({r.id: attempts for r in records})


def test_failed_batch_is_resubmitted_after_a_backoff(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, expected = make_records(4)
    fake_openai.inject_batch(Fault.batch_failed())
    provider = make_provider(fake_openai, fake_time, backoff_base_s=7.0, backoff_max_s=60.0)
    outcomes = provider.run(TASK, records)

    assert_all_ok(outcomes, expected, attempts=2)
    assert [b.status for b in fake_openai.batches] == ["failed", "completed"]
    backoffs = [s for s in fake_time.sleeps if s != POLL_S]
    assert len(backoffs) == 1 and 3.5 <= backoffs[0] <= 7.0  # base delay with jitter


def test_unfinished_batch_is_cancelled_at_the_max_wait(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, _ = make_records(4)
    provider = make_provider(fake_openai, fake_time, batch_max_wait_s=50.0)
    outcomes = provider.run(TASK, records)  # the fake needs 3 polls (90 s) to finish

    for out in outcomes:
        assert out.status == STATUS_FAILED
        assert out.error and out.error.startswith("batch not finished within 50s"), out.error
        assert out.attempts == 1
    assert fake_time.sleeps == [POLL_S, 20.0]  # never past the deadline
    (batch,) = fake_openai.batches
    assert batch.status == "cancelling"
    assert fake_openai.batch_api_requests()[-1].path == f"/v1/batches/{batch.obj['id']}/cancel"


# --- the control plane: uploads, polls and downloads that fail ---------------------------------

NO_FAULT = Fault.slow(0)  # a placeholder in the request-fault queue


def test_transient_upload_error_resubmits(fake_openai: FakeOpenAI, fake_time: FakeTime) -> None:
    records, expected = make_records(3)
    fake_openai.inject(Fault.http(503))
    outcomes = make_provider(fake_openai, fake_time).run(TASK, records)

    assert_all_ok(outcomes, expected, attempts=2)
    uploads = [r for r in fake_openai.batch_api_requests() if r.path == "/v1/files"]
    assert len(uploads) == 2
    assert len(fake_openai.batches) == 1


def test_client_error_on_create_is_not_retried(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, _ = make_records(3)
    fake_openai.inject(NO_FAULT, Fault.http(400))  # the upload passes, the create is refused
    outcomes = make_provider(fake_openai, fake_time).run(TASK, records)

    for out in outcomes:
        assert out.status == STATUS_FAILED
        assert out.attempts == 1
        assert out.error and out.error.startswith("batch submission failed: BadRequestError")
    assert fake_openai.batches == []


def test_poll_and_download_errors_do_not_resubmit(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, expected = make_records(3)
    # upload, create, poll (503), poll, poll, poll, download (500), download
    fake_openai.inject(NO_FAULT, NO_FAULT, Fault.http(503), *[NO_FAULT] * 3, Fault.http(500))
    outcomes = make_provider(fake_openai, fake_time).run(TASK, records)

    assert_all_ok(outcomes, expected, attempts=1)
    assert len(fake_openai.batches) == 1  # the batch already ran: never paid for twice
    assert fake_openai.pending_faults == 0
    downloads = [r for r in fake_openai.batch_api_requests() if r.path.endswith("/content")]
    assert len(downloads) == 2


# --- the run's token budget ----------------------------------------------------------------------


def test_token_budget_skips_unsent_records(fake_openai: FakeOpenAI, fake_time: FakeTime) -> None:
    records, expected = make_records(30)
    first_pack = records[:10]
    first_estimate = count_tokens(system_prompt(TASK), "gpt-4o-mini") + count_tokens(
        user_message(first_pack), "gpt-4o-mini"
    )
    provider = make_provider(
        fake_openai, fake_time, max_records_per_request=10, token_budget=first_estimate
    )
    outcomes = by_id(provider.run(TASK, records))

    assert line_ids(fake_openai, 0) == [[r.id for r in first_pack]]
    for r in first_pack:
        assert (outcomes[r.id].status, outcomes[r.id].label) == (STATUS_OK, expected[r.id])
    for r in records[10:]:
        out = outcomes[r.id]
        assert (out.status, out.attempts, out.label) == (STATUS_SKIPPED, 0, None)
        assert "budget" in (out.error or "")


def test_zero_token_budget_sends_nothing(fake_openai: FakeOpenAI, fake_time: FakeTime) -> None:
    records, _ = make_records(5)
    outcomes = make_provider(fake_openai, fake_time, token_budget=0).run(TASK, records)

    assert fake_openai.requests == []
    assert {o.status for o in outcomes} == {STATUS_SKIPPED}
    assert len(outcomes) == len(records)


def test_token_budget_counts_reported_usage_across_runs(
    fake_openai: FakeOpenAI, fake_time: FakeTime
) -> None:
    records, _ = make_records(10)
    estimate = count_tokens(system_prompt(TASK), "gpt-4o-mini") + count_tokens(
        user_message(records), "gpt-4o-mini"
    )
    # Room for two estimates: only the output tokens reported by the first run's answer
    # (far more than 10) keep the second run from fitting.
    provider = make_provider(fake_openai, fake_time, token_budget=2 * estimate + 10)
    assert {o.status for o in provider.run(TASK, records)} == {STATUS_OK}
    assert {o.status for o in provider.run(TASK, records)} == {STATUS_SKIPPED}
    assert len(fake_openai.batches) == 1


@pytest.mark.parametrize(
    "fault", [Fault.batch_expired(), Fault.batch_failed()], ids=["expired", "failed"]
)
def test_requests_that_did_not_run_give_their_tokens_back(
    fake_openai: FakeOpenAI, fake_time: FakeTime, fault: Fault
) -> None:
    records, _ = make_records(4)
    estimate = count_tokens(system_prompt(TASK), "gpt-4o-mini") + count_tokens(
        user_message(records), "gpt-4o-mini"
    )
    fake_openai.fail_all_batches(fault)
    provider = make_provider(fake_openai, fake_time, token_budget=estimate)
    outcomes = provider.run(TASK, records)

    # Each retry fits again: a request that did not run is not billed, its reservation
    # is released.
    assert {(o.status, o.attempts) for o in outcomes} == {(STATUS_FAILED, 3)}
    assert len(fake_openai.batches) == 3


# --- the fake server's batch endpoints, through the SDK alone ----------------------------------


def test_fake_batch_answers_each_line_as_the_chat_endpoint(fake_openai: FakeOpenAI) -> None:
    records, _ = make_records(3)
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": system_prompt(TASK)},
            {"role": "user", "content": user_message(records)},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "t", "strict": True, "schema": response_schema(TASK)},
        },
    }
    client = openai.OpenAI(api_key="k", base_url=fake_openai.base_url, max_retries=0)
    chat = client.chat.completions.with_raw_response.create(**body).http_response.json()

    def submit(custom_ids: list[str]) -> Any:
        data = "".join(
            json.dumps({"custom_id": c, "method": "POST", "url": CHAT_PATH, "body": body}) + "\n"
            for c in custom_ids
        ).encode()
        uploaded = client.files.create(file=("in.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint=CHAT_PATH, completion_window="24h"
        )
        statuses = [batch.status]
        while batch.status not in ("completed", "failed"):
            batch = client.batches.retrieve(batch.id)
            statuses.append(batch.status)
        return batch, statuses

    batch, statuses = submit(["a", "b"])
    assert statuses == [*BATCH_PROGRESS, "completed"]
    output = client.files.content(batch.output_file_id).content.decode().splitlines()
    entries = [json.loads(line) for line in output]
    assert [e["custom_id"] for e in entries] == ["a", "b"]
    for entry in entries:
        assert entry["response"]["status_code"] == 200
        answer = entry["response"]["body"]
        assert answer["object"] == chat["object"] == "chat.completion"
        assert answer["choices"] == chat["choices"]
        assert answer["usage"] == chat["usage"]

    # Duplicate custom ids are rejected like OpenAI does: the whole batch fails.
    batch, statuses = submit(["a", "a"])
    assert statuses[-1] == "failed"
    assert batch.output_file_id is None
    assert [e.code for e in batch.errors.data] == ["duplicate_custom_id"]


# --- secrets -------------------------------------------------------------------------------


def test_api_key_never_appears_in_errors_or_logs(
    fake_openai: FakeOpenAI, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-test-DO-NOT-LEAK-0123456789abcdef"
    # One provider through every fault: its breaker (which the 401 would open) is off.
    config = ProviderConfig(
        **settings(fake_openai, api_key=secret, max_attempts_per_record=1, breaker_failures=0)
    )
    assert secret not in repr(config)
    provider = OpenAIBatchProvider(config, sleep=fake_time.sleep, clock=fake_time.clock)
    request_faults = [Fault.http(401), Fault.http(400), Fault.http(500), Fault.reset()]
    batch_faults = [
        Fault.batch_failed(),
        Fault.batch_expired(),
        Fault.batch_cancelled(),
        Fault.line_error(),
        Fault.line_error(status=401),
        Fault.bad_label(),
        Fault.refusal(),
        Fault.truncated(),
        Fault.malformed(),
    ]
    errors: list[str] = []
    for inject, faults in (
        (fake_openai.inject, request_faults),
        (fake_openai.inject_batch, batch_faults),
    ):
        for fault in faults:
            inject(fault)
            outcomes = provider.run(TASK, make_records(2)[0])
            assert all(secret not in repr(out) for out in outcomes)
            run_errors = [out.error for out in outcomes if out.error]
            assert run_errors, fault  # every fault produced an error (so none is vacuous)
            errors.extend(run_errors)
    assert all(secret not in e and "DO-NOT-LEAK" not in e for e in errors)
    assert "DO-NOT-LEAK" not in caplog.text
    assert any(r.name == openai_batch.__name__ for r in caplog.records)  # it did log
    # The key is really in use.
    assert all(
        r.headers["authorization"] == f"Bearer {secret}" for r in fake_openai.batch_api_requests()
    )


def test_a_key_echoed_by_the_server_is_redacted(
    fake_openai: FakeOpenAI, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-echoed-DO-NOT-LEAK-42"
    from tests.enrichment import fake_openai as fake_module

    def echoing_error_body(status: int) -> dict[str, Any]:  # a proxy that echoes the header
        return {"error": {"message": f"bad key Bearer {secret}", "type": "x", "code": None}}

    monkeypatch.setattr(fake_module, "_error_body", echoing_error_body)
    fake_openai.inject(Fault.http(401))
    fake_openai.inject_batch(Fault.line_error(status=400))
    provider = make_provider(fake_openai, fake_time, api_key=secret, max_attempts_per_record=1)
    errors = [o.error for o in provider.run(TASK, make_records(2)[0])]  # the upload fails
    errors += [o.error for o in provider.run(TASK, make_records(2)[0])]  # the line fails
    assert len(errors) == 4 and all(errors)
    assert all("[redacted]" in e and "DO-NOT-LEAK" not in e for e in errors), errors
