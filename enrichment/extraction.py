"""The ``extract`` task's side of the engine: pages in a record, the answer checked and located.

A document travels as ONE record whose text is its pages, each opened by a marker line
(``<<page 3>>``), so a page keeps its real number when pages are dropped to fit a request.
The model answers per document the strict schema of the spec (``documents/fields.py``):
value, confidence, page and the verbatim quote of each value. The answer is validated twice
with pydantic: its shape (closed objects, nothing missing), then each value by kind (ISO dates,
decimal amounts) in the spec's typed record. A shape or value error fails the record with
``schema-invalid answer: ...`` (retried alone, then the fallback, like any bad answer).

The engine never trusts offsets from the model: it LOCATES each quote in the page text it sent.
Found on the page the model named: the model's confidence stands. Found on another page: that
page, confidence x ``OTHER_PAGE_FACTOR``. Not found: ``start``/``end`` None, the model's page if
it exists, confidence x ``QUOTE_NOT_FOUND_FACTOR``. Spans index the text that was SENT
(redacted); ``documents/engine.py`` maps them back to the original page text.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from documents.contract_rules import MODEL_ID as CONTRACT_RULES_MODEL_ID
from documents.contract_rules import extract_contract
from documents.extract import MODEL_ID as INVOICE_RULES_MODEL_ID
from documents.extract import extract_invoice
from documents.fields import (
    CONTRACT_SPEC,
    INVOICE_SPEC,
    RECORD_MODELS,
    DocumentExtraction,
    ExtractionSpec,
    document_schema,
)
from documents.text import METHOD_PLAIN_TEXT, PageText
from enrichment.responses import requested_items
from enrichment.tokens import count_tokens

PAGE_MARKER = "<<page {n}>>"
_MARKER = re.compile(r"^<<page (\d+)>>\n", re.M)
OTHER_PAGE_FACTOR = 0.8
QUOTE_NOT_FOUND_FACTOR = 0.5
SCHEMA_INVALID = "schema-invalid answer"

# The embedded rule extractor of each spec, and the name its answers carry.
RULE_EXTRACTORS: dict[str, tuple[Callable[[Sequence[PageText]], DocumentExtraction], str]] = {
    INVOICE_SPEC.name: (extract_invoice, INVOICE_RULES_MODEL_ID),
    CONTRACT_SPEC.name: (extract_contract, CONTRACT_RULES_MODEL_ID),
}


# --- pages in a record ---------------------------------------------------------------------


def join_pages(pages: Sequence[tuple[int, str]]) -> str:
    """One record's text: each page's text after its marker line."""
    return "\n".join(PAGE_MARKER.format(n=n) + "\n" + text for n, text in pages)


def split_pages(text: str) -> list[tuple[int, str]]:
    """The ``(page number, page text)`` of a record built by :func:`join_pages`.

    Text without markers is one page, page 1 (a plain text record).
    """
    markers = list(_MARKER.finditer(text))
    if not markers:
        return [(1, text)]
    pages = []
    for i, m in enumerate(markers):
        end = markers[i + 1].start() - 1 if i + 1 < len(markers) else len(text)
        pages.append((int(m.group(1)), text[m.end() : end]))
    return pages


def fit_pages(pages: Sequence[tuple[int, str]], model: str, max_tokens: int) -> list[int]:
    """The page numbers a request of ``max_tokens`` record tokens can carry, in page order.

    Pages are taken first, last, then second, third...: an invoice's parties and number are on
    its first page and its totals on its last. A page that does not fit is left out and the next
    one tried. Empty when not even one page fits.
    """
    if not pages:
        return []
    order = [0, len(pages) - 1, *range(1, len(pages) - 1)]
    # The JSON record line costs its wrapper and escapes; counted on the real line.
    kept: list[int] = []
    for index in dict.fromkeys(order):
        trial = sorted([*kept, index])
        line = json.dumps(
            {"id": "x" * 64, "text": join_pages([pages[i] for i in trial])}, ensure_ascii=False
        )
        if count_tokens(line, model) + 1 <= max_tokens:
            kept = trial
    return [pages[i][0] for i in kept]


# --- the request ---------------------------------------------------------------------------


def result_item_schema(spec: ExtractionSpec) -> dict[str, Any]:
    """The properties of one result: the record's id and its document answer."""
    return {"id": {"type": "string"}, "fields": document_schema(spec)}


def field_descriptions(spec: ExtractionSpec) -> str:
    """The spec's fields as prompt lines."""
    header = "\n".join(f"- {f.name}: {f.description}" for f in spec.fields)
    items = ", ".join(f"{f.name} ({f.description})" for f in spec.line_item_fields)
    return f"{header}\n- {spec.items_field}: a list, one entry per item, each with {items}"


