"""Vendor invoice documents ↔ AP subledger invoices (``document_ap``), per docs/RECONCILIATIONS.md.

A published invoice document (``gold.invoice_documents``: what the extraction read) is the
vendor's statement of an invoice; the AP subledger (``silver.ap_invoices``) is what AP entered.
Rules, in order, on the records of the window:

1. Each document is paired with the AP invoice of the same normalised invoice number whose vendor
   agrees (``invoice_number_key``, ``vendors_agree``).
2. Documents of one invoice (paired with the same AP invoice, or of the same vendor and number, or
   byte-identical) are one group: the earliest landed is the group's document of record, the
   others make it a ``DUPLICATE_DOCUMENT``.
3. A document of record paired with an AP invoice: total and invoice date agree → a match
   (``REFERENCE``); otherwise ``DOC_AMOUNT_MISMATCH`` and/or ``DOC_DATE_MISMATCH``. Not paired:
   ``DOC_NOT_IN_AP``.
4. ``AP_WITHOUT_DOC``: an AP invoice raised against a purchase order and first landed on a date on
   which documents landed, that no document pairs with.
"""

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates
from transforms.contracts import AP_INVOICES, VALID_CURRENCIES
from transforms.recon.common import (
    FIRST_SEEN_COLUMN,
    ReconResult,
    blank_to_null,
    exception_input,
    format_amount,
    identity,
    latest_rows,
    match_input,
    record_id,
    to_exception_rows,
    to_match_rows,
)
from transforms.reference_data import RECON_LOOKBACK_DAYS

RECON = "document_ap"
LOOKBACK_DAYS = RECON_LOOKBACK_DAYS
AMOUNT_TOLERANCE = Decimal("0.01")
DATE_TOLERANCE_DAYS = 0
UNKNOWN_ENTITY = "GROUP"  # a document paired with no AP invoice names no legal entity
DOCUMENTS = "invoice_documents"
# What the reconciliation reads of gold.invoice_documents (key: business_date, file_name).
DOCUMENT_SCHEMA = (
    "business_date date, file_name string, vendor_name string, invoice_number string, "
    "invoice_date date, currency string, total decimal(18,2), document_sha256 string"
)
DOCUMENT_COLUMNS = [part.split()[0] for part in DOCUMENT_SCHEMA.split(", ")]
_EARLIEST_FIRST = ("business_date", "file_name")
_NOT_READ = "(not read)"


def _col(c: Column | str) -> Column:
    return F.col(c) if isinstance(c, str) else c


def _letters_and_digits(c: Column | str) -> Column:
    return F.regexp_replace(_col(c), r"[^\p{L}\p{N}]", "")


def invoice_number_key(c: Column | str) -> Column:
    """The number upper-cased without spaces or punctuation (``# inv-0012`` → ``INV0012``)."""
    key = F.upper(_letters_and_digits(c))
    return F.when(key != "", key)


def vendor_key(c: Column | str) -> Column:
    """The name lower-cased without spaces or punctuation (``Acme, Inc.`` → ``acmeinc``)."""
    key = F.lower(_letters_and_digits(c))
    return F.when(key != "", key)


def vendors_agree(document: Column | str, ledger: Column | str) -> Column:
    """Vendor keys agree: equal, one within the other (``acme`` / ``acmeinc``), or one unread."""
    doc, ap = _col(document), _col(ledger)
    return doc.isNull() | ap.isNull() | doc.contains(ap) | ap.contains(doc)


def _documents(documents: DataFrame, fx_rates: DataFrame, days: list[date]) -> DataFrame:
    """The window's documents of each as-of date of ``days``, normalised, each total in USD at
    its landing date's rate (a lookup of the document's own date: the same on every night)."""
    rates = fx_rates.groupBy(F.col("rate_date").alias("business_date"), "currency").agg(
        F.max("rate_to_usd").alias("_rate")
    )
    rate = F.coalesce("_rate", F.when(F.col("currency") == "USD", F.lit(Decimal(1))))
    known = F.col("currency").isin(*sorted(VALID_CURRENCIES))
    return as_of_dates(
        documents.select(*DOCUMENT_COLUMNS).join(rates, ["business_date", "currency"], "left"),
        days,
        LOOKBACK_DAYS,
    ).select(
        AS_OF,
        record_id(DOCUMENTS, *_EARLIEST_FIRST).alias("d_record"),
        *_EARLIEST_FIRST,
        "vendor_name",
        "invoice_number",
        invoice_number_key("invoice_number").alias("number_key"),
        vendor_key("vendor_name").alias("d_vendor"),
        F.col("invoice_date").alias("d_invoice_date"),
        F.col("currency").alias("d_stated_currency"),
        F.when(known, F.col("currency")).alias("d_currency"),
        F.col("total").alias("d_total"),
        F.round(F.col("total") * rate, 2).alias("d_total_usd"),
        F.coalesce("document_sha256", record_id(DOCUMENTS, *_EARLIEST_FIRST)).alias("d_sha"),
    )


