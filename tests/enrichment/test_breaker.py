"""The circuit breaker alone: counts, opening, reasons and the per-process registry (no Spark)."""

import threading

import pytest

from enrichment.breaker import CircuitBreaker, request_bound, shared_breaker


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(3)
    assert not breaker.record_failure("InternalServerError: 500")
    assert not breaker.record_failure("InternalServerError: 500")
    assert not breaker.is_open and breaker.reason is None
    assert breaker.record_failure("APITimeoutError: Request timed out.")  # this one opened it
    assert breaker.is_open
    assert breaker.reason == (
        "circuit open after 3 consecutive failures: APITimeoutError: Request timed out."
    )
    # Later failures are counted but do not reopen it or change the reason.
    assert not breaker.record_failure("other")
    assert breaker.failures == 4
    assert breaker.reason is not None and breaker.reason.endswith("Request timed out.")


def test_a_usable_answer_resets_the_count() -> None:
    breaker = CircuitBreaker(2)
    for _ in range(5):
        breaker.record_failure("InternalServerError")
        breaker.record_success()
    assert not breaker.is_open
    assert (breaker.failures, breaker.consecutive_failures) == (5, 0)


def test_an_auth_error_opens_at_once_and_stays_open() -> None:
    breaker = CircuitBreaker(5)
    assert breaker.record_auth_failure("AuthenticationError: Error code: 401")
    assert breaker.is_open
    assert breaker.reason == (
        "circuit open after an authentication error: AuthenticationError: Error code: 401"
    )
    breaker.record_success()  # no half-open probe: open for the rest of the run
    assert breaker.is_open


def test_threshold_zero_never_opens() -> None:
    breaker = CircuitBreaker(0)
    for _ in range(100):
        breaker.record_failure("InternalServerError")
    breaker.record_auth_failure("AuthenticationError")
    assert not breaker.is_open
    with pytest.raises(ValueError, match="count of failures"):
        CircuitBreaker(-1)


def test_force_open_keeps_the_first_reason() -> None:
    breaker = CircuitBreaker(5)
    breaker.force_open("circuit open after 5 consecutive failures: earlier call")
    breaker.force_open("something else")
    assert breaker.reason == "circuit open after 5 consecutive failures: earlier call"


def test_reason_is_bounded() -> None:
    breaker = CircuitBreaker(1)
    breaker.record_failure("x" * 5000)
    assert breaker.reason is not None and len(breaker.reason) == 500


def test_shared_breakers_are_per_run_endpoint_model_and_task() -> None:
    key = ("run-a", "http://127.0.0.1:1/v1", "gpt-4o-mini", "expense_line_enrichment")
    first = shared_breaker(*key, threshold=2)
    assert shared_breaker(*key, threshold=2) is first  # a later partition in this worker
    first.record_auth_failure("AuthenticationError")
    assert shared_breaker(*key, threshold=2).is_open
    for other in (
        ("run-b", *key[1:]),
        (key[0], "http://127.0.0.1:2/v1", *key[2:]),
        (*key[:2], "gpt-4.1", key[3]),
        (*key[:3], "hr_case_type"),
    ):
        assert not shared_breaker(*other, threshold=2).is_open, other


def test_concurrent_failures_open_it_once() -> None:
    breaker = CircuitBreaker(10)
    opened: list[bool] = []

    def fail() -> None:
        for _ in range(50):
            opened.append(breaker.record_failure("InternalServerError"))

    threads = [threading.Thread(target=fail) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opened.count(True) == 1
    assert breaker.failures == 200


def test_request_bound() -> None:
    assert request_bound(5, workers=4) == 20
    assert request_bound(5, workers=2, tasks=4) == 40
    assert request_bound(0, workers=4) == 0  # no breaker: no bound but the attempt budget
