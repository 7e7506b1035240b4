"""The client-side limiter, on a virtual clock: pacing, bursts, Retry-After and headers."""

import pytest

from enrichment.ratelimit import RateLimiter, parse_reset


class VirtualTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


def test_requests_per_minute_allow_a_burst_then_pace(vt):
    limiter = RateLimiter(requests_per_minute=60, clock=vt.clock, sleep=vt.sleep)
    for _ in range(60):
        assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(1.0)  # one request a second once the burst is spent
    assert limiter.acquire() == pytest.approx(1.0)
    assert vt.now == pytest.approx(1002.0)


def test_sixty_seconds_of_traffic_stays_within_the_limit(vt):
    limiter = RateLimiter(requests_per_minute=120, tokens_per_minute=6000, clock=vt.clock,
                          sleep=vt.sleep)  # fmt: skip
    sent_tokens, requests, start = 0, 0, vt.now
    while vt.now - start < 600:
        limiter.acquire(100)
        sent_tokens += 100
        requests += 1
    minutes = (vt.now - start) / 60
    # After the initial full buckets, throughput is the token limit: 60 requests of 100 a minute.
    assert sent_tokens / minutes <= 6000 * 1.11
    assert requests / minutes <= 120


def test_retry_after_pauses_everything(vt):
    limiter = RateLimiter(clock=vt.clock, sleep=vt.sleep)
    limiter.pause(7)
    assert limiter.acquire() == pytest.approx(7)
    assert limiter.acquire() == 0


def test_exhausted_quota_headers_pause_until_reset(vt):
    limiter = RateLimiter(clock=vt.clock, sleep=vt.sleep)
    limiter.observe({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "2s"})
    assert limiter.acquire() == 0
    limiter.observe({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m30s"})
    assert limiter.acquire() == pytest.approx(90)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1),
        ("6m0s", 360),
        ("20ms", 0.02),
        ("2.5", 2.5),
        ("1h2m", 3720),
        ("", None),
        ("x", None),
    ],
)
def test_parse_reset(value, seconds):
    assert parse_reset(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_no_limits_means_no_waiting(vt):
    limiter = RateLimiter(clock=vt.clock, sleep=vt.sleep)
    assert all(limiter.acquire(10_000) == 0 for _ in range(1000))
    assert vt.sleeps == []