def _ap_invoices(invoices: DataFrame, days: list[date]) -> DataFrame:
    """The window's AP invoices of each as-of date of ``days`` (newest landing of each),
    normalised."""
    return (
        as_of_dates(invoices, days, LOOKBACK_DAYS)
        .transform(latest_rows((AS_OF, *AP_INVOICES.key)))
        .select(
            AS_OF,
            record_id(AP_INVOICES.name, *AP_INVOICES.key).alias("a_record"),
            "invoice_id",
            invoice_number_key("invoice_id").alias("number_key"),
            F.col("vendor_name").alias("a_vendor_name"),
            vendor_key("vendor_name").alias("a_vendor"),
            "legal_entity",
            F.col("invoice_date").alias("a_invoice_date"),
            F.col("amount").alias("a_amount"),
            F.col("currency").alias("a_currency"),
            F.col("amount_usd").alias("a_amount_usd"),
            F.col("fx_rate_to_usd").alias("a_rate"),
            blank_to_null("po_number").alias("po_number"),
            F.col(FIRST_SEEN_COLUMN).alias("a_first_seen"),
            F.col("business_date").alias("a_last_seen"),
        )
    )


def _grouped(documents: DataFrame, invoices: DataFrame) -> DataFrame:
    """Each document with its AP invoice (or nulls), its group and its rank in the group, per
    as-of date."""
    pairs = (
        documents.select(AS_OF, "d_record", "number_key", "d_vendor")
        .join(invoices, [AS_OF, "number_key"])
        .where(vendors_agree("d_vendor", "a_vendor"))
    )
    # The AP invoice whose vendor the document names exactly first; ties by record id.
    best = Window.partitionBy(AS_OF, "d_record").orderBy(
        (F.col("d_vendor") == F.col("a_vendor")).desc_nulls_last(), "a_record"
    )
    paired = documents.join(
        pairs.withColumn("_n", F.row_number().over(best))
        .where(F.col("_n") == 1)
        .drop("_n", "number_key", "d_vendor"),
        [AS_OF, "d_record"],
        "left",
    )
    own_group = F.coalesce(
        F.concat(F.lit("ap:"), "a_record"),
        F.concat(F.lit("number:"), F.coalesce("d_vendor", F.lit("")), F.lit("|"), "number_key"),
        F.concat(F.lit("content:"), "d_sha"),
    )
    same_bytes = Window.partitionBy(AS_OF, "d_sha").orderBy(*_EARLIEST_FIRST)
    group = Window.partitionBy(AS_OF, "_group").orderBy(*_EARLIEST_FIRST)
    return (
        paired.withColumn("_own_group", own_group)
        # A byte-identical copy joins the group of the first landing of those bytes.
        .withColumn("_group", F.first("_own_group").over(same_bytes))
        .withColumn("_rank", F.row_number().over(group))
        .withColumn(
            "_same_bytes", (F.col("_rank") > 1) & (F.col("d_sha") == F.first("d_sha").over(group))
        )
        .withColumn("_group_size", F.count(F.lit(1)).over(Window.partitionBy(AS_OF, "_group")))
    )


def _invoice_text() -> Column:
    """``Invoice INV-1 of Acme Office Supply``, from the document, else the AP invoice."""
    return F.concat(
        F.lit("Invoice "),
        F.coalesce("invoice_number", "invoice_id", F.lit(_NOT_READ)),
        F.lit(" of "),
        F.coalesce("vendor_name", "a_vendor_name", F.lit("a vendor not read")),
    )


