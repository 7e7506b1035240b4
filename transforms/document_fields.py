"""Any document's fields in Spark: the ``extract`` task in tasks, one row per document.

The engine (``documents/engine.extract_documents``: redaction, cache, packing, provider,
fallback, provenance) runs inside ``mapInPandas``; each task holds a batch of documents and
the cache answers the caller looked up for them. The task's field spec (``documents/fields.py``:
invoices, contracts) decides the columns: one string column per header field, the fields with
their provenance and the repeated items (invoice lines, contract parties) as JSON, and, for a
spec with per-document checks (invoices: ``documents/checks.py``), their results. The gold row
shapes are ``transforms/invoice_documents.py`` and ``transforms/contract_documents.py``.
"""

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from documents.checks import check_invoice
from documents.engine import Document, document_keys, extract_documents
from documents.fields import INVOICE_SPEC, DocumentExtraction, ExtractionSpec
from documents.text import PageText
from enrichment.models import TaskSpec
from enrichment.providers import ProviderConfig
from transforms.documents import frame

KEY = ("business_date", "file_name")
# Per-document checks of a spec: the check names (columns) and the function computing them.
CHECKS_BY_SPEC = {
    INVOICE_SPEC.name: (("lines_sum_to_net", "net_plus_tax_is_total"), check_invoice),
}
KEYS_SCHEMA = "business_date date, file_name string, input_hash string"
PROVENANCE_SCHEMA = (
    "business_date date, file_name string, input_hash string, enrichment_status string, "
    "source string, model string, prompt_version string, confidence double, tokens_in int, "
    "tokens_out int, cost_usd double, attempts int, error string, latency_ms double, "
    "flags string, redactions string, extraction string, fields_json string, "
    "items_json string, check_messages string"
)
# Every field found: its value as a string and where it came from.
FIELD_STRUCT = (
    "array<struct<field:string,value:string,confidence:double,page:int,start:int,end:int,"
    "source:string>>"
)
# The provenance columns every gold document table carries, in this order.
PROVENANCE_COLUMNS = (
    "enrichment_status", "source", "model", "prompt_version", "input_hash", "confidence",
    "tokens_in", "tokens_out", "cost_usd", "attempts", "error", "latency_ms",
)  # fmt: skip


def check_names(spec: ExtractionSpec) -> tuple[str, ...]:
    """The per-document check columns of ``spec`` (none for a spec without checks)."""
    return CHECKS_BY_SPEC.get(spec.name, ((), None))[0]


def extracted_schema(spec: ExtractionSpec) -> str:
    """The DDL of ``extract_fields``' rows for ``spec``: provenance, JSON, a column per field."""
    columns = (*spec.field_names, *check_names(spec))
    return PROVENANCE_SCHEMA + "".join(f", {name} string" for name in columns)


def pages_per_document() -> Callable[[DataFrame], DataFrame]:
    """Silver pages -> one row per document: its pages as JSON (in page order) and how read."""

    def transform(pages: DataFrame) -> DataFrame:
        page = F.struct("page", "text", "method", "ocr_confidence")
        return pages.groupBy("business_date", "file_name").agg(
            F.to_json(F.array_sort(F.collect_list(page))).alias("pages_json"),
            F.count(F.lit(1)).cast("int").alias("pages"),
            F.sum((F.col("method") == "ocr").cast("int")).cast("int").alias("ocr_pages"),
            F.min("ocr_confidence").alias("min_ocr_confidence"),
        )

    return transform


def _documents(batch: pd.DataFrame) -> dict[date, list[tuple[int, Document]]]:
    """A batch's documents by business date (each date is redacted with its own names)."""
    by_day: dict[date, list[tuple[int, Document]]] = {}
    for i, (day, name, pages) in enumerate(
        zip(batch["business_date"], batch["file_name"], batch["pages_json"], strict=True)
    ):
        day = pd.Timestamp(day).date()
        read = tuple(
            PageText(p["page"], p.get("text") or "", p["method"], p.get("ocr_confidence"))
            for p in json.loads(pages)
        )
        by_day.setdefault(day, []).append((i, Document(f"{day}/{name}", read)))
    return by_day


