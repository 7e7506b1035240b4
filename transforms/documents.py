"""Documents in Spark (invoices, contracts): landed files to bronze, pages, repeats.

The reading itself (pdfplumber, Tesseract) is ``documents/text.py``; here it runs inside Spark
tasks (``mapInPandas``), one document at a time per task, spread over the cluster's cores.
"""

import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from documents.text import OcrUnavailableError, page_count, read_document
from transforms.ingest import INGESTED_AT_COLUMN, ROW_HASH_COLUMN, SOURCE_FILE_COLUMN

SOURCE = "invoice_documents"
UNREADABLE_DOCUMENT = "UNREADABLE_DOCUMENT"
# One row per landed file; the bytes are kept, so silver reads bronze, not the landing zone.
BRONZE_SCHEMA = (
    "file_name string, sha256 string, size_bytes long, pages int, read_error string, "
    f"content binary, {SOURCE_FILE_COLUMN} string, business_date date"
)
# One row per page of a document (or one row with ``read_error`` for a document not read).
PAGES_SCHEMA = (
    "business_date date, document_sha256 string, file_name string, page int, text string, "
    f"method string, ocr_confidence double, read_error string, {SOURCE_FILE_COLUMN} string"
)
PAGE_COLUMNS = [c.split(" ")[0] for c in PAGES_SCHEMA.split(", ") if c != "read_error string"]


def frame(rows: list[dict], schema: str) -> pd.DataFrame:
    """Rows as a pandas frame Arrow converts to ``schema``: nullable ints, None (not NaN) for
    missing text, whatever the batch held."""
    columns = {}
    for column in schema.split(", "):
        name, kind = column.split(" ", 1)
        values = [r.get(name) for r in rows]
        dtype = {"int": "Int32", "long": "Int64", "double": "float64"}.get(kind, "object")
        columns[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(columns)


def _fingerprints(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        rows = []
        for path, content, day in zip(
            batch["path"], batch["content"], batch["business_date"], strict=True
        ):
            name = path.rsplit("/", 1)[-1]
            pages, error = None, None
            try:
                pages = page_count(bytes(content), name)
            except Exception as exc:  # a bad file is a row with its reason, not a failed run
                error = f"{type(exc).__name__}: {exc}"[:500]
            rows.append(
                {
                    "file_name": name,
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "size_bytes": len(content),
                    "pages": pages,
                    "read_error": error,
                    "content": bytes(content),
                    SOURCE_FILE_COLUMN: path,
                    "business_date": day,
                }
            )
        yield frame(rows, BRONZE_SCHEMA)


def to_bronze_documents(ingested_at: datetime) -> Callable[[DataFrame], DataFrame]:
    """Landed files (Spark's ``binaryFile`` rows plus ``business_date``) as bronze rows.

    Each file's SHA-256, size and page count; a file that cannot be opened keeps its bytes and
    says why in ``read_error`` (silver quarantines it).
    """

    def transform(files: DataFrame) -> DataFrame:
        landed = files.select("path", "content", "business_date")
        return (
            landed.mapInPandas(_fingerprints, BRONZE_SCHEMA)
            .withColumn(INGESTED_AT_COLUMN, F.lit(ingested_at).cast("timestamp"))
            .withColumn(ROW_HASH_COLUMN, F.col("sha256"))
        )

    return transform


def with_first_landing() -> Callable[[DataFrame], DataFrame]:
    """Add ``duplicate_of_file`` and ``duplicate_of_date``: where a repeated document first landed.

    Rows are bronze documents over a window of dates (every date up to the latest one needed);
    the first landing of a content hash (earliest date, then file name) is the original, and its
    columns are null.
    """

    def transform(documents: DataFrame) -> DataFrame:
        first = Window.partitionBy("sha256").orderBy("business_date", "file_name")
        return documents.withColumn(
            "duplicate_of_file",
            F.when(F.row_number().over(first) > 1, F.first("file_name").over(first)),
        ).withColumn(
            "duplicate_of_date",
            F.when(F.col("duplicate_of_file").isNotNull(), F.first("business_date").over(first)),
        )

    return transform


def _pages(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        rows = []
        for doc in batch.to_dict("records"):
            base = {
                "business_date": doc["business_date"],
                "document_sha256": doc["sha256"],
                "file_name": doc["file_name"],
                SOURCE_FILE_COLUMN: doc[SOURCE_FILE_COLUMN],
            }
            try:
                pages = read_document(bytes(doc["content"]), doc["file_name"])
            except OcrUnavailableError:
                raise  # the machine lacks Tesseract: no document's fault, so the step fails
            except Exception as exc:
                rows.append({**base, "read_error": f"{type(exc).__name__}: {exc}"[:500]})
                continue
            if not pages:
                rows.append({**base, "read_error": "no pages"})
            rows += [
                {
                    **base,
                    "page": p.page,
                    "text": p.text,
                    "method": p.method,
                    "ocr_confidence": p.ocr_confidence,
                }
                for p in pages
            ]
        yield frame(rows, PAGES_SCHEMA)


def read_document_pages(tasks: int) -> Callable[[DataFrame], DataFrame]:
    """Each bronze document's pages (text, ``text_layer``/``ocr``, OCR confidence), in Spark.

    The documents are spread over ``tasks`` Spark tasks by hash first: a day's few files land in
    one input partition, and OCR (seconds a page) would otherwise run on one core.
    """

    def transform(documents: DataFrame) -> DataFrame:
        return (
            documents.select("business_date", "sha256", "file_name", "content", SOURCE_FILE_COLUMN)
            .repartition(max(1, tasks), "sha256")
            .mapInPandas(_pages, PAGES_SCHEMA)
        )

    return transform


def silver_pages(pages: DataFrame) -> DataFrame:
    """The pages read (rows without ``read_error``), for a feed's silver pages table."""
    return pages.where(F.col("read_error").isNull()).select(*PAGE_COLUMNS)


def quarantined_documents(
    ingested_at: datetime, source: str = SOURCE
) -> Callable[[DataFrame], DataFrame]:
    """Documents of ``source`` that could not be read, as ``silver.quarantine`` rows."""

    def transform(pages: DataFrame) -> DataFrame:
        raw = F.to_json(F.struct("file_name", F.col("document_sha256").alias("sha256")))
        return pages.where(F.col("read_error").isNotNull()).select(
            F.lit(source).alias("source"),
            "business_date",
            F.lit(UNREADABLE_DOCUMENT).alias("reason_code"),
            F.col("read_error").alias("reason_detail"),
            F.col("file_name").alias("record_key"),
            raw.alias("raw_record"),
            SOURCE_FILE_COLUMN,
            F.col("document_sha256").alias(ROW_HASH_COLUMN),
            F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT_COLUMN),
        )

    return transform
