"""The client-side limiter against the fake server enforcing a tokens-per-minute limit.

Real requests, real sleeps, but a short minute: the server enforces ``LIMIT`` prompt tokens per
sliding ``MINUTE_S``-second window, and the limiter is given a clock (and a sleep) on which one
minute lasts ``MINUTE_S`` seconds (``RateLimiter`` already accepts both: each provider's
``limiter`` is rebuilt with the same limits on that clock; no project code is patched). The load
is spread over ``WORKERS`` providers in threads, each with its share of the limit exactly as
``EnrichmentResource.provider_config`` divides it between Spark tasks.

The limiter counts a sliding window, as the server does, so it is safe at the server's own limit.
(It began as a token bucket that starts full: that sent up to twice the limit in the first minute
and let through as many 429s as no limiter at all, which this test found.)
"""

import math
import threading
import time
from collections import Counter

from enrichment.models import STATUS_OK, RecordIn, RecordOut
from enrichment.packing import user_message
from enrichment.prompts import EXPENSE_LINE_TASK, system_prompt
from enrichment.providers.base import ProviderConfig
from enrichment.providers.openai_chat import OpenAIChatProvider
from enrichment.ratelimit import RateLimiter
from enrichment.tokens import count_tokens
from infra.enrichment import EnrichmentResource
from tests.enrichment.fake_openai import FakeOpenAI

TASK = EXPENSE_LINE_TASK
MODEL = "gpt-4o-mini"
MINUTE_S = 1.0  # one "minute" of the server's window and of the limiter's clock, in seconds
LIMIT = 6000  # prompt tokens per minute the server admits (about 12 requests of 5 records)
WORKERS = 4  # like EnrichmentResource's default max_concurrency
RECORDS = 200
PER_REQUEST = 5
# Share of requests answered 429 that the test tolerates. Without a limiter each worker meets
# about one 429 per window: 20-25% of the requests of this load.
MAX_429_SHARE = 0.05

TEXTS = [
    "Merchant: Marriott Hotels\nJustification: Hotel in Boston, {n} nights, for the audit.",
    "Merchant: Delta Air Lines\nJustification: Flight to Chicago for the quarterly close {n}.",
    "Merchant: Uber\nJustification: Taxi from airport to client office in Denver, trip {n}.",
    "Merchant: Staples\nJustification: Printer paper and toner for the office, order {n}.",
]


class CountingFakeOpenAI(FakeOpenAI):
    """The fake server, also counting its rate-limit verdicts (200 admitted / 429 refused)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.verdicts: Counter[int] = Counter()
        self._verdict_lock = threading.Lock()

    def _rate_limited(self, tokens: int) -> float | None:
        wait = super()._rate_limited(tokens)
        with self._verdict_lock:
            self.verdicts[200 if wait is None else 429] += 1
        return wait


def records() -> list[RecordIn]:
    return [RecordIn(f"r{i:04d}", TEXTS[i % len(TEXTS)].format(n=i)) for i in range(RECORDS)]


def scaled_limiter(config: ProviderConfig, minute_s: float) -> RateLimiter:
    """The provider's limiter with the same limits, on a clock where a minute lasts minute_s."""
    scale = 60.0 / minute_s
    return RateLimiter(
        config.requests_per_minute,
        config.tokens_per_minute,
        clock=lambda: time.monotonic() * scale,
        sleep=lambda seconds: time.sleep(seconds / scale),
    )


def run_load(tokens_per_minute: float | None) -> tuple[CountingFakeOpenAI, list[RecordOut]]:
    """Enrich RECORDS records with WORKERS providers against a server enforcing LIMIT."""
    server = CountingFakeOpenAI(latency_s=0.02, tokens_per_minute=LIMIT, window_s=MINUTE_S)
    server.start()
    resource = EnrichmentResource(
        api_key="test-key",
        base_url=server.base_url,
        max_records_per_request=PER_REQUEST,
        max_concurrency=WORKERS,
        tokens_per_minute=tokens_per_minute,
        request_timeout_s=10.0,
    )
    # The run's limit divided between the workers, as each Spark task gets it.
    config = resource.provider_config()
    assert config.tokens_per_minute == (
        None if tokens_per_minute is None else tokens_per_minute / WORKERS
    )
    outcomes: list[RecordOut] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(chunk: list[RecordIn]) -> None:
        try:
            provider = OpenAIChatProvider(config)
            provider.limiter = scaled_limiter(config, MINUTE_S)
            done = provider.run(TASK, chunk)
            with lock:
                outcomes.extend(done)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    chunks = [records()[i::WORKERS] for i in range(WORKERS)]
    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.stop()
    assert not errors, errors
    assert len(outcomes) == RECORDS
    return server, outcomes


def share_429(server: CountingFakeOpenAI) -> float:
    requests = len(server.chat_requests())
    assert requests == sum(server.verdicts.values())  # every request reached the limit check
    return server.verdicts[429] / requests


def test_the_load_is_several_windows_of_the_limit() -> None:
    """The scenario is meaningful: the load exceeds the limit and each share fits a request."""
    request = count_tokens(system_prompt(TASK), MODEL) + count_tokens(
        user_message(records()[:PER_REQUEST]), MODEL
    )
    load = request * math.ceil(RECORDS / PER_REQUEST)
    assert load > 3 * LIMIT  # several windows' worth
    assert request < LIMIT / 2 / WORKERS  # each worker's bucket holds at least one request


def test_without_a_client_limiter_the_server_answers_429() -> None:
    """Control: the same load with no client-side pacing meets the server's limit."""
    server, outcomes = run_load(tokens_per_minute=None)
    assert server.verdicts[429] >= WORKERS
    assert share_429(server) > 2 * MAX_429_SHARE
    # Retry-After is honoured, so records still end well; the 429s are the cost.
    assert Counter(o.status for o in outcomes)[STATUS_OK] >= RECORDS * 0.9


def test_limiter_at_half_the_server_limit_keeps_429s_rare() -> None:
    """At half the limit: no 429 worth counting either."""
    server, outcomes = run_load(tokens_per_minute=LIMIT / 2)
    assert {o.status for o in outcomes} == {STATUS_OK}
    assert all(o.attempts <= 2 for o in outcomes)
    assert share_429(server) <= MAX_429_SHARE


def test_limiter_at_the_server_limit_keeps_429s_rare() -> None:
    """At the server's own limit, (almost) no 429s."""
    server, outcomes = run_load(tokens_per_minute=LIMIT)
    assert {o.status for o in outcomes} == {STATUS_OK}
    assert share_429(server) <= MAX_429_SHARE
