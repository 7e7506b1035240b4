"""Documents through the enrichment engine: the ``extract`` task, Spark-free.

:func:`extract_documents` takes documents (their pages, ``documents/text.py``) and an extract
task (``enrichment/prompts.py``) and returns one :class:`DocumentOutcome` per document, with the
provenance every enriched row carries (status, source, model, prompt version, input hash,
tokens, cost, attempts, error, latency) and the spec's typed record, whose spans index the
ORIGINAL page text. What happens to a document:

1. **Redaction.** Its pages, joined into one record (``enrichment/extraction.join_pages``), go
   through ``enrichment/redaction.Redactor`` with roster ``names`` and :data:`DOCUMENT_REDACTION`
   (e-mails, IBANs, national ids, card and bank account numbers, phones), before anything is
   hashed or sent. The salary rule is left out: it reads "Amount paid: 1,234.00" as pay, and
   amounts are what an invoice is read for.
2. **Fitting the request.** With an LLM, a document whose record is over
   ``max_input_tokens_per_request`` keeps the pages that fit (first, last, then second, third...,
   ``fit_pages``), and says which in ``flags`` (``pages_sent:1,2,9/9``). A document of which not
   one page fits is not sent: the offline rules answer it over all its pages when the
   task falls back (``error`` says why), else it is ``skipped``.
3. **Cache.** The key is the engine's (``enrichment/cache.input_hash``: task, prompt version,
   model, field spec, text sent). A key in ``cache`` is answered from it: ``source = cache``
   for the document and every field, no tokens, no request. Only LLM answers of the configured
   model are stored (as ``infra/enrichment_engine.remember_answers`` does): a rule answer, or a
   fallback, is asked again next time.
4. **The provider.** The rest go to ``build_provider(config, fallback=True)`` in one call, so
   the engine packs several documents per request within the budget (and at most
   ``max_output_tokens_per_request // OUTPUT_TOKENS_PER_DOCUMENT`` of them: answers are
   long), applies the limiter, the breaker, retries and the run's token budget, and the
   rules answer what the LLM left failed
   (``source = rule``, ``error`` starting ``LLM unavailable, offline fallback answered:``).
   A document whose text looks like it addresses the model (``enrichment/injection.py``) is
   sent in a request of its own and flagged ``injection_suspected``.
5. **Spans.** Quotes were located in the text sent (redacted); each span is mapped back to the
   original page through the text the redaction left unchanged. A span that covers a
   placeholder cannot be mapped: it becomes None.

Offline (``config.kind == embedded``) nothing leaves the machine: the rules answer every
document over all its pages (``source = rule``, ``model = embedded/invoice-rules-v1``).
"""

import difflib
import json
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from documents.fields import RECORD_MODELS, DocumentExtraction
from documents.text import PageText
from enrichment.cache import cache_params, input_hash
from enrichment.extraction import (
    fit_pages,
    join_pages,
    mean_confidence,
    rule_model_id,
    rule_record,
    split_pages,
)
from enrichment.injection import injection_signals
from enrichment.models import (
    SOURCE_CACHE,
    SOURCE_LLM,
    SOURCE_RULE,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    RecordIn,
    RecordOut,
    TaskSpec,
)
from enrichment.providers import Provider, ProviderConfig, build_provider
from enrichment.providers.base import EMBEDDED
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from enrichment.redaction import Redactor

# Output tokens to plan per document in a packed request: one invoice's answer (values, quotes,
# line items) measured 515 on average and up to ~1,000 with many lines against the fake server
# (make bench-docs). Packing counts input tokens; this keeps the answers of a pack within
# max_output_tokens_per_request, so a full pack is not cut (finish_reason=length) and re-sent.
OUTPUT_TOKENS_PER_DOCUMENT = 800
DOCUMENT_REDACTION = ("EMAIL", "IBAN", "NATIONAL_ID", "CARD", "BANK_ACCOUNT", "PHONE")
INJECTION_FLAG = "injection_suspected"
TOO_LARGE = "document over the request budget"


@dataclass(frozen=True)
class Document:
    """One document to extract: an id of the caller's (its fingerprint, a file name) and pages."""

    id: str
    pages: tuple[PageText, ...]


@dataclass
class DocumentOutcome:
    """What became of one document: its record, or an explicit status and error."""

    document_id: str
    status: str
    source: str
    model: str
    prompt_version: str
    input_hash: str
    extraction: DocumentExtraction | None = None
    confidence: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    error: str | None = None
    latency_ms: float = 0.0
    flags: list[str] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)


