"""The OpenAI Batch API route: the chat provider's requests, submitted as one JSONL batch.

For latency-tolerant (nightly) partitions: a batch is billed at half the synchronous price and
answered within its 24 h completion window. Records are packed, prompted and validated exactly
as by ``OpenAIChatProvider``; each pack becomes one line of the batch input file, and the line's
``custom_id`` maps its answer back to its records.

Retries are follow-up batches, within ``max_attempts_per_record`` (so they keep the batch
price): records whose answer was invalid go again alone, one record per line, so one bad record
cannot keep failing its neighbours; lines that errored transiently (429, 5xx), and lines of a
batch that ended ``failed`` or ``expired``, go again as the pack they were. Not retried: client
errors (4xx), a batch someone ``cancelled``, and a batch still unfinished after
``batch_max_wait_s`` (we cancel it: waiting again would break the same deadline).

A batch is one request to the task's circuit breaker (``enrichment/breaker.py``): a submission
refused for the key (401/403) opens it at once; a batch that could not be submitted, polled or
downloaded, or that came back without a single usable answer, counts as a failure; once it is
open no further batch is submitted and the records left fail with its reason.
"""

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai

from enrichment.breaker import BreakerRegistry, CircuitBreaker
from enrichment.models import (
    SOURCE_LLM,
    STATUS_FAILED,
    RecordIn,
    RecordOut,
    TaskSpec,
    failed_outcomes,
)
from enrichment.packing import user_message
from enrichment.providers import common
from enrichment.providers.base import ProviderConfig
from enrichment.tokens import count_tokens

log = logging.getLogger(__name__)

BATCH_ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
BATCH_PRICE_FACTOR = 0.5  # the Batch API bills half the synchronous token prices
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
# ``failed`` also covers transient rejections (``token_limit_exceeded``: too many tokens
# enqueued) and ``expired`` means capacity ran out, so another batch may well succeed;
# ``cancelled`` was somebody's decision and is not overridden.
RETRYABLE_END_STATUSES = frozenset({"failed", "expired"})
_TRANSIENT = (openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError)
_NOT_RETRIED_LINE_CODES = frozenset({"batch_cancelled"})
# How the failed records of one line go again.
_AS_PACK, _ALONE, _NO_RETRY = "pack", "alone", "none"


@dataclass
class _Line:
    """One request of the batch input file: a pack of records under a ``custom_id``."""

    custom_id: str
    records: list[RecordIn]
    user: str
    estimate: int


class _BatchAbortError(Exception):
    """The batch gave no answer at all; ``retry`` says whether another batch may help.

    ``billed`` keeps the token reservation spent: the batch may have run, we cannot tell.
    """

    def __init__(self, error: str, retry: bool, billed: bool = False, auth: bool = False) -> None:
        super().__init__(error)
        self.error = error
        self.retry = retry
        self.billed = billed
        self.auth = auth  # the key was refused


