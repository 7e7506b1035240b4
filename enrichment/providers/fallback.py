"""The fallback chain: a record the LLM did not answer gets the embedded offline answer, marked.

A night whose endpoint is down should leave gold as useful as the offline default, and say so.
:class:`FallbackProvider` runs the configured LLM provider first; every record it left
``failed`` (errors, a malformed answer, an open circuit breaker) is answered by the
:class:`~enrichment.providers.embedded.EmbeddedProvider`. The answer says who gave it
(``source`` = model, ``model`` = the embedded method) and ``error`` keeps why the LLM did not,
after :data:`FALLBACK_ERROR_PREFIX`. Tokens, cost and attempts stay the LLM's: they were spent.

Records ``skipped`` for the run's token budget are not answered here: the budget policy decides
what becomes of them. A fallback answer is never cached as the LLM's (``infra/enrichment_engine.py``
caches only answers of the configured model), so a later run against a healthy endpoint sends
exactly these records again.
"""

from dataclasses import replace

from enrichment.models import STATUS_FAILED, RecordIn, RecordOut, TaskSpec
from enrichment.providers.base import Provider, ProviderConfig
from enrichment.providers.embedded import EmbeddedProvider

FALLBACK_ERROR_PREFIX = "LLM unavailable, offline fallback answered: "


class FallbackProvider:
    """``primary`` first; the embedded offline model for what it left failed.

    Args:
        primary: The LLM provider (chat or batch).
        config: Its configuration; ``config.falls_back(task.name)`` turns the fallback on.
    """

    def __init__(self, primary: Provider, config: ProviderConfig) -> None:
        self.primary = primary
        self.config = config
        self.model_id = primary.model_id
        self._offline = EmbeddedProvider()

    def run(self, task: TaskSpec, records: list[RecordIn]) -> list[RecordOut]:
        """The primary's outcomes, its failures replaced by offline answers when configured."""
        outcomes = self.primary.run(task, records)
        if not self.config.falls_back(task.name):
            return outcomes
        failed = {o.id: o for o in outcomes if o.status == STATUS_FAILED}
        if not failed:
            return outcomes
        texts = {r.id: r for r in records}
        answers = {
            a.id: a for a in self._offline.run(task, [texts[rid] for rid in failed if rid in texts])
        }
        merged = []
        for out in outcomes:
            answer = answers.get(out.id)
            if out.id not in failed or answer is None or answer.status == STATUS_FAILED:
                merged.append(out)
                continue
            merged.append(
                replace(
                    answer,
                    tokens_in=out.tokens_in,
                    tokens_out=out.tokens_out,
                    cost_usd=out.cost_usd,
                    attempts=out.attempts,
                    latency_ms=out.latency_ms + answer.latency_ms,
                    flags=[*out.flags, *answer.flags],
                    error=f"{FALLBACK_ERROR_PREFIX}{out.error or 'no answer'}"[:500],
                )
            )
        return merged