@dataclass
class _Prepared:
    document: Document
    redacted: dict[int, str]  # page number -> page text as sent
    text: str  # the record's text (pages sent, with markers)
    key: str
    flags: list[str]
    redactions: dict[str, int]
    refused: str | None = None


def _prepare(
    document: Document, task: TaskSpec, config: ProviderConfig, params: str, redactor: Redactor
) -> _Prepared:
    pages = [(p.page, p.text) for p in document.pages]
    whole = join_pages(pages)
    redaction = redactor.redact(whole) if task.redact else None
    redacted = split_pages(redaction.text) if redaction else pages
    counts = redaction.counts if redaction else {}
    flags: list[str] = []
    refused = None
    if config.kind != EMBEDDED and redacted:
        kept = fit_pages(redacted, config.model_id, config.max_input_tokens_per_request)
        if not kept:
            refused = (
                f"{TOO_LARGE}: not one page alone fits "
                f"max_input_tokens_per_request={config.max_input_tokens_per_request}"
            )
        elif len(kept) < len(redacted):
            flags.append(f"pages_sent:{','.join(map(str, kept))}/{len(redacted)}")
        redacted = [(n, t) for n, t in redacted if n in kept] if kept else redacted
    text = join_pages(redacted)
    if injection_signals(text):
        flags.append(INJECTION_FLAG)
    return _Prepared(
        document, dict(redacted), text, input_hash(params, text), flags, counts, refused
    )