def document_input_hashes(
    task: TaskSpec, config: ProviderConfig, names: Mapping[date, Sequence[str]]
) -> Callable[[DataFrame], DataFrame]:
    """Each document's cache key (``input_hash``), computed in tasks, for a cache lookup."""

    def keys(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows = []
            for day, documents in _documents(batch).items():
                hashes = document_keys([d for _, d in documents], task, config, names.get(day, ()))
                rows += [
                    {"business_date": day, "file_name": batch["file_name"].iloc[i], "input_hash": h}
                    for (i, _), h in zip(documents, hashes, strict=True)
                ]
            yield frame(rows, KEYS_SCHEMA)

    def transform(documents: DataFrame) -> DataFrame:
        return documents.select("business_date", "file_name", "pages_json").mapInPandas(
            keys, KEYS_SCHEMA
        )

    return transform


def _field_rows(record: DocumentExtraction, spec: ExtractionSpec) -> list[dict]:
    out = []
    for name in spec.field_names:
        value = getattr(record, name)
        if value is not None:
            out.append(
                {"field": name, "value": str(value.value)}
                | value.model_dump(include={"confidence", "page", "start", "end", "source"})
            )
    return out


def _extracted_row(day: date, name: str, outcome, spec: ExtractionSpec) -> dict:
    record = outcome.extraction
    row = {
        "business_date": day,
        "file_name": name,
        "input_hash": outcome.input_hash,
        "enrichment_status": outcome.status,
        "source": outcome.source,
        "model": outcome.model,
        "prompt_version": outcome.prompt_version,
        "confidence": outcome.confidence,
        "tokens_in": outcome.tokens_in,
        "tokens_out": outcome.tokens_out,
        "cost_usd": outcome.cost_usd,
        "attempts": outcome.attempts,
        "error": outcome.error,
        "latency_ms": outcome.latency_ms,
        "flags": json.dumps(outcome.flags),
        "redactions": json.dumps(outcome.redactions) if outcome.redactions else None,
    }
    if record is None:
        return row
    check = CHECKS_BY_SPEC.get(spec.name, ((), None))[1]
    checks = check(record) if check else ()
    # Decimals as JSON numbers (their shortest repr): from_json reads them into decimal columns.
    items = [i.model_dump() for i in getattr(record, spec.items_field)]
    fields = spec.field_names
    return row | {
        "extraction": record.model_dump_json(),
        "fields_json": json.dumps(_field_rows(record, spec)),
        "items_json": json.dumps(items, default=float),
        "check_messages": json.dumps([c.message for c in checks if c.message]),
        **{n: str(getattr(record, n).value) for n in fields if getattr(record, n) is not None},
        **{c.name: c.status for c in checks},
    }


def extract_fields(
    task: TaskSpec, config: ProviderConfig, names: Mapping[date, Sequence[str]]
) -> Callable[[DataFrame], DataFrame]:
    """The extract ``task`` over documents (``pages_json``, and ``cached``: the cache's entry
    for the document's ``input_hash`` or null), in Spark tasks; one row per document in
    ``extracted_schema(task.extraction)``."""
    spec = task.extraction
    if spec is None:
        raise ValueError(f"{task.name} is not an extract task (it declares no field spec)")
    schema = extracted_schema(spec)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            cache = {
                h: c
                for h, c in zip(batch["input_hash"], batch["cached"], strict=True)
                if isinstance(c, str)
            }
            rows = []
            for day, documents in _documents(batch).items():
                outcomes = extract_documents(
                    [d for _, d in documents],
                    task,
                    config,
                    cache=dict(cache),
                    names=names.get(day, ()),
                )
                rows += [
                    _extracted_row(day, batch["file_name"].iloc[i], outcome, spec)
                    for (i, _), outcome in zip(documents, outcomes, strict=True)
                ]
            yield frame(rows, schema)

    def transform(documents: DataFrame) -> DataFrame:
        return documents.select(
            "business_date", "file_name", "pages_json", "input_hash", "cached"
        ).mapInPandas(run, schema)

    return transform


def provenance_columns() -> list[Column | str]:
    """The provenance columns of ``extract_fields``' rows as gold carries them."""
    return [
        *PROVENANCE_COLUMNS,
        F.from_json("flags", "array<string>").alias("flags"),
        "redactions",
        "extraction",
    ]


def document_facts(documents: DataFrame) -> DataFrame:
    """A document's own facts gold keeps: hash, size, pages, OCR, where a repeat first landed."""
    return documents.select(
        *KEY,
        F.col("sha256").alias("document_sha256"),
        "size_bytes",
        "pages",
        "ocr_pages",
        "min_ocr_confidence",
        "duplicate_of_file",
        "duplicate_of_date",
    )
