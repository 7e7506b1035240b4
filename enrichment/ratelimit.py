"""A client-side limiter on requests and tokens per minute, for one process.

A sliding window over the requests and tokens sent in the last minute, plus a pause that a
429's ``Retry-After`` or a provider's ``x-ratelimit-*`` headers impose. ``acquire`` computes the
whole wait at once and sleeps once, so it is deterministic with an injected clock and sleep.
"""

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None) -> float | None:
    """OpenAI's reset durations (``"1s"``, ``"6m0s"``, ``"20ms"``) or plain seconds, in seconds."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts:
            return None
        return sum(float(v) * _UNIT_SECONDS[u] for v, u in parts)


class RateLimiter:
    """Paces calls under ``requests_per_minute`` and ``tokens_per_minute`` (None: no limit).

    A sliding window, as providers count: in any ``window_s`` seconds (60), at most that many
    requests and tokens leave. A token bucket that starts full would let up to twice the limit
    through in the first minute (the full bucket, then its refill) and provoke the very 429s it
    exists to prevent.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        window_s: float = 60.0,
    ) -> None:
        self._req_cap = requests_per_minute
        self._tok_cap = tokens_per_minute
        self._window_s = window_s
        self._clock, self._sleep = clock, sleep
        self._sent: deque[tuple[float, int]] = deque()  # (when, tokens) of requests in the window
        self._last = clock()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self._window_s:
            self._sent.popleft()

    def _earliest(self, start: float, tokens: int) -> float:
        """The first time at or after ``start`` when one more request of ``tokens`` fits."""
        requests = len(self._sent)
        used = sum(t for _, t in self._sent)
        at = start
        for when, spent in self._sent:  # oldest first: each frees its share when it expires
            fits_requests = not self._req_cap or requests + 1 <= self._req_cap
            fits_tokens = not self._tok_cap or used + tokens <= self._tok_cap
            if fits_requests and fits_tokens:
                break
            at = max(at, when + self._window_s)
            requests, used = requests - 1, used - spent
        return at

    def acquire(self, tokens: int = 0) -> float:
        """Wait until one request of ``tokens`` tokens may go; return the seconds waited."""
        with self._lock:
            now = max(self._clock(), self._last)
            start = max(now, self._blocked_until)
            self._expire(start)
            # A request larger than the whole limit goes once the window is empty.
            needed = min(tokens, int(self._tok_cap)) if self._tok_cap else tokens
            at = self._earliest(start, needed)
            wait = at - now
            if wait > 0:
                self._sleep(wait)
                self.waited_s += wait
            self._expire(at)
            self._sent.append((at, needed))
            self._last = at
            return max(0.0, wait)

    def settle(self) -> None:
        """Move the latest request to now, once its answer is back.

        The provider counts a request when it arrives, later than it left; counted from its
        departure, the client's window would free up before the provider's and a request at the
        edge would meet a 429. Each provider owns its limiter and sends one request at a time,
        so the latest entry is the request just answered.
        """
        with self._lock:
            if self._sent:
                when, tokens = self._sent.pop()
                now = max(when, self._clock())
                self._sent.append((now, tokens))
                self._last = max(self._last, now)

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's ``Retry-After``, an exhausted quota)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, max(self._clock(), self._last) + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Honour ``x-ratelimit-remaining-*`` / ``x-ratelimit-reset-*`` from a response."""
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
            if remaining is not None and reset is not None and remaining.strip() == "0":
                self.pause(reset)
