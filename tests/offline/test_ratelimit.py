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


def test_requests_per_minute_allow_the_minute_at_once_then_wait_for_the_window(vt):
    limiter = RateLimiter(requests_per_minute=60, clock=vt.clock, sleep=vt.sleep)
    for _ in range(60):
        assert limiter.acquire() == 0
    # The 61st waits until the first leaves the window: never 61 in any 60 seconds.
    assert limiter.acquire() == pytest.approx(60.0)
    assert limiter.acquire() == 0  # the second also left the window at the same instant
    assert vt.now == pytest.approx(1060.0)


def test_no_sixty_second_window_ever_exceeds_the_limits_not_even_the_first(vt):
    limiter = RateLimiter(requests_per_minute=120, tokens_per_minute=6000, clock=vt.clock,
                          sleep=vt.sleep)  # fmt: skip
    sent: list[tuple[float, int]] = []
    start = vt.now
    sizes = [100, 250, 40, 900, 5, 300]
    n = 0
    while vt.now - start < 600:
        tokens = sizes[n % len(sizes)]
        limiter.acquire(tokens)
        sent.append((vt.now, tokens))
        n += 1
    for t0, _ in sent:
        window = [tok for t, tok in sent if t0 <= t < t0 + 60]
        assert sum(window) <= 6000 and len(window) <= 120
    # And it uses the limit: over ten minutes, at least 90% of 10 × 6000 tokens were sent.
    assert sum(tok for _, tok in sent) >= 0.9 * 6000 * 10


def test_a_request_larger_than_the_limit_waits_for_an_empty_window(vt):
    limiter = RateLimiter(tokens_per_minute=1000, clock=vt.clock, sleep=vt.sleep)
    assert limiter.acquire(600) == 0
    assert limiter.acquire(5000) == pytest.approx(60.0)


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


def test_a_settled_request_counts_from_its_answer(vt):
    limiter = RateLimiter(requests_per_minute=1, clock=vt.clock, sleep=vt.sleep)
    assert limiter.acquire() == 0
    vt.now += 5  # the answer took five seconds
    limiter.settle()
    assert limiter.acquire() == pytest.approx(60.0)  # 60 s after the answer, not after sending
    assert vt.now == pytest.approx(1065.0)
