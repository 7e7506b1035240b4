"""What the OpenAI-compatible providers share: answers applied to records, costs, backoff."""

import random

import openai

from enrichment.breaker import BreakerRegistry, CircuitBreaker, shared_breaker
from enrichment.models import STATUS_OK, STATUS_SKIPPED, RecordIn, RecordOut, TaskSpec
from enrichment.packing import pack, parse_response, response_schema
from enrichment.prompts import system_prompt
from enrichment.providers.base import ProviderConfig

# The key was refused: no retry and no other record can succeed.
AUTH_ERRORS = (openai.AuthenticationError, openai.PermissionDeniedError)


def cost_usd(config: ProviderConfig, tokens_in: int, tokens_out: int, factor: float = 1.0) -> float:
    """Price of a request at the configured per-million-token prices (times ``factor``)."""
    full = tokens_in * config.price_input_per_mtok + tokens_out * config.price_output_per_mtok
    return full * factor / 1e6


def backoff_delay(config: ProviderConfig, attempt: int, retry_after: float | None) -> float:
    """``Retry-After`` when the provider gave one, else exponential backoff with jitter."""
    if retry_after is not None:
        return min(retry_after, config.backoff_max_s)
    delay = min(config.backoff_base_s * 2 ** (attempt - 1), config.backoff_max_s)
    return delay * (0.5 + random.random() / 2)


def retry_after_seconds(exc: Exception) -> float | None:
    """The ``Retry-After`` header of a failed request, in seconds, if any."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def breaker_for(config: ProviderConfig, task: TaskSpec, own: BreakerRegistry) -> CircuitBreaker:
    """The breaker a provider consults for ``task``: the run's, shared by this process's
    partitions, when ``config.breaker_scope`` names the run; else the provider's ``own``."""
    if config.breaker_scope is None:
        breaker = own.get(task.name, config.breaker_failures)
    else:
        endpoint = config.base_url or "https://api.openai.com/v1"
        breaker = shared_breaker(
            config.breaker_scope, endpoint, config.model, task.name, config.breaker_failures
        )
    if config.circuit_open:
        breaker.force_open(config.circuit_open)
    return breaker


def fail_all(records: list[RecordIn], outcomes: dict[str, RecordOut], error: str) -> list[RecordIn]:
    """Record ``error`` on every record; return them all (for a retry)."""
    for r in records:
        outcomes[r.id].error = error
    return list(records)


def apply_answers(
    task: TaskSpec, content: str, records: list[RecordIn], outcomes: dict[str, RecordOut]
) -> list[RecordIn]:
    """Check a response against its records; fill the valid answers, return the rest to retry."""
    texts = {r.id: r.text for r in records}
    model = outcomes[records[0].id].model if records else ""
    parsed = parse_response(task, content, [r.id for r in records], texts, model)
    retry = []
    for r in records:
        out = outcomes[r.id]
        if r.id in parsed.answers:
            answer = parsed.answers[r.id]
            out.status, out.error = STATUS_OK, None
            out.label, out.confidence, out.summary = answer.label, answer.confidence, answer.summary
            out.labels, out.rationale = answer.labels, answer.rationale
            out.extraction = answer.extraction
        else:
            out.error = parsed.problems.get(r.id, "no answer")
            retry.append(r)
    return retry


def judge_answers(
    records: list[RecordIn], outcomes: dict[str, RecordOut], breaker: CircuitBreaker
) -> None:
    """Tell ``breaker`` what an applied answer says of the endpoint.

    Any usable answer: it works. No answer at all because the content was not the JSON asked
    for: a failed request. Anything else (a bad label, a missing id) is a record's problem.
    """
    if any(outcomes[r.id].status == STATUS_OK for r in records):
        breaker.record_success()
    elif all((outcomes[r.id].error or "").startswith("malformed JSON") for r in records):
        breaker.record_failure(outcomes[records[0].id].error or "malformed JSON")


def openai_client(config: ProviderConfig) -> openai.OpenAI:
    """The SDK client of ``config``'s endpoint, without the SDK's own retries (ours are counted
    per record, bounded, and wait through the provider's ``sleep``)."""
    return openai.OpenAI(
        api_key=config.api_key or "unset",
        base_url=config.base_url,
        timeout=config.request_timeout_s,
        max_retries=0,
    )


def prompt_and_schema(task: TaskSpec) -> tuple[str, dict]:
    """The system prompt of ``task``'s requests and the ``json_schema`` of their strict
    ``response_format``."""
    return system_prompt(task), {"name": task.name, "strict": True, "schema": response_schema(task)}


def request_groups(
    config: ProviderConfig, model_id: str, packed: list[RecordIn], alone: list[RecordIn]
) -> list[list[RecordIn]]:
    """The records of one round as requests: ``packed`` in packs, each of ``alone`` by itself."""
    groups = pack(
        packed, model_id, config.max_input_tokens_per_request, config.max_records_per_request
    )
    return groups + [[r] for r in alone]


def within_attempts(
    config: ProviderConfig, records: list[RecordIn], outcomes: dict[str, RecordOut]
) -> list[RecordIn]:
    """The ``records`` that may be sent again (fewer attempts than ``max_attempts_per_record``)."""
    return [r for r in records if outcomes[r.id].attempts < config.max_attempts_per_record]


def skip_over_budget(records: list[RecordIn], outcomes: dict[str, RecordOut]) -> None:
    """Mark ``records`` skipped: sending them would overspend the run's token budget."""
    for r in records:
        out = outcomes[r.id]
        out.status = STATUS_SKIPPED
        out.error = (
            f"run token budget exhausted before a retry (last error: {out.error})"
            if out.attempts
            else "run token budget exhausted before this record was sent"
        )


def charge(
    records: list[RecordIn],
    outcomes: dict[str, RecordOut],
    tokens_in: int,
    tokens_out: int,
    cost: float,
) -> None:
    """Split one request's tokens and ``cost`` evenly over its ``records``."""
    share = 1.0 / len(records)
    for r in records:
        out = outcomes[r.id]
        out.tokens_in += round(tokens_in * share)
        out.tokens_out += round(tokens_out * share)
        out.cost_usd += cost * share