def _to_original(sent: str, original: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of ``sent[start:end]`` in ``original``, when redaction left that text as it was."""
    if sent == original:
        return start, end
    matcher = difflib.SequenceMatcher(None, sent, original, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        if a <= start and end <= a + size:
            return b + start - a, b + end - a
    return None


def _remap(
    record: DocumentExtraction, task: TaskSpec, prepared: _Prepared, source: str
) -> DocumentExtraction:
    """``record`` with spans in the original pages and ``source`` on every value."""
    spec = task.extraction
    assert spec is not None
    originals = {p.page: p.text for p in prepared.document.pages}
    # A refused document was answered by the rules over its original pages: nothing to map.
    sent_pages = originals if prepared.refused else prepared.redacted

    def moved(value: Any) -> Any:
        update: dict[str, Any] = {"source": source}
        if value.start is not None and value.page in originals:
            sent = sent_pages.get(value.page, originals[value.page])
            span = _to_original(sent, originals[value.page], value.start, value.end)
            update |= {"start": span[0], "end": span[1]} if span else {"start": None, "end": None}
        return value.model_copy(update=update)

    changes: dict[str, Any] = {
        f.name: moved(getattr(record, f.name))
        for f in spec.fields
        if getattr(record, f.name) is not None
    }
    changes[spec.items_field] = tuple(moved(item) for item in getattr(record, spec.items_field))
    return record.model_copy(update=changes)


def _outcome(out: RecordOut, task: TaskSpec, prepared: _Prepared) -> DocumentOutcome:
    spec = task.extraction
    assert spec is not None
    record = None
    if out.extraction is not None:
        parsed = RECORD_MODELS[spec.name].model_validate_json(out.extraction)
        record = _remap(parsed, task, prepared, out.source)
    return DocumentOutcome(
        document_id=prepared.document.id,
        status=out.status,
        source=out.source,
        model=out.model,
        prompt_version=task.prompt_version,
        input_hash=prepared.key,
        extraction=record,
        confidence=out.confidence,
        tokens_in=out.tokens_in,
        tokens_out=out.tokens_out,
        cost_usd=out.cost_usd,
        attempts=out.attempts,
        error=out.error,
        latency_ms=out.latency_ms,
        flags=[*prepared.flags, *out.flags],
        redactions=dict(prepared.redactions),
    )


def _refused(prepared: _Prepared, task: TaskSpec, config: ProviderConfig) -> RecordOut:
    """A document too large to send: the rules answer it (over all pages) when it falls back."""
    spec = task.extraction
    assert spec is not None and prepared.refused is not None
    if not config.falls_back(task.name):
        return RecordOut(
            prepared.key, STATUS_SKIPPED, SOURCE_LLM, config.model_id, error=prepared.refused
        )
    started = time.perf_counter()
    # Nothing leaves the machine: the rules read the original pages, all of them.
    record = rule_record(spec, join_pages([(p.page, p.text) for p in prepared.document.pages]))
    return RecordOut(
        prepared.key,
        STATUS_OK,
        SOURCE_RULE,
        rule_model_id(spec),
        confidence=mean_confidence(record, spec),
        attempts=0,
        error=f"{FALLBACK_ERROR_PREFIX}{prepared.refused}",
        latency_ms=(time.perf_counter() - started) * 1000,
        extraction=record.model_dump_json(),
    )


def _cached(entry: str, prepared: _Prepared) -> RecordOut:
    """A cached answer as this run sees it: ``source = cache``, nothing spent now."""
    stored = json.loads(entry)
    return RecordOut(
        prepared.key,
        STATUS_OK,
        SOURCE_CACHE,
        stored["model"],
        confidence=stored["confidence"],
        extraction=stored["extraction"],
    )


def extract_documents(
    documents: Sequence[Document],
    task: TaskSpec,
    config: ProviderConfig,
    *,
    cache: MutableMapping[str, str] | None = None,
    names: Sequence[str] = (),
    provider: Provider | None = None,
) -> list[DocumentOutcome]:
    """Run the extract ``task`` over ``documents``: one outcome per document, in their order.

    Args:
        documents: The documents, with their pages as read (``documents/text.read_pages``).
        task: An extract task (``task.extraction`` set).
        config: The provider configuration (``EnrichmentResource.provider_config()``).
        cache: Answers by input hash (JSON); read first, and given this run's LLM answers.
        names: Roster names to redact before anything leaves the machine.
        provider: The provider to use (default: ``build_provider(config, fallback=True)``).
    """
    if task.extraction is None:
        raise ValueError(f"{task.name} is not an extract task")
    params = cache_params(task, config)
    per_request = max(1, config.max_output_tokens_per_request // OUTPUT_TOKENS_PER_DOCUMENT)
    if config.max_records_per_request > per_request:
        config = replace(config, max_records_per_request=per_request)
    redactor = Redactor(names, kinds=DOCUMENT_REDACTION)
    prepared = [_prepare(d, task, config, params, redactor) for d in documents]
    by_key: dict[str, _Prepared] = {}
    for p in prepared:
        by_key.setdefault(p.key, p)  # the same text is sent once
    outcomes: dict[str, RecordOut] = {}
    packed: list[RecordIn] = []
    alone: list[RecordIn] = []
    for key, p in by_key.items():
        if cache is not None and key in cache:
            outcomes[key] = _cached(cache[key], p)
        elif p.refused is not None:
            outcomes[key] = _refused(p, task, config)
        elif not p.text.strip() or not any(t.strip() for t in p.redacted.values()):
            model = rule_model_id(task.extraction)
            outcomes[key] = RecordOut(
                key, STATUS_SKIPPED, SOURCE_RULE, model, error="no text on any page"
            )
        else:
            (alone if INJECTION_FLAG in p.flags else packed).append(RecordIn(key, p.text))
    if packed or alone:
        provider = provider or build_provider(config, fallback=True)
        answered = provider.run(task, packed) if packed else []
        # Text that addresses the model travels alone: it cannot reach another document.
        for record in alone:
            answered += provider.run(task, [record])
        for out in answered:
            outcomes[out.id] = out
            if (
                cache is not None
                and out.status == STATUS_OK
                and out.source == SOURCE_LLM
                and out.model == config.model_id
                and out.extraction is not None
            ):
                cache[out.id] = json.dumps(
                    {"model": out.model, "confidence": out.confidence, "extraction": out.extraction}
                )
    results = []
    for p in prepared:
        out = outcomes.get(p.key) or RecordOut(
            p.key, STATUS_FAILED, SOURCE_LLM, config.model_id, error="no outcome"
        )
        results.append(_outcome(out, task, p))
    return results


def document_keys(
    documents: Sequence[Document], task: TaskSpec, config: ProviderConfig, names: Sequence[str] = ()
) -> list[str]:
    """Each document's cache key (input hash), as :func:`extract_documents` computes it.

    A caller whose cache is a table looks these keys up first and passes only the hits in
    ``cache``, instead of loading every cached answer.
    """
    if task.extraction is None:
        raise ValueError(f"{task.name} is not an extract task")
    params = cache_params(task, config)
    redactor = Redactor(names, kinds=DOCUMENT_REDACTION)
    return [_prepare(d, task, config, params, redactor).key for d in documents]
