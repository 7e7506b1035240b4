"""A circuit breaker: after enough consecutive failed requests, stop sending for the run.

An endpoint that is down, misconfigured or answering garbage fails every request the same way;
retrying each record within its attempt budget only multiplies the bill (434 requests for one
night's 288 expense lines, every one failed). The breaker counts consecutive failed requests
(server errors, timeouts, connection errors, unreadable or malformed answers) and opens after
``threshold`` of them; an authentication error (401/403) opens it at once, since no retry can fix
a key. A request that gets a usable answer resets the count. Rate limits, refusals and a single
record's bad answer are neither: they say nothing about the endpoint's health.

Once open, a breaker stays open: nothing is sent for the rest of the run (no half-open probe),
and every record not yet answered gets :attr:`CircuitBreaker.reason` as its error.

Providers are built once per Spark partition inside ``mapInPandas``, so breakers live in a
module-level registry (:func:`shared_breaker`), one per Python worker process, keyed by run,
endpoint, model and task: a later partition in the same worker finds the breaker its
predecessor opened. Pure Python, thread-safe, no Spark.
"""

import threading
from collections.abc import Hashable

AUTH_STATUSES = frozenset({401, 403})


class CircuitBreaker:
    """Counts consecutive failed requests; open after ``threshold`` of them (0: never opens).

    Args:
        threshold: Consecutive failed requests that open the breaker; ``0`` disables it.
    """

    def __init__(self, threshold: int) -> None:
        if threshold < 0:
            raise ValueError(f"a breaker threshold is a count of failures, not {threshold}")
        self.threshold = threshold
        self._lock = threading.Lock()
        self._consecutive = 0
        self._reason: str | None = None
        # Requests this breaker saw fail, in a row or not (what the open breaker cost).
        self.failures = 0

    @property
    def is_open(self) -> bool:
        """True once the breaker opened: nothing more is to be sent."""
        return self._reason is not None

    @property
    def reason(self) -> str | None:
        """Why it opened (``circuit open after N consecutive failures: <last error>``), or None."""
        return self._reason

    @property
    def consecutive_failures(self) -> int:
        """Failed requests since the last usable answer."""
        return self._consecutive

    def record_success(self) -> None:
        """A request got a usable answer: the endpoint works, the count starts again."""
        with self._lock:
            self._consecutive = 0

    def record_failure(self, error: str) -> bool:
        """A request failed with ``error``; returns True when this failure opened the breaker."""
        with self._lock:
            self.failures += 1
            self._consecutive += 1
            if self._reason is None and self.threshold and self._consecutive >= self.threshold:
                self._reason = (
                    f"circuit open after {self._consecutive} consecutive failures: {error}"
                )[:500]
                return True
            return False

    def record_auth_failure(self, error: str) -> bool:
        """An authentication error (401/403): open at once; True when this opened it."""
        with self._lock:
            self.failures += 1
            self._consecutive += 1
            if self._reason is None and self.threshold:
                self._reason = f"circuit open after an authentication error: {error}"[:500]
                return True
            return False

    def force_open(self, reason: str) -> None:
        """Open with ``reason`` (an earlier step of the run found the endpoint broken)."""
        with self._lock:
            if self._reason is None:
                self._reason = reason


class BreakerRegistry:
    """Breakers by key, created on first use with the threshold given then."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[Hashable, CircuitBreaker] = {}

    def get(self, key: Hashable, threshold: int) -> CircuitBreaker:
        """The breaker for ``key``, created closed if this process has none yet."""
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(threshold)
            return breaker

    def clear(self) -> None:
        """Forget every breaker."""
        with self._lock:
            self._breakers.clear()


# One per Python process: on a Spark executor, one per Python worker, shared by the partitions
# that worker runs one after another.
_PROCESS_BREAKERS = BreakerRegistry()


def shared_breaker(
    scope: str, endpoint: str, model: str, task: str, threshold: int
) -> CircuitBreaker:
    """This process's breaker for one run (``scope``), endpoint, model and task."""
    return _PROCESS_BREAKERS.get((scope, endpoint, model, task), threshold)


def request_bound(threshold: int, workers: int, tasks: int = 1) -> int:
    """Most requests a broken endpoint can cost a run before every breaker is open.

    Each of ``workers`` Python workers that call the provider for a task sends at most
    ``threshold`` failing requests before its breaker opens (requests within a worker are
    sequential), per task; ``threshold = 0`` means no breaker, hence no bound (returns 0).
    """
    return threshold * workers * tasks
