"""Invoice documents in Spark: bronze fingerprints, repeats by hash, pages read in tasks."""

import hashlib
from datetime import UTC, date, datetime

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from sample.invoice_documents import InvoiceDocument, render_pdf
from transforms.documents import (
    UNREADABLE_DOCUMENT,
    quarantined_documents,
    read_document_pages,
    silver_pages,
    to_bronze_documents,
    with_first_landing,
)
from transforms.frames import local_frame

D1, D2 = date(2026, 9, 30), date(2026, 10, 1)
AT = datetime(2026, 10, 1, 2, tzinfo=UTC).replace(tzinfo=None)
PDF = render_pdf(
    InvoiceDocument(
        file_name="acme_inv-1.pdf",
        invoice_number="INV-1",
        vendor_name="Acme Office Supply",
        vendor_tax_id="US41-7730021",
        legal_entity="US01",
        invoice_date="2026-09-30",
        due_date="2026-10-30",
        currency="USD",
        net="100.00",
        tax="8.00",
        total="108.00",
        po_number="PO-1",
        lines=(("Paper", 1, "100.00", "100.00"),),
        layout="classic",
        scanned=False,
        ap_invoice_id="INV-1",
    )
)


def _landed(spark: SparkSession, *files: tuple[date, str, bytes]):
    return local_frame(
        spark,
        [(f"file:/landing/business_date={d}/{name}", content, d) for d, name, content in files],
        "path string, content binary, business_date date",
    )


def test_bronze_keeps_each_file_with_its_hash_and_pages_and_says_why_one_cannot_be_opened(spark):
    rows = {
        r["file_name"]: r
        for r in _landed(spark, (D1, "a.pdf", PDF), (D1, "b.pdf", b"not a pdf"))
        .transform(to_bronze_documents(AT))
        .collect()
    }
    assert rows["a.pdf"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert (rows["a.pdf"]["pages"], rows["a.pdf"]["size_bytes"]) == (1, len(PDF))
    assert rows["a.pdf"]["read_error"] is None and bytes(rows["a.pdf"]["content"]) == PDF
    assert rows["b.pdf"]["pages"] is None and "PDF" in rows["b.pdf"]["read_error"]
    assert rows["b.pdf"]["_row_hash"] == rows["b.pdf"]["sha256"]


def test_a_repeated_document_points_at_its_first_landing(spark):
    documents = local_frame(
        spark,
        [
            (D2, "a_resent.pdf", "h1"),
            (D1, "a.pdf", "h1"),
            (D2, "a_again.pdf", "h1"),
            (D2, "b.pdf", "h2"),
            (D2, "c.pdf", None),
        ],
        "business_date date, file_name string, sha256 string",
    )
    expected = local_frame(
        spark,
        [
            (D1, "a.pdf", "h1", None, None),
            (D2, "a_again.pdf", "h1", "a.pdf", D1),
            (D2, "a_resent.pdf", "h1", "a.pdf", D1),
            (D2, "b.pdf", "h2", None, None),
            (D2, "c.pdf", None, None, None),
        ],
        "business_date date, file_name string, sha256 string, duplicate_of_file string, "
        "duplicate_of_date date",
    )
    assert_df_equality(
        documents.transform(with_first_landing()),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_pages_are_read_in_spark_and_an_unreadable_document_is_quarantined(spark):
    bronze = _landed(spark, (D1, "a.pdf", PDF), (D1, "b.pdf", b"%PDF-1.7 cut")).transform(
        to_bronze_documents(AT)
    )
    pages = bronze.transform(read_document_pages(2)).cache()
    [page] = pages.transform(silver_pages).collect()
    assert (page["file_name"], page["page"], page["method"]) == ("a.pdf", 1, "text_layer")
    assert "Invoice No: INV-1" in page["text"] and page["ocr_confidence"] is None
    [bad] = pages.transform(quarantined_documents(AT)).collect()
    assert (bad["source"], bad["reason_code"], bad["record_key"]) == (
        "invoice_documents",
        UNREADABLE_DOCUMENT,
        "b.pdf",
    )
    assert bad["reason_detail"] and bad["_row_hash"] == hashlib.sha256(b"%PDF-1.7 cut").hexdigest()
    pages.unpersist()
