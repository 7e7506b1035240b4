"""A client-side limiter on requests and tokens per minute, for one process.

Two token buckets (requests, tokens), refilled continuously, plus a pause that a 429's
``Retry-After`` or a provider's ``x-ratelimit-*`` headers impose. ``acquire`` computes the whole
wait at once and sleeps once, so it is deterministic with an injected clock and sleep.
"""

import re
import threading
import time
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
    """Paces calls under ``requests_per_minute`` and ``tokens_per_minute`` (None: no limit)."""

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._req_cap = requests_per_minute
        self._tok_cap = tokens_per_minute
        self._req = float(requests_per_minute or 0)
        self._tok = float(tokens_per_minute or 0)
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        if self._req_cap:
            self._req = min(self._req_cap, self._req + elapsed * self._req_cap / 60)
        if self._tok_cap:
            self._tok = min(self._tok_cap, self._tok + elapsed * self._tok_cap / 60)
        self._last = max(self._last, now)

    def acquire(self, tokens: int = 0) -> float:
        """Wait until one request of ``tokens`` tokens may go; return the seconds waited."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            start = max(now, self._last)
            wait = max(0.0, self._blocked_until - start)
            if self._req_cap:
                deficit = 1 - (self._req + wait * self._req_cap / 60)
                if deficit > 0:
                    wait += deficit * 60 / self._req_cap
            if self._tok_cap:
                needed = min(tokens, self._tok_cap)  # a huge request waits for a full bucket
                deficit = needed - (self._tok + wait * self._tok_cap / 60)
                if deficit > 0:
                    wait += deficit * 60 / self._tok_cap
            if wait > 0:
                self._sleep(wait)
                self.waited_s += wait
                self._refill(start + wait)
            if self._req_cap:
                self._req -= 1
            if self._tok_cap:
                self._tok -= min(tokens, self._tok_cap)
            return wait

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
