"""Vendor invoice documents for the sample AP invoices, with seeded discrepancies (issue 14).

For a business date with AP invoices it writes ``landing/invoice_documents/business_date=D/``: the
document of each of the day's AP invoices raised against a purchase order (the invoices the
reconciliation expects a document for, docs/RECONCILIATIONS.md), one of them scanned (the page
rasterised, speckled and slightly turned, as an image-only PDF or a PNG, so it needs OCR) and the
others born digital (PDFs with a text layer, in one of two layouts); and, in turn by the date's
position in the range, two seeded discrepancies, one of each kind:

* ``DOC_AMOUNT_MISMATCH``: a digital document's total differs from the AP invoice's amount
  (net + tax still add up, so the arithmetic checks pass and only the ledger can tell);
* ``DOC_NOT_IN_AP``: an extra document whose invoice number the AP subledger does not hold;
* ``DUPLICATE_DOCUMENT``: the byte-identical copy of an earlier date's document under another
  file name (recognised by its hash);

and

* ``DOC_DATE_MISMATCH``: a digital document dated a few days before the AP invoice's date;
* ``AP_WITHOUT_DOC``: one of the day's PO invoices gets no document.

What each file states is returned for the answer key. Files are reproducible byte for byte
(fixed creation date, seeded noise), like the rest of the sample landing zone. One scan a date:
OCR costs seconds a page, a digital document a few milliseconds.
"""

import io
import random
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pypdfium2
from fpdf import FPDF
from PIL import Image, ImageDraw

SOURCE = "invoice_documents"
DOC_AMOUNT_MISMATCH = "DOC_AMOUNT_MISMATCH"
DOC_NOT_IN_AP = "DOC_NOT_IN_AP"
DUPLICATE_DOCUMENT = "DUPLICATE_DOCUMENT"
DOC_DATE_MISMATCH = "DOC_DATE_MISMATCH"
AP_WITHOUT_DOC = "AP_WITHOUT_DOC"
# The seeded discrepancies of the n-th date with documents of a range: one of each, by n % 3
# and n % 2.
DISCREPANCIES = (DOC_AMOUNT_MISMATCH, DOC_NOT_IN_AP, DUPLICATE_DOCUMENT)
SECOND_DISCREPANCIES = (DOC_DATE_MISMATCH, AP_WITHOUT_DOC)
LAYOUTS = ("classic", "modern")
TAX_RATES = {"USD": Decimal("0.08"), "GBP": Decimal("0.20"), "EUR": Decimal("0.19")}
# Rasterised at this resolution: Tesseract reads it well, the files stay small.
SCAN_DPI = 200
_VENDOR_TAX_IDS = {
    "V-1001": "US41-7730021",
    "V-1002": "GB284716593",
    "V-1003": "US94-3328107",
    "V-1004": "DE318294716",
    "V-1005": "GB601923847",
    "V-1006": "US27-5519034",
    "V-1007": "US83-0042196",
    "V-1008": "DE274019385",
}
_ENTITY_NAMES = {"US01": "Corporate Services Inc.", "GB01": "Corporate Services UK Ltd", "DE01":
                 "Corporate Services GmbH"}  # fmt: skip
_CREATED = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class InvoiceDocument:
    """What one landed invoice document states (amounts as printed, two decimals)."""

    file_name: str
    invoice_number: str
    vendor_name: str
    vendor_tax_id: str
    legal_entity: str
    invoice_date: str
    due_date: str
    currency: str
    net: str
    tax: str
    total: str
    po_number: str
    lines: tuple[tuple[str, int, str, str], ...]  # description, quantity, unit price, amount
    layout: str
    scanned: bool
    # The AP invoice it documents (None: not in AP); the seeded discrepancy it carries, if any.
    ap_invoice_id: str | None
    discrepancy: str | None = None
    duplicate_of: str | None = None
    duplicate_of_date: str | None = None


