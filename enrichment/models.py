"""Frozen, typed shapes of enrichment tasks and their per-record outcomes."""

from dataclasses import dataclass, field

from documents.fields import ExtractionSpec

RATIONALE_MAX_WORDS = 30

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"
STATUS_REDACTED = "redacted"
STATUSES = (STATUS_OK, STATUS_FAILED, STATUS_SKIPPED, STATUS_REDACTED)

SOURCE_CACHE = "cache"
SOURCE_LLM = "llm"
SOURCE_MODEL = "model"
SOURCE_RULE = "rule"
SOURCES = (SOURCE_CACHE, SOURCE_LLM, SOURCE_MODEL, SOURCE_RULE)


@dataclass(frozen=True)
class Label:
    """One allowed answer of a classification, described so a model or a person can apply it."""

    name: str
    description: str
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    """The closed set of labels a classification may return."""

    name: str
    labels: tuple[Label, ...]
    # A record may carry several labels (``labels``); ``label`` is then the first, the strongest.
    multi_label: bool = False

    @property
    def names(self) -> list[str]:
        """Label names, in declared order."""
        return [label.name for label in self.labels]


@dataclass(frozen=True)
class TaskSpec:
    """An enrichment task: classify into ``taxonomy`` and/or summarize within ``summary_max_words``,
    or extract the fields of ``extraction`` from a document (``enrichment/extraction.py``).

    ``prompt_version`` is part of every cache key: change the prompt, bump the version.
    """

    name: str
    prompt_version: str
    instructions: str
    taxonomy: Taxonomy | None = None
    summary_max_words: int | None = None
    # Redact personal data (enrichment/redaction.py) before the text is hashed or sent anywhere.
    redact: bool = True
    # Ask for a short rationale of the label (at most RATIONALE_MAX_WORDS words).
    rationale: bool = False
    # A document field spec (``documents/fields.py``): the task extracts its fields.
    extraction: ExtractionSpec | None = None

    @property
    def extracts(self) -> bool:
        """Whether the task extracts document fields."""
        return self.extraction is not None

    @property
    def classifies(self) -> bool:
        """Whether the task returns a label."""
        return self.taxonomy is not None

    @property
    def summarizes(self) -> bool:
        """Whether the task returns a summary."""
        return self.summary_max_words is not None


@dataclass(frozen=True)
class RecordIn:
    """One record to enrich: an id unique within the request and its (already redacted) text."""

    id: str
    text: str


@dataclass
class RecordOut:
    """What became of one record: the answer, or an explicit status and error."""

    id: str
    status: str
    source: str
    model: str
    label: str | None = None
    confidence: float | None = None
    summary: str | None = None
    labels: list[str] | None = None
    rationale: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    error: str | None = None
    latency_ms: float = 0.0
    flags: list[str] = field(default_factory=list)
    # An extract task's answer: the spec's typed record as JSON, spans in the text sent.
    extraction: str | None = None


def failed_outcomes(records: list[RecordIn], source: str, model: str) -> dict[str, RecordOut]:
    """One outcome per record, by id: ``failed`` until an answer fills it."""
    return {r.id: RecordOut(r.id, STATUS_FAILED, source, model) for r in records}
