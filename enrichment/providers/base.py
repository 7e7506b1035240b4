"""The provider interface and the picklable configuration that builds one on a Spark executor."""

from dataclasses import dataclass, field
from typing import Protocol

from enrichment.models import RecordIn, RecordOut, TaskSpec

EMBEDDED = "embedded"
# The embedded offline default's name in provenance: label similarity + extractive summary.
EXTRACTIVE_SUMMARY_ID = "extractive-summary-v1"
EMBEDDED_MODEL_ID = f"embedded/tfidf-label-similarity-v1+{EXTRACTIVE_SUMMARY_ID}"
OPENAI = "openai"
OPENAI_BATCH = "openai_batch"


class Provider(Protocol):
    """Answers a task for a batch of records; never raises for a bad record."""

    model_id: str

    def run(self, task: TaskSpec, records: list[RecordIn]) -> list[RecordOut]:
        """One ``RecordOut`` per input record, in any order."""
        ...


@dataclass(frozen=True)
class ProviderConfig:
    """Everything an executor needs to build the provider. The key is never printed."""

    kind: str = EMBEDDED
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    max_records_per_request: int = 20
    max_input_tokens_per_request: int = 6000
    max_output_tokens_per_request: int = 4000
    max_attempts_per_record: int = 3
    request_timeout_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    token_budget: int = 2_000_000
    # This worker's share of the provider's limits (None: no client-side pacing).
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    price_input_per_mtok: float = 0.15
    price_output_per_mtok: float = 0.60
    # Batch API route only (kind ``openai_batch``): how often to poll a submitted batch and how
    # long to wait for one before cancelling it. Batches are billed at half the prices above.
    batch_poll_interval_s: float = 30.0
    batch_max_wait_s: float = 24 * 3600.0
    # Circuit breaker (enrichment/breaker.py): consecutive failed requests that stop all sending
    # for the rest of the run (0: never); a 401/403 stops it at once. ``breaker_scope`` (the run)
    # shares breakers between the partitions a Python worker runs; None gives each provider its
    # own. ``circuit_open`` is set when an earlier call of the run already found the endpoint
    # broken for the task: nothing is sent, every record fails with it as the error.
    breaker_failures: int = 5
    breaker_scope: str | None = None
    circuit_open: str | None = None
    # Tasks whose failed LLM answers are NOT replaced by the embedded offline answer.
    fallback_off: tuple[str, ...] = ()
    # Where the chat route writes each request's successful answers as they arrive, and the run
    # that names its files (enrichment/journal.py); None: no journal.
    journal_dir: str | None = None
    journal_run: str | None = None

    @property
    def model_id(self) -> str:
        """The model name recorded in provenance and cache keys."""
        return EMBEDDED_MODEL_ID if self.kind == EMBEDDED else self.model

    def falls_back(self, task_name: str) -> bool:
        """Whether a record the LLM did not answer for ``task_name`` gets the offline answer."""
        if self.kind == EMBEDDED:
            return False  # the offline model is the answer; there is nothing to fall back to
        return task_name not in self.fallback_off and "all" not in self.fallback_off