@dataclass(frozen=True)
class LandedDocuments:
    """A date's documents, and the AP invoices left without their document (``AP_WITHOUT_DOC``)."""

    documents: list[InvoiceDocument]
    without_document: list[str]


def _money(cents: int) -> str:
    return f"{Decimal(cents).scaleb(-2):,.2f}"


def _plain(cents: int) -> str:
    return f"{Decimal(cents).scaleb(-2):.2f}"


def _lines(rng: random.Random, memo: str, net: int) -> tuple[tuple[str, int, str, str], ...]:
    """One to three lines whose amounts (quantity x unit price) add up to ``net`` cents."""
    lines, left = [], net
    for extra in ("Expenses and materials", "Support hours")[: rng.randint(0, 2)]:
        quantity = rng.choice([1, 2, 3, 5])
        unit = rng.randint(1, max(1, left // (4 * quantity)))
        if quantity * unit >= left:
            break
        lines.append((extra, quantity, _money(unit), _money(quantity * unit)))
        left -= quantity * unit
    return ((memo, 1, _money(left), _money(left)), *lines)


def _document(
    rng: random.Random,
    ap_row: list[str],
    file_name: str,
    layout: str,
    scanned: bool,
    total_cents: int | None = None,
    invoice_number: str | None = None,
    invoice_date: str | None = None,
) -> InvoiceDocument:
    """The document of an AP invoice row (``sample/close.py`` column order), as it would print."""
    invoice_id, entity, vendor_id, vendor_name, ap_date, due_date, amount, currency = ap_row[:8]
    memo, po_number = ap_row[8], ap_row[9]
    total = total_cents if total_cents is not None else int(Decimal(amount) * 100)
    rate = TAX_RATES[currency]
    tax = int((Decimal(total) * rate / (1 + rate)).quantize(Decimal(1)))
    net = total - tax
    return InvoiceDocument(
        file_name=file_name,
        invoice_number=invoice_number or invoice_id,
        vendor_name=vendor_name,
        vendor_tax_id=_VENDOR_TAX_IDS[vendor_id],
        legal_entity=entity,
        invoice_date=invoice_date or ap_date,
        due_date=due_date,
        currency=currency,
        net=_plain(net),
        tax=_plain(tax),
        total=_plain(total),
        po_number=po_number,
        lines=_lines(rng, memo, net),
        layout=layout,
        scanned=scanned,
        ap_invoice_id=None if invoice_number else invoice_id,
    )


def _long_date(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day.day} {day:%B %Y}"


def _row(pdf: FPDF, cells: list[tuple[str, float, str]], height: float = 7) -> None:
    for text, width, align in cells:
        pdf.cell(width, height, text, align=align)
    pdf.ln(height)


def render_pdf(doc: InvoiceDocument) -> bytes:
    """The document as a born-digital PDF (a text layer) in its layout."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(_CREATED)
    pdf.set_title(f"Invoice {doc.invoice_number}")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    amount = _money(int(Decimal(doc.total) * 100))
    net, tax = _money(int(Decimal(doc.net) * 100)), _money(int(Decimal(doc.tax) * 100))
    rate = f"{TAX_RATES[doc.currency] * 100:.0f}%"
    pdf.set_font("Helvetica", "B", 16)
    if doc.layout == "classic":
        _row(pdf, [(doc.vendor_name, 120, "L"), ("INVOICE", 70, "R")], 10)
        pdf.set_font("Helvetica", "", 10)
        for label, value in (
            ("Vendor", doc.vendor_name),
            ("VAT ID", doc.vendor_tax_id),
            ("Invoice No", doc.invoice_number),
            ("Invoice Date", doc.invoice_date),
            ("Due Date", doc.due_date),
            ("PO Number", doc.po_number or "-"),
            ("Bill To", _ENTITY_NAMES[doc.legal_entity]),
        ):
            _row(pdf, [(f"{label}: {value}", 190, "L")])
        pdf.ln(6)
        widths = (100, 20, 35, 35)
    else:
        _row(pdf, [("Tax Invoice", 190, "L")], 10)
        pdf.set_font("Helvetica", "", 10)
        _row(pdf, [(f"Supplier: {doc.vendor_name}", 110, "L"),
                   (f"Invoice number: {doc.invoice_number}", 80, "L")])  # fmt: skip
        _row(pdf, [(f"Tax ID: {doc.vendor_tax_id}", 110, "L"),
                   (f"Date of issue: {_long_date(doc.invoice_date)}", 80, "L")])  # fmt: skip
        _row(pdf, [(f"Customer: {_ENTITY_NAMES[doc.legal_entity]}", 110, "L"),
                   (f"Payment due: {_long_date(doc.due_date)}", 80, "L")])  # fmt: skip
        if doc.po_number:
            _row(pdf, [(f"Purchase order: {doc.po_number}", 190, "L")])
        pdf.ln(6)
        widths = (95, 25, 35, 35)
    pdf.set_font("Helvetica", "B", 10)
    _row(pdf, list(zip(("Description", "Qty", "Unit Price", "Amount"), widths, "LRRR",
                       strict=True)))  # fmt: skip
    pdf.set_font("Helvetica", "", 10)
    for description, quantity, unit, line_amount in doc.lines:
        values = (description, str(quantity), unit, line_amount)
        _row(pdf, list(zip(values, widths, "LRRR", strict=True)))
    pdf.ln(4)
    if doc.layout == "classic":
        totals = (("Net amount", net), (f"VAT amount ({rate})", tax),
                  ("Total", f"{amount} {doc.currency}"))  # fmt: skip
    else:
        totals = (("Subtotal", f"{doc.currency} {net}"), (f"Sales tax ({rate})",
                  f"{doc.currency} {tax}"), ("Amount due", f"{doc.currency} {amount}"))  # fmt: skip
    for label, value in totals:
        _row(pdf, [("", 95, "L"), (f"{label}: {value}", 95, "R")])
    return bytes(pdf.output())


def _scan_image(pdf_bytes: bytes, rng: random.Random) -> Image.Image:
    """The PDF's first page as a scanner would give it: grey, speckled, turned a little."""
    document = pypdfium2.PdfDocument(pdf_bytes)
    try:
        image = document[0].render(scale=SCAN_DPI / 72).to_pil().convert("L")
    finally:
        document.close()
    draw = ImageDraw.Draw(image)
    for _ in range(1500):
        x, y = rng.randrange(image.width), rng.randrange(image.height)
        draw.point((x, y), fill=rng.randint(60, 180))
    return image.rotate(rng.uniform(-0.6, 0.6), fillcolor=255, resample=Image.BICUBIC)


def render_scan(doc: InvoiceDocument, rng: random.Random) -> bytes:
    """The document rasterised: an image-only PDF (``.pdf``) or a PNG, by its file name."""
    return rasterise(render_pdf(doc), doc.file_name, rng)


def rasterise(pdf_bytes: bytes, file_name: str, rng: random.Random) -> bytes:
    """A born-digital PDF's first page as a scan: an image-only PDF (``.pdf``) or a PNG, by
    ``file_name``; grey, speckled and turned a little, so only OCR reads it."""
    image = _scan_image(pdf_bytes, rng)
    if file_name.endswith(".png"):
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue()
    pdf = FPDF(format="A4")
    pdf.set_creation_date(_CREATED)
    pdf.add_page()
    pdf.image(image, x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def _file_name(doc_vendor: str, number: str, suffix: str) -> str:
    return f"{doc_vendor.split()[0].lower()}_{number.lower()}{suffix}"


def write_invoice_documents(
    root: Path,
    day: date,
    index: int,
    ap_rows: list[list[str]],
    seed: int,
    earlier: list[tuple[str, InvoiceDocument, bytes]],
) -> LandedDocuments:
    """Write a date's invoice documents; return what each states (for the answer key).

    ``index`` is the date's position among the range's dates with documents (it chooses the
    layouts, the scan's format and the seeded discrepancies); ``earlier`` the documents written
    for earlier dates of the range, with their date and bytes (a duplicate copies one of them).
    Dates with fewer than two PO invoices get no documents.
    """
    documented = [r for r in ap_rows if r[9]]  # raised against a purchase order
    if len(documented) < 2:
        return LandedDocuments([], [])
    rng = random.Random(f"{seed}:invoice_documents:{day.isoformat()}")
    order = rng.sample(documented, len(documented))
    kind = DISCREPANCIES[index % len(DISCREPANCIES)]
    second = SECOND_DISCREPANCIES[index % len(SECOND_DISCREPANCIES)] if len(order) > 2 else None
    folder = root / "landing" / SOURCE / f"business_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    out: list[tuple[InvoiceDocument, bytes]] = []

    scan_suffix = ".png" if index % 2 else ".pdf"
    for n, row in enumerate(order):
        if n == 2 and second == AP_WITHOUT_DOC:
            continue
        if n == 1:
            name = _file_name(row[3], row[0], f"_scan{scan_suffix}")
            scan = _document(rng, row, name, LAYOUTS[1 - index % 2], True)
            out.append((scan, render_scan(scan, rng)))
            continue
        name, layout = _file_name(row[3], row[0], ".pdf"), LAYOUTS[(index + n) % 2]
        if n == 0 and kind == DOC_AMOUNT_MISMATCH:
            # The vendor billed more than AP entered: 5-15% over.
            billed = int(Decimal(row[6]) * 100 * (1 + Decimal(rng.randint(5, 15)) / 100))
            doc = _document(rng, row, name, layout, False, total_cents=billed)
            doc = _replace(doc, discrepancy=DOC_AMOUNT_MISMATCH)
        elif n == 2 and second == DOC_DATE_MISMATCH:
            # AP entered the date it received the invoice, not the invoice's own date.
            issued = date.fromisoformat(row[4]) - timedelta(days=rng.randint(2, 6))
            doc = _document(rng, row, name, layout, False, invoice_date=issued.isoformat())
            doc = _replace(doc, discrepancy=DOC_DATE_MISMATCH)
        else:
            doc = _document(rng, row, name, layout, False)
        out.append((doc, render_pdf(doc)))

    first = order[0]
    if kind == DOC_NOT_IN_AP:
        number = f"INV-9{rng.randint(10000, 99999)}"
        stray = _document(
            rng, first, _file_name(first[3], number, ".pdf"), LAYOUTS[index % 2], False,
            invoice_number=number,
        )  # fmt: skip
        out.append((_replace(stray, discrepancy=DOC_NOT_IN_AP), render_pdf(stray)))
    elif kind == DUPLICATE_DOCUMENT:
        # The latest clean digital document of an earlier date, sent again.
        sent = [(d, doc, b) for d, doc, b in earlier if not doc.scanned and not doc.discrepancy]
        if sent:
            landed_on, original, content = sent[-1]
            copy = _replace(
                original,
                file_name=original.file_name.replace(".pdf", "_resent.pdf"),
                discrepancy=DUPLICATE_DOCUMENT,
                duplicate_of=original.file_name,
                duplicate_of_date=landed_on,
            )
            out.append((copy, content))

    for doc, content in out:
        (folder / doc.file_name).write_bytes(content)
    earlier.extend((day.isoformat(), doc, content) for doc, content in out)
    without = [order[2][0]] if second == AP_WITHOUT_DOC else []
    return LandedDocuments([doc for doc, _ in out], without)


def _replace(doc: InvoiceDocument, **changes: object) -> InvoiceDocument:
    return InvoiceDocument(**{**asdict(doc), **changes})


def answer_key_entry(doc: InvoiceDocument) -> dict:
    """What the answer key says of a document: its stated fields and what it must raise."""
    entry = asdict(doc)
    entry["lines"] = [list(line) for line in doc.lines]
    return entry