def _duplicates(grouped: DataFrame) -> DataFrame:
    """``DUPLICATE_DOCUMENT``: one per group of two or more documents, all of them its records."""
    later = F.col("_rank") > 1
    label = F.concat(
        F.col("file_name"),
        F.lit(" ("),
        F.col("business_date").cast("string"),
        F.when(F.col("_same_bytes"), F.lit(", the same bytes as the first")).otherwise(F.lit("")),
        F.lit(")"),
    )
    first = F.struct(
        "invoice_number", "vendor_name", "invoice_id", "a_vendor_name", "legal_entity",
        "d_currency", "a_currency",
    )  # fmt: skip
    return (
        grouped.where(F.col("_group_size") > 1)
        .groupBy(AS_OF, "_group")
        .agg(
            F.collect_list("d_record").alias("records"),
            F.min("business_date").alias("first_seen_date"),
            F.coalesce(F.sum(F.when(later, F.coalesce("d_total", F.lit(0)))), F.lit(0)).alias(
                "amount"
            ),
            F.sum(F.when(later, F.col("d_total_usd"))).alias("amount_usd"),
            F.min_by(first, "_rank").alias("_first"),
            F.array_sort(F.collect_list(F.struct(*_EARLIEST_FIRST, label.alias("label")))).alias(
                "_landed"
            ),
        )
        .select("*", "_first.*")
        .select(
            AS_OF,
            *exception_input(
                "DUPLICATE_DOCUMENT",
                rule="DUPLICATE_DOCUMENT",
                legal_entity=F.coalesce("legal_entity", F.lit(UNKNOWN_ENTITY)),
                first_seen_date="first_seen_date",
                amount="amount",
                currency=F.coalesce("d_currency", "a_currency"),
                amount_usd="amount_usd",
                records="records",
                detail=F.concat(
                    _invoice_text(),
                    F.lit(" landed as "),
                    F.size("records").cast("string"),
                    F.lit(" documents: "),
                    F.array_join(F.transform("_landed", lambda x: x["label"]), ", "),
                ),
            ),
        )
    )


def _compared(documented: DataFrame) -> DataFrame:
    """Documents of record with their AP invoice: do total and invoice date agree?"""
    # The document's total where it is stated in the AP invoice's currency (or in none).
    comparable = F.coalesce(F.col("d_stated_currency") == F.col("a_currency"), F.lit(True))
    total = F.when(comparable, F.col("d_total"))
    return documented.withColumns(
        {
            "_amount_ok": F.coalesce(
                F.abs(total - F.col("a_amount")) <= F.lit(AMOUNT_TOLERANCE), F.lit(False)
            ),
            "_date_ok": F.coalesce(
                F.abs(F.datediff("d_invoice_date", "a_invoice_date")) <= DATE_TOLERANCE_DAYS,
                F.lit(False),
            ),
            # An unread total, or one in another currency, confirms nothing: counted as 0.
            "_difference": F.coalesce(total, F.lit(0)) - F.col("a_amount"),
        }
    )


def _mismatches(compared: DataFrame) -> DataFrame:
    """``DOC_AMOUNT_MISMATCH`` and ``DOC_DATE_MISMATCH`` of the documents of record."""
    # Both compare the document of record with its AP invoice, in the invoice's currency.
    common = {
        "rule": "REFERENCE",
        "first_seen_date": F.least("business_date", "a_first_seen"),
        "currency": "a_currency",
        "records": F.array("d_record", "a_record"),
    }
    prefix = [_invoice_text(), F.lit(": document "), F.col("file_name")]
    stated = F.when(F.col("d_total").isNull(), F.lit("states no total")).otherwise(
        F.concat(
            F.lit("states "),
            format_amount("d_total", F.coalesce("d_stated_currency", "a_currency")),
        )
    )
    amount = compared.where(~F.col("_amount_ok")).select(
        AS_OF,
        *exception_input(
            "DOC_AMOUNT_MISMATCH",
            **common,
            amount="_difference",
            amount_usd=F.round(F.col("_difference") * F.col("a_rate"), 2),
            detail=F.concat(
                *prefix,
                F.lit(" "),
                stated,
                F.lit(", AP invoice "),
                F.col("invoice_id"),
                F.lit(" holds "),
                format_amount("a_amount", "a_currency"),
                F.lit(" (difference "),
                F.format_number("_difference", 2),
                F.lit(")"),
            ),
        ),
    )
    dated = compared.where(~F.col("_date_ok")).select(
        AS_OF,
        *exception_input(
            "DOC_DATE_MISMATCH",
            **common,
            amount="a_amount",
            amount_usd="a_amount_usd",
            detail=F.concat(
                *prefix,
                F.lit(" is dated "),
                F.coalesce(F.col("d_invoice_date").cast("string"), F.lit(_NOT_READ)),
                F.lit(", AP invoice "),
                F.col("invoice_id"),
                F.lit(" "),
                F.col("a_invoice_date").cast("string"),
            ),
        ),
    )
    return amount.unionByName(dated)


def _not_in_ap(grouped: DataFrame) -> DataFrame:
    """``DOC_NOT_IN_AP``: documents of record paired with no AP invoice."""
    unread = F.col("number_key").isNull()
    read = F.concat(
        _invoice_text(),
        F.lit(" for "),
        F.when(F.col("d_total").isNull(), F.lit("an unread total")).otherwise(
            format_amount("d_total", "d_stated_currency")
        ),
        F.lit(" dated "),
        F.coalesce(F.col("d_invoice_date").cast("string"), F.lit(_NOT_READ)),
        F.lit(" is not in the AP subledger (no invoice of that number and vendor)"),
    )
    return grouped.where((F.col("_rank") == 1) & F.col("a_record").isNull()).select(
        AS_OF,
        *exception_input(
            "DOC_NOT_IN_AP",
            rule="UNMATCHED",
            legal_entity=F.lit(UNKNOWN_ENTITY),
            first_seen_date="business_date",
            amount=F.coalesce("d_total", F.lit(0)),
            currency="d_currency",
            amount_usd="d_total_usd",
            records=F.array("d_record"),
            detail=F.concat(
                F.lit("Document "),
                F.col("file_name"),
                F.lit(": "),
                F.when(
                    unread, F.lit("no invoice number could be read, so it matches no AP invoice")
                ).otherwise(read),
            ),
        ),
    )