# --- the answer ----------------------------------------------------------------------------


class _Quoted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str | None
    confidence: float
    page: int | None
    quote: str | None


@lru_cache(maxsize=8)
def _answer_model(spec: ExtractionSpec) -> type[BaseModel]:
    """The pydantic model of one document's answer: the shape the strict schema asks for."""
    closed = ConfigDict(extra="forbid")
    item = create_model(
        f"{spec.name}_item",
        __config__=closed,
        confidence=(float, ...),
        page=(int | None, ...),
        quote=(str | None, ...),
        **{f.name: (str | None, ...) for f in spec.line_item_fields},
    )
    return create_model(
        f"{spec.name}_answer",
        __config__=closed,
        **{f.name: (_Quoted | None, ...) for f in spec.fields},
        **{spec.items_field: (list[item], Field(...))},  # type: ignore[valid-type]
    )


def _find(text: str, quote: str) -> tuple[int, int] | None:
    """Where ``quote`` is in ``text``: verbatim, else with any run of whitespace for a space."""
    if not quote.strip():
        return None
    at = text.find(quote)
    if at >= 0:
        return at, at + len(quote)
    words = quote.split()
    m = re.search(r"\s+".join(map(re.escape, words)), text)
    return (m.start(), m.end()) if m else None


def locate(
    quote: str | None, page: int | None, confidence: float, pages: Mapping[int, str]
) -> dict[str, Any]:
    """Page, span and confidence of a quoted value, found by the engine in the page text sent."""
    confidence = min(1.0, max(0.0, confidence))
    order = ([page] if page in pages else []) + [n for n in pages if n != page]
    for number in order:
        span = _find(pages[number], quote or "")
        if span:
            factor = 1.0 if number == page else OTHER_PAGE_FACTOR
            return {
                "page": number,
                "start": span[0],
                "end": span[1],
                "confidence": round(confidence * factor, 4),
            }
    return {
        "page": page if page in pages else None,
        "start": None,
        "end": None,
        "confidence": round(confidence * QUOTE_NOT_FOUND_FACTOR, 4),
    }


def build_record(
    spec: ExtractionSpec, answer: Mapping[str, Any], text: str, model: str, source: str
) -> DocumentExtraction:
    """The spec's typed record from one document's answer, every quote located in ``text``.

    Raises:
        ValidationError: the answer's shape or a value does not hold to the spec.
    """
    shaped = _answer_model(spec).model_validate(answer)
    pages = dict(split_pages(text))
    record: dict[str, Any] = {"model": model}
    for f in spec.fields:
        given = getattr(shaped, f.name)
        if given is None or given.value is None:
            continue
        where = locate(given.quote, given.page, given.confidence, pages)
        record[f.name] = {"value": given.value, "source": source, **where}
    items = []
    first = spec.line_item_fields[0].name
    for item in getattr(shaped, spec.items_field):
        values = {f.name: getattr(item, f.name) for f in spec.line_item_fields}
        if values[first] is None:  # an item without its main value (a description, a name)
            continue
        where = locate(item.quote, item.page, item.confidence, pages)
        items.append({**values, "source": source, **where})
    record[spec.items_field] = items
    return RECORD_MODELS[spec.name].model_validate(record)


def mean_confidence(record: DocumentExtraction, spec: ExtractionSpec) -> float | None:
    """The mean confidence of the values found (None when nothing was found)."""
    found = [getattr(record, f.name) for f in spec.fields if getattr(record, f.name) is not None]
    found += list(getattr(record, spec.items_field))
    return round(sum(v.confidence for v in found) / len(found), 4) if found else None


def parse_extractions(
    spec: ExtractionSpec, content: str, texts: Mapping[str, str], model: str
) -> tuple[dict[str, DocumentExtraction], dict[str, str]]:
    """Valid, located records by id, and a reason for every requested id without one."""
    items, problems = requested_items(content, texts)
    answers: dict[str, DocumentExtraction] = {}
    for rid, item in items.items():
        try:
            answers[rid] = build_record(spec, item.get("fields"), texts[rid], model, "llm")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            problems[rid] = f"{SCHEMA_INVALID}: {where}: {first['msg']}"[:300]
    return answers, problems


def rule_record(spec: ExtractionSpec, text: str) -> DocumentExtraction:
    """The embedded rule extractor's record for a record's text (spans in that text's pages)."""
    extractor, _ = RULE_EXTRACTORS[spec.name]
    pages = [PageText(n, page, METHOD_PLAIN_TEXT) for n, page in split_pages(text)]
    return extractor(pages)


def rule_model_id(spec: ExtractionSpec) -> str:
    """The name the rule extractor of ``spec`` gives its answers."""
    return RULE_EXTRACTORS[spec.name][1]
