"""Vendor contracts for the sample AP vendors, and AP invoices seeded outside their terms.

On the first date of a range it writes ``landing/contract_documents/business_date=D/``: a master
services agreement with each of ``CONTRACTED_VENDORS`` (born-digital PDFs through fpdf2, one of
them rasterised like a scanned invoice, ``sample/invoice_documents.rasterise``), phrased as the
embedded contract rules read (``documents/contract_rules.py``): parties with their roles, the
effective date, the term, renewal and notice, ``net N days`` payment terms and the governing law.
The terms (``net 45``) are at least every due date the ledger gives an invoice (14-45 days) and
every ordinary payment (3-17 days), so nothing is outside them by accident.

``seed_terms_discrepancy`` then moves, on every other date, the due date of one AP invoice of a
contracted vendor 15-30 days beyond its contract's terms (``AP_TERMS_OUTSIDE_CONTRACT``). What each
contract states is returned for the answer key. Files are reproducible byte for byte.
"""

import random
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fpdf import FPDF

from sample.invoice_documents import rasterise

SOURCE = "contract_documents"
AP_TERMS_OUTSIDE_CONTRACT = "AP_TERMS_OUTSIDE_CONTRACT"
# (vendor id, as the contract names the vendor, payment days, governing law); the ledger's
# vendor names are contained in these, as ``contract_ap`` pairs them.
CONTRACTED_VENDORS = (
    ("V-1001", "Acme Office Supply Ltd.", 45, "the State of New York"),
    ("V-1002", "Globex Facilities Limited", 45, "England and Wales"),
    ("V-1003", "Initech Software Inc.", 45, "the State of Delaware"),
    ("V-1004", "Umbrella Logistics GmbH", 45, "the Federal Republic of Germany"),
)
# The one contract rasterised (it needs OCR).
SCANNED_VENDOR = "V-1004"
# Seeded on every other date of the range: a due date this many days past the terms.
DAYS_PAST_TERMS = (15, 30)
_CUSTOMER = "Corporate Services Inc."
_CREATED = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ContractDocument:
    """What one landed contract states."""

    file_name: str
    vendor_id: str
    vendor_name: str
    effective_date: str
    payment_terms: str
    payment_days: int
    governing_law: str
    scanned: bool


def _lines(doc: ContractDocument) -> list[str]:
    effective = date.fromisoformat(doc.effective_date)
    return [
        "MASTER SERVICES AGREEMENT",
        "",
        f'This Agreement is made between {_CUSTOMER} ("Customer") and',
        f'{doc.vendor_name} ("Supplier").',
        f"Effective Date: {effective.isoformat()}",
        "",
        "1. Term. This Agreement continues for an initial term of two (2) years.",
        "It renews automatically for successive one-year periods unless either party gives",
        "ninety (90) days' prior written notice of non-renewal.",
        "",
        "2. Fees and payment. Supplier invoices the Customer monthly in arrears.",
        f"Payment terms: {doc.payment_terms} from the invoice date.",
        "",
        f"3. Governing law. This Agreement is governed by the laws of {doc.governing_law}.",
        "",
        f"Signed for the Customer: {_CUSTOMER}",
        f"Signed for the Supplier: {doc.vendor_name}",
    ]


def render_contract_pdf(doc: ContractDocument) -> bytes:
    """The contract as a born-digital PDF: one line a sentence part, no wrapping (a phrase the
    rules read stays on one line)."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(_CREATED)
    pdf.set_title(f"Master services agreement: {doc.vendor_name}")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    for n, line in enumerate(_lines(doc)):
        pdf.set_font("Helvetica", "B" if n == 0 else "", 14 if n == 0 else 10)
        pdf.cell(190, 9 if n == 0 else 6, line)
        pdf.ln(9 if n == 0 else 6)
    return bytes(pdf.output())


def write_contract_documents(root: Path, day: date, seed: int) -> list[ContractDocument]:
    """Write the contracts of ``CONTRACTED_VENDORS`` landed on ``day``; what each states."""
    rng = random.Random(f"{seed}:contract_documents:{day.isoformat()}")
    folder = root / "landing" / SOURCE / f"business_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for vendor_id, name, days, law in CONTRACTED_VENDORS:
        scanned = vendor_id == SCANNED_VENDOR
        suffix = "_scan.pdf" if scanned else ".pdf"
        doc = ContractDocument(
            file_name=f"{name.split()[0].lower()}_msa{suffix}",
            vendor_id=vendor_id,
            vendor_name=name,
            effective_date=(day - timedelta(days=rng.randint(30, 400))).isoformat(),
            payment_terms=f"net {days} days",
            payment_days=days,
            governing_law=law,
            scanned=scanned,
        )
        content = render_contract_pdf(doc)
        if scanned:
            content = rasterise(content, doc.file_name, rng)
        (folder / doc.file_name).write_bytes(content)
        out.append(doc)
    return out


def seed_terms_discrepancy(
    day: date, index: int, ap_rows: list[list[str]], contracts: list[ContractDocument], seed: int
) -> str | None:
    """On every other date (``index`` even), move one AP invoice of a contracted vendor (in
    ``ap_rows``, ``sample/close.py`` column order, edited in place) due beyond its contract's
    terms; the invoice id, or None."""
    if index % 2 or not contracts:
        return None
    terms = {c.vendor_id: c.payment_days for c in contracts}
    governed = [r for r in ap_rows if r[2] in terms]
    if not governed:
        return None
    rng = random.Random(f"{seed}:contract_terms:{day.isoformat()}")
    row = rng.choice(governed)
    issued = date.fromisoformat(row[4])
    row[5] = (issued + timedelta(days=terms[row[2]] + rng.randint(*DAYS_PAST_TERMS))).isoformat()
    return row[0]


def answer_key_entry(doc: ContractDocument) -> dict:
    """What the answer key says of a contract: what it states."""
    return asdict(doc)