def _expecting_a_document(invoices: DataFrame, documents: DataFrame) -> DataFrame:
    """AP invoices that should have a vendor document: raised against a purchase order and first
    landed on a date on which documents of the as-of date's window landed (the feed delivered
    that day)."""
    delivered = documents.select(AS_OF, F.col("business_date").alias("a_first_seen")).distinct()
    return invoices.where(F.col("po_number").isNotNull()).join(
        delivered, [AS_OF, "a_first_seen"], "left_semi"
    )


def _without_document(invoices: DataFrame, grouped: DataFrame) -> DataFrame:
    """``AP_WITHOUT_DOC``: AP invoices expected to have a document that no document pairs with."""
    paired = grouped.where(F.col("a_record").isNotNull()).select(AS_OF, "a_record").distinct()
    return (
        _expecting_a_document(invoices, grouped)
        .join(paired, [AS_OF, "a_record"], "left_anti")
        .select(
            AS_OF,
            *exception_input(
                "AP_WITHOUT_DOC",
                rule="UNMATCHED",
                first_seen_date="a_first_seen",
                amount="a_amount",
                currency="a_currency",
                amount_usd="a_amount_usd",
                records=F.array("a_record"),
                detail=F.concat(
                    F.lit("AP invoice "),
                    F.col("invoice_id"),
                    F.lit(" of "),
                    F.col("a_vendor_name"),
                    F.lit(" for "),
                    format_amount("a_amount", "a_currency"),
                    F.lit(" dated "),
                    F.col("a_invoice_date").cast("string"),
                    F.lit(" (PO "),
                    F.col("po_number"),
                    F.lit(") has no vendor document, though documents landed on "),
                    F.col("a_first_seen").cast("string"),
                ),
            ),
        )
    )


def reconcile_documents_ap(
    documents: DataFrame,
    invoices: DataFrame,
    fx_rates: DataFrame,
    as_of: date,
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """Reconcile published invoice documents with silver AP invoices as of ``as_of``.

    ``reconcile_documents_ap_dates`` for the one date ``as_of``.
    """
    return reconcile_documents_ap_dates(documents, invoices, fx_rates, [as_of], materialize)


def reconcile_documents_ap_dates(
    invoice_documents: DataFrame,
    ap_invoices: DataFrame,
    fx_rates: DataFrame,
    days: list[date],
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """Reconcile published invoice documents with silver AP invoices as of each date of ``days``.

    ``invoice_documents`` holds ``DOCUMENT_COLUMNS`` of gold.invoice_documents; ``fx_rates`` is
    silver (it prices the totals of documents paired with no AP invoice, at the document's landing
    date). Inputs are whole tables; as of ``D``, records outside ``[D - LOOKBACK_DAYS, D]`` are
    ignored. One plan for every date: the outputs' ``business_date`` is the as-of date, and the
    rows of ``D`` are exactly those of ``reconcile_documents_ap`` as of ``D``.
    """
    invoices = _ap_invoices(ap_invoices, days)
    # Every rule reads the documents' pairing and groups: computed once.
    grouped = materialize(_grouped(_documents(invoice_documents, fx_rates, days), invoices))
    compared = _compared(grouped.where((F.col("_rank") == 1) & F.col("a_record").isNotNull()))
    matches = (
        compared.where(F.col("_amount_ok") & F.col("_date_ok"))
        .select(
            AS_OF,
            *match_input(
                "REFERENCE",
                left_records=F.array("d_record"),
                right_records=F.array("a_record"),
                left_amount="d_total",
                right_amount="a_amount",
                currency="a_currency",
                amount_usd="a_amount_usd",
                matched_on=F.greatest("business_date", "a_last_seen"),
            ),
        )
        .transform(to_match_rows(RECON))
    )
    exceptions = (
        _mismatches(compared)
        .unionByName(_not_in_ap(grouped))
        .unionByName(_duplicates(grouped))
        .unionByName(_without_document(invoices, grouped))
        .transform(to_exception_rows(RECON))
    )
    return ReconResult(matches=matches, exceptions=exceptions)
