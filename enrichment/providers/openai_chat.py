"""The OpenAI-compatible provider: chat completions with strict JSON-schema output.

Speaks to any ``base_url`` that implements ``/v1/chat/completions`` (OpenAI, Azure OpenAI, vLLM,
Ollama). Packs records per request, retries failed records alone within a per-record attempt
budget, honours ``Retry-After``, stops sending when the run's token budget is spent, and stops
for good once the task's circuit breaker opens (``enrichment/breaker.py``: consecutive failed
requests, or a refused key).
"""

import time

import openai

from enrichment.breaker import BreakerRegistry, CircuitBreaker
from enrichment.journal import journal_answers
from enrichment.models import SOURCE_LLM, RecordIn, RecordOut, TaskSpec, failed_outcomes
from enrichment.packing import user_message
from enrichment.providers import common
from enrichment.providers.base import ProviderConfig
from enrichment.ratelimit import RateLimiter
from enrichment.tokens import count_tokens

_RETRYABLE = (openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError)


class OpenAIChatProvider:
    """Chat-completions client with packing, retries and a token budget."""

    def __init__(self, config: ProviderConfig, sleep=time.sleep) -> None:
        self.config = config
        self.model_id = config.model
        self._sleep = sleep
        self._tokens_spent = 0
        self._breakers = BreakerRegistry()  # used when the config names no run to share with
        # This worker's share of the run's limits (EnrichmentResource divides them per task).
        self.limiter = RateLimiter(
            config.requests_per_minute, config.tokens_per_minute, sleep=sleep
        )
        self.client = common.openai_client(config)

    def _cost(self, tokens_in: int, tokens_out: int) -> float:
        return common.cost_usd(self.config, tokens_in, tokens_out)

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        self._sleep(common.backoff_delay(self.config, attempt, retry_after))

    def run(self, task: TaskSpec, records: list[RecordIn]) -> list[RecordOut]:
        """Enrich ``records``: one outcome per record, never an exception for a bad answer."""
        outcomes = failed_outcomes(records, SOURCE_LLM, self.model_id)
        system, schema = common.prompt_and_schema(task)
        breaker = common.breaker_for(self.config, task, self._breakers)
        packed, alone = list(records), []
        while packed or alone:
            retry_packed: list[RecordIn] = []
            retry_alone: list[RecordIn] = []
            for batch in common.request_groups(self.config, self.model_id, packed, alone):
                transient, failed = self._send(task, system, schema, batch, outcomes, breaker)
                if self.config.journal_dir:
                    # Durable before the next request: a killed run keeps what it paid for.
                    journal_answers(
                        self.config.journal_dir,
                        self.config.journal_run,
                        task,
                        [outcomes[r.id] for r in batch],
                    )
                # A transport failure retries the pack as it was; records that failed inside an
                # answer go again alone, so one bad record cannot keep failing its neighbours.
                (retry_packed if transient else retry_alone).extend(failed)
            packed = common.within_attempts(self.config, retry_packed, outcomes)
            alone = common.within_attempts(self.config, retry_alone, outcomes)
        return list(outcomes.values())

    def _send(
        self,
        task: TaskSpec,
        system: str,
        schema: dict,
        batch: list[RecordIn],
        outcomes: dict[str, RecordOut],
        breaker: CircuitBreaker,
    ) -> tuple[bool, list[RecordIn]]:
        if breaker.is_open:  # the endpoint is known broken: these records are not sent
            common.fail_all(batch, outcomes, breaker.reason or "circuit open")
            return False, []
        user = user_message(batch)
        estimate = count_tokens(system, self.model_id) + count_tokens(user, self.model_id)
        if self._tokens_spent + estimate > self.config.token_budget:
            common.skip_over_budget(batch, outcomes)
            return False, []
        for r in batch:
            outcomes[r.id].attempts += 1
        self.limiter.acquire(estimate)
        started = time.perf_counter()
        try:
            try:
                raw = self.client.chat.completions.with_raw_response.create(
                    model=self.model_id,
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                    response_format={"type": "json_schema", "json_schema": schema},
                    max_tokens=self.config.max_output_tokens_per_request,
                    temperature=0,
                )
            finally:
                # Count the request from its answer (the provider counted it on arrival, after
                # it left): the window never frees up before the provider's.
                self.limiter.settle()
            # The provider's own account of what is left this minute paces the next request.
            self.limiter.observe(raw.headers)
            response = raw.parse()
        except (*_RETRYABLE, openai.APITimeoutError) as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            for r in batch:
                outcomes[r.id].error = error
            # A rate limit says the endpoint is busy, not broken.
            if not isinstance(exc, openai.RateLimitError):
                breaker.record_failure(error)
            attempt = max(outcomes[r.id].attempts for r in batch)
            if attempt < self.config.max_attempts_per_record and not breaker.is_open:
                self._backoff(attempt, common.retry_after_seconds(exc))
            return True, list(batch)
        except openai.APIStatusError as exc:  # 4xx other than 429: not worth retrying
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            for r in batch:
                outcomes[r.id].error = error
            if isinstance(exc, common.AUTH_ERRORS):  # a refused key fails every request alike
                breaker.record_auth_failure(error)
            return False, []
        except ValueError as exc:  # a 200 whose body is not JSON (e.g. a proxy's error page)
            self._tokens_spent += estimate  # it may well have been billed
            error = f"invalid response: {type(exc).__name__}"
            breaker.record_failure(error)
            return False, common.fail_all(batch, outcomes, error)
        latency_ms = (time.perf_counter() - started) * 1000
        usage = getattr(response, "usage", None)
        tokens_in = usage.prompt_tokens if usage else estimate
        tokens_out = usage.completion_tokens if usage else 0
        self._tokens_spent += tokens_in + tokens_out
        common.charge(batch, outcomes, tokens_in, tokens_out, self._cost(tokens_in, tokens_out))
        for r in batch:
            outcomes[r.id].latency_ms = latency_ms
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            # Not a chat completion (no choices, or a non-JSON body the SDK returned as text).
            breaker.record_failure("invalid response: no choices")
            return False, common.fail_all(batch, outcomes, "invalid response: no choices")
        choice = choices[0]
        message = choice.message
        if getattr(message, "refusal", None):
            return False, common.fail_all(batch, outcomes, f"refusal: {message.refusal[:200]}")
        if choice.finish_reason == "length":
            return False, common.fail_all(batch, outcomes, "truncated: finish_reason=length")
        retry = common.apply_answers(task, message.content or "", batch, outcomes)
        common.judge_answers(batch, outcomes, breaker)
        return False, retry
