"""Invoice documents' fields in Spark: the ``extract`` task in tasks, then the gold row shape.

The engine (``documents/engine.extract_documents``: redaction, cache, packing, provider,
fallback, provenance) runs inside ``mapInPandas``; each task holds a batch of documents and
the cache answers the caller looked up for them. ``gold.invoice_documents`` has one row per
readable document: its typed fields, every field's value, confidence, page, span and source,
its line items, the arithmetic checks (``documents/checks.py``) and the run's provenance.
"""

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from documents.checks import check_invoice
from documents.engine import Document, document_keys, extract_documents
from documents.fields import INVOICE_SPEC, InvoiceExtraction
from documents.text import PageText
from enrichment.models import TaskSpec
from enrichment.providers import ProviderConfig
from transforms.documents import frame
from transforms.enrich import with_failure_kind

KEY = ("business_date", "file_name")
FIELDS = tuple(f.name for f in INVOICE_SPEC.fields)
_DATES = ("invoice_date", "due_date")
_AMOUNTS = ("net", "tax", "total")
CHECKS = ("lines_sum_to_net", "net_plus_tax_is_total")
KEYS_SCHEMA = "business_date date, file_name string, input_hash string"
EXTRACTED_SCHEMA = (
    "business_date date, file_name string, input_hash string, enrichment_status string, "
    "source string, model string, prompt_version string, confidence double, tokens_in int, "
    "tokens_out int, cost_usd double, attempts int, error string, latency_ms double, "
    "flags string, redactions string, extraction string, fields_json string, "
    "line_items_json string, check_messages string, "
    + ", ".join(f"{name} string" for name in (*FIELDS, *CHECKS))
)
FIELD_STRUCT = (
    "array<struct<field:string,value:string,confidence:double,page:int,start:int,end:int,"
    "source:string>>"
)
LINE_ITEM_STRUCT = (
    "array<struct<description:string,quantity:decimal(18,4),unit_price:decimal(18,2),"
    "amount:decimal(18,2),confidence:double,page:int,start:int,end:int,source:string>>"
)


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


def _field_rows(record: InvoiceExtraction) -> list[dict]:
    out = []
    for name in FIELDS:
        value = getattr(record, name)
        if value is not None:
            out.append(
                {"field": name, "value": str(value.value)}
                | value.model_dump(include={"confidence", "page", "start", "end", "source"})
            )
    return out


def _extracted_row(day: date, name: str, outcome) -> dict:
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
    checks = check_invoice(record)
    # Decimals as JSON numbers (their shortest repr): from_json reads them into decimal columns.
    items = [i.model_dump() for i in record.line_items]
    return row | {
        "extraction": record.model_dump_json(),
        "fields_json": json.dumps(_field_rows(record)),
        "line_items_json": json.dumps(items, default=float),
        "check_messages": json.dumps([c.message for c in checks if c.message]),
        **{n: str(getattr(record, n).value) for n in FIELDS if getattr(record, n) is not None},
        **{c.name: c.status for c in checks},
    }


def extract_invoices(
    task: TaskSpec, config: ProviderConfig, names: Mapping[date, Sequence[str]]
) -> Callable[[DataFrame], DataFrame]:
    """The extract task over documents (``pages_json``, and ``cached``: the cache's entry for
    the document's ``input_hash`` or null), in Spark tasks; one row per document."""

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
                    _extracted_row(day, batch["file_name"].iloc[i], outcome)
                    for (i, _), outcome in zip(documents, outcomes, strict=True)
                ]
            yield frame(rows, EXTRACTED_SCHEMA)

    def transform(documents: DataFrame) -> DataFrame:
        return documents.select(
            "business_date", "file_name", "pages_json", "input_hash", "cached"
        ).mapInPandas(run, EXTRACTED_SCHEMA)

    return transform


def to_gold_invoice_documents(documents: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Extracted rows -> ``gold.invoice_documents``: typed fields, provenance per field, checks,
    and the document's own facts (hash, pages, OCR, where a repeat first landed)."""

    def transform(extracted: DataFrame) -> DataFrame:
        typed = [
            F.to_date(F.col(n)).alias(n)
            if n in _DATES
            else F.col(n).cast("decimal(18,2)").alias(n)
            if n in _AMOUNTS
            else F.col(n)
            for n in FIELDS
        ]
        failed = F.array(*[F.col(c) == "failed" for c in CHECKS])
        facts = documents.select(
            *KEY,
            F.col("sha256").alias("document_sha256"),
            "size_bytes",
            "pages",
            "ocr_pages",
            "min_ocr_confidence",
            "duplicate_of_file",
            "duplicate_of_date",
        )
        return (
            extracted.select(
                *KEY,
                *typed,
                F.from_json("fields_json", FIELD_STRUCT).alias("fields"),
                F.from_json("line_items_json", LINE_ITEM_STRUCT).alias("line_items"),
                *CHECKS,
                (~F.exists(failed, lambda x: x)).alias("checks_passed"),
                F.from_json("check_messages", "array<string>").alias("check_messages"),
                "enrichment_status",
                "source",
                "model",
                "prompt_version",
                "input_hash",
                "confidence",
                "tokens_in",
                "tokens_out",
                "cost_usd",
                "attempts",
                "error",
                "latency_ms",
                F.from_json("flags", "array<string>").alias("flags"),
                "redactions",
                "extraction",
            )
            .transform(with_failure_kind)
            .join(facts, list(KEY))
        )

    return transform