class OpenAIBatchProvider:
    """Batch API client with the chat provider's packing, validation and token budget.

    Args:
        config: Provider settings; ``batch_poll_interval_s`` and ``batch_max_wait_s`` drive
            the polling.
        sleep: Waits between polls and before retries (inject a recorder in tests).
        clock: Monotonic seconds, for the wait deadline and latency (inject a fake in tests).
    """

    def __init__(
        self,
        config: ProviderConfig,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.model_id = config.model
        self._sleep = sleep
        self._clock = clock
        self._tokens_spent = 0
        self._breakers = BreakerRegistry()  # used when the config names no run to share with
        self.client = common.openai_client(config)

    # --- the run --------------------------------------------------------------------------

    def run(self, task: TaskSpec, records: list[RecordIn]) -> list[RecordOut]:
        """Enrich ``records`` through batches: one outcome per record, never an exception."""
        outcomes = failed_outcomes(records, SOURCE_LLM, self.model_id)
        system, schema = common.prompt_and_schema(task)
        breaker = common.breaker_for(self.config, task, self._breakers)
        packed, alone = list(records), []
        round_no = 0
        while packed or alone:
            if breaker.is_open:  # the endpoint is known broken: no further batch
                common.fail_all(
                    packed + alone, outcomes, self._redact(breaker.reason or "circuit open")
                )
                break
            round_no += 1
            groups = common.request_groups(self.config, self.model_id, packed, alone)
            lines = self._admit(system, groups, outcomes, round_no)
            if not lines:
                break
            retry_packed, retry_alone = self._run_batch(
                task, system, schema, lines, outcomes, breaker
            )
            packed = common.within_attempts(self.config, retry_packed, outcomes)
            alone = common.within_attempts(self.config, retry_alone, outcomes)
        for out in outcomes.values():
            if out.error:
                out.error = self._redact(out.error)
        return list(outcomes.values())

    def _admit(
        self,
        system: str,
        groups: list[list[RecordIn]],
        outcomes: dict[str, RecordOut],
        round_no: int,
    ) -> list[_Line]:
        """Lines for the packs that fit the run's token budget; the others are skipped."""
        system_tokens = count_tokens(system, self.model_id)
        lines: list[_Line] = []
        for i, group in enumerate(groups):
            user = user_message(group)
            estimate = system_tokens + count_tokens(user, self.model_id)
            if self._tokens_spent + estimate > self.config.token_budget:
                common.skip_over_budget(group, outcomes)
                continue
            # Every line of a batch is sent at once, so the estimate is reserved up front and
            # trued up against the reported usage when the results arrive.
            self._tokens_spent += estimate
            for r in group:
                outcomes[r.id].attempts += 1
            lines.append(_Line(f"pack-{round_no}-{i}", group, user, estimate))
        return lines

    def _run_batch(
        self,
        task: TaskSpec,
        system: str,
        schema: dict[str, Any],
        lines: list[_Line],
        outcomes: dict[str, RecordOut],
        breaker: CircuitBreaker,
    ) -> tuple[list[RecordIn], list[RecordIn]]:
        """Submit one batch and settle its lines: (records to retry as packs, to retry alone)."""
        started = self._clock()
        try:
            batch = self._submit(task, system, schema, lines)
            batch = self._wait(batch)
            entries = self._download(batch)
        except _BatchAbortError as exc:
            if not exc.billed:
                self._tokens_spent -= sum(line.estimate for line in lines)
            failed = [r for line in lines for r in line.records]
            common.fail_all(failed, outcomes, exc.error)
            if exc.auth:
                breaker.record_auth_failure(exc.error)
            else:
                breaker.record_failure(exc.error)
            if not exc.retry or breaker.is_open:
                return [], []
            self._backoff_before_retry(failed, outcomes)
            return failed, []
        latency_ms = (self._clock() - started) * 1000
        retry_packed: list[RecordIn] = []
        retry_alone: list[RecordIn] = []
        for line in lines:
            for r in line.records:
                outcomes[r.id].latency_ms = latency_ms
            retry, failed = self._settle(task, line, entries.get(line.custom_id), batch, outcomes)
            if retry == _AS_PACK:
                retry_packed.extend(failed)
            elif retry == _ALONE:
                retry_alone.extend(failed)
        settled = [r for line in lines for r in line.records]
        if any(outcomes[r.id].status != STATUS_FAILED for r in settled):
            breaker.record_success()
        elif batch.status != "cancelled":  # a cancelled batch was somebody's decision
            breaker.record_failure(outcomes[settled[0].id].error or f"batch {batch.status}")
        if batch.status == "failed" and retry_packed:
            # A rejected batch (e.g. too many tokens enqueued) is resubmitted after a pause.
            self._backoff_before_retry(retry_packed, outcomes)
        return retry_packed, retry_alone

    # --- talking to the Batch API ---------------------------------------------------------

    def _request_body(self, system: str, user: str, schema: dict[str, Any]) -> dict[str, Any]:
        """Exactly the body ``OpenAIChatProvider`` sends for the same pack."""
        return {
            "model": self.model_id,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_schema", "json_schema": schema},
            "max_tokens": self.config.max_output_tokens_per_request,
            "temperature": 0,
        }

    def _submit(
        self, task: TaskSpec, system: str, schema: dict[str, Any], lines: list[_Line]
    ) -> Any:
        """Upload the JSONL input file and create the batch."""
        data = "".join(
            json.dumps(
                {
                    "custom_id": line.custom_id,
                    "method": "POST",
                    "url": BATCH_ENDPOINT,
                    "body": self._request_body(system, line.user, schema),
                },
                ensure_ascii=False,
            )
            + "\n"
            for line in lines
        ).encode("utf-8")
        filename = f"{task.name}-{uuid.uuid4().hex[:12]}.jsonl"
        try:
            uploaded = self.client.files.create(
                file=(filename, data, "application/jsonl"), purpose="batch"
            )
            batch = self.client.batches.create(
                input_file_id=uploaded.id,
                endpoint=BATCH_ENDPOINT,
                completion_window=COMPLETION_WINDOW,
                metadata={"task": task.name, "prompt_version": task.prompt_version},
            )
        except _TRANSIENT as exc:
            raise _BatchAbortError(
                f"batch submission failed: {self._describe(exc)}", True
            ) from None
        except (openai.OpenAIError, ValueError) as exc:  # 4xx or an unreadable answer
            raise _BatchAbortError(
                f"batch submission failed: {self._describe(exc)}",
                False,
                auth=isinstance(exc, common.AUTH_ERRORS),
            ) from None
        records = sum(len(line.records) for line in lines)
        log.info("submitted batch %s: %d requests, %d records", batch.id, len(lines), records)
        return batch

    def _wait(self, batch: Any) -> Any:
        """Poll until the batch ends; past ``batch_max_wait_s``, cancel it and give up."""
        max_wait = self.config.batch_max_wait_s
        deadline = self._clock() + max_wait
        last_error = ""
        while batch.status not in TERMINAL_STATUSES:
            remaining = deadline - self._clock()
            if remaining <= 0:
                self._cancel(batch.id)
                raise _BatchAbortError(
                    f"batch not finished within {max_wait:g}s (last status {batch.status}"
                    f"{last_error}); cancelled",
                    retry=False,
                    billed=True,
                )
            self._sleep(min(self.config.batch_poll_interval_s, remaining))
            try:
                batch = self.client.batches.retrieve(batch.id)
            except _TRANSIENT as exc:
                # The batch runs server-side whatever happens to one poll: keep polling.
                last_error = f", last poll error {self._describe(exc)}"
                log.warning("polling batch %s failed: %s", batch.id, self._describe(exc))
            except (openai.OpenAIError, ValueError) as exc:
                raise _BatchAbortError(
                    f"batch could not be polled: {self._describe(exc)}", False, billed=True
                ) from None
        log.info("batch %s ended %s", batch.id, batch.status)
        return batch

    def _cancel(self, batch_id: str) -> None:
        """Best effort: a batch we stopped waiting for should stop costing money."""
        try:
            self.client.batches.cancel(batch_id)
        except (openai.OpenAIError, ValueError) as exc:
            log.warning("cancelling batch %s failed: %s", batch_id, self._describe(exc))

    def _download(self, batch: Any) -> dict[str, dict[str, Any]]:
        """Result entries by ``custom_id``: the output file first, then the error file."""
        entries: dict[str, dict[str, Any]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for raw in self._fetch(file_id).splitlines():
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue  # an unreadable line leaves its request without a result
                if isinstance(entry, dict) and isinstance(entry.get("custom_id"), str):
                    entries.setdefault(entry["custom_id"], entry)
        return entries

    def _fetch(self, file_id: str) -> str:
        """A file's text, retried on transient errors: the batch is done and already billed."""
        max_attempts = self.config.max_attempts_per_record
        error = ""
        for attempt in range(1, max_attempts + 1):
            try:
                return self.client.files.content(file_id).content.decode("utf-8", "replace")
            except _TRANSIENT as exc:
                error = self._describe(exc)
                if attempt < max_attempts:
                    self._backoff(attempt, common.retry_after_seconds(exc))
            except (openai.OpenAIError, ValueError) as exc:
                error = self._describe(exc)
                break
        raise _BatchAbortError(
            f"batch results could not be downloaded: {error}", False, billed=True
        )

    # --- settling one line ------------------------------------------------------------------

    def _settle(
        self,
        task: TaskSpec,
        line: _Line,
        entry: dict[str, Any] | None,
        batch: Any,
        outcomes: dict[str, RecordOut],
    ) -> tuple[str, list[RecordIn]]:
        """Apply one line's result: how to retry (pack, alone or not), and what failed.

        A line that did not run (errored, expired) goes again as the pack it was; a line that
        ran but whose answer is unusable goes again record by record.
        """
        records = line.records
        if entry is None:
            self._tokens_spent -= line.estimate  # a request without a result did not run
            if batch.status == "completed":
                return _AS_PACK, common.fail_all(records, outcomes, "no result in batch output")
            retry = _AS_PACK if batch.status in RETRYABLE_END_STATUSES else _NO_RETRY
            return retry, common.fail_all(records, outcomes, self._batch_reason(batch))
        response = entry.get("response")
        response = response if isinstance(response, dict) else None
        if entry.get("error") or response is None or response.get("status_code") != 200:
            self._tokens_spent -= line.estimate  # failed requests are not billed
            error, transient = self._line_error(entry.get("error"), response)
            retry = _AS_PACK if transient else _NO_RETRY
            return retry, common.fail_all(records, outcomes, error)
        body = response.get("body")
        if not isinstance(body, dict):
            return _ALONE, common.fail_all(records, outcomes, "invalid response: no body")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        tokens_in = int(usage.get("prompt_tokens") or line.estimate)
        tokens_out = int(usage.get("completion_tokens") or 0)
        self._tokens_spent += tokens_in + tokens_out - line.estimate
        common.charge(records, outcomes, tokens_in, tokens_out, self._cost(tokens_in, tokens_out))
        choices = body.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or not isinstance(message, dict):
            return _ALONE, common.fail_all(records, outcomes, "invalid response: no choices")
        if message.get("refusal"):
            refusal = f"refusal: {str(message['refusal'])[:200]}"
            return _ALONE, common.fail_all(records, outcomes, refusal)
        if choice.get("finish_reason") == "length":
            return _ALONE, common.fail_all(records, outcomes, "truncated: finish_reason=length")
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        return _ALONE, common.apply_answers(task, text, records, outcomes)

    @staticmethod
    def _line_error(error: Any, response: dict[str, Any] | None) -> tuple[str, bool]:
        """The message of a request that failed inside the batch, and whether to retry it."""
        if isinstance(error, dict) and error:
            code = str(error.get("code") or "error")
            detail = str(error.get("message") or "")[:200]
            return f"batch request error: {code}: {detail}", code not in _NOT_RETRIED_LINE_CODES
        status = response.get("status_code") if response else None
        body = response.get("body") if response else None
        detail = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            detail = str(body["error"].get("message") or "")[:200]
        # Same rule as the chat provider: rate limits and server errors are worth another try,
        # other client errors are not.
        transient = not isinstance(status, int) or status == 429 or status >= 500
        return f"batch request error: HTTP {status}: {detail}", transient

    @staticmethod
    def _batch_reason(batch: Any) -> str:
        """Why a whole batch gave no result for a request, e.g. ``batch failed: <code>: ...``."""
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        if errors:
            first = errors[0]
            detail = f"{getattr(first, 'code', None)}: {getattr(first, 'message', None) or ''}"
            return f"batch {batch.status}: {detail[:200]}"
        return f"batch {batch.status}"

    # --- small helpers ----------------------------------------------------------------------

    def _cost(self, tokens_in: int, tokens_out: int) -> float:
        return common.cost_usd(self.config, tokens_in, tokens_out, BATCH_PRICE_FACTOR)

    def _backoff(self, attempt: int, retry_after: float | None = None) -> None:
        self._sleep(common.backoff_delay(self.config, attempt, retry_after))

    def _backoff_before_retry(self, failed: list[RecordIn], outcomes: dict[str, RecordOut]) -> None:
        attempt = max(outcomes[r.id].attempts for r in failed)
        if attempt < self.config.max_attempts_per_record:  # no pointless wait after the last
            self._backoff(attempt)

    def _describe(self, exc: Exception) -> str:
        return self._redact(f"{type(exc).__name__}: {str(exc)[:200]}")

    def _redact(self, text: str) -> str:
        """Defence in depth: a proxy could echo the key into an error body."""
        key = self.config.api_key
        return text.replace(key, "[redacted]") if key else text
