"""Sample invoice documents: what they state agrees with AP, except the seeded discrepancies.

Pure Python: the landed files are read back with the document readers (``documents/text.py``)
and the offline extractor, and compared with the AP landing files and the answer key.
"""

import csv
import hashlib
import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pdfplumber
import pytest

from documents.contract_rules import extract_contract
from documents.extract import extract_invoice
from documents.text import (
    METHOD_OCR,
    METHOD_TEXT_LAYER,
    PageText,
    read_pages,
    tesseract_available,
)
from sample import close as sample_close
from sample import contract_documents as contract_docs
from sample import invoice_documents as docs

START, END = date(2026, 9, 30), date(2026, 10, 3)  # Wed..Sat: three dates with AP, one without
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
STATED = ("invoice_number", "vendor_name", "vendor_tax_id", "invoice_date", "due_date",
          "currency", "net", "tax", "total", "po_number")  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("documents")
    sample_close.generate_close(
        path, START, END, seed=3, gl_lines_per_day=120, employees=24, expense_rows=20
    )
    return path


def _folder(root: Path, day: date) -> Path:
    return root / "landing" / docs.SOURCE / f"business_date={day.isoformat()}"


def _key(root: Path, day: date) -> dict[str, dict]:
    path = root / "answer_keys" / "close" / f"{day.isoformat()}.json"
    return json.loads(path.read_text())["invoice_documents"]


def _ap(root: Path, day: date) -> dict[str, dict]:
    path = root / "landing" / "ap_invoices" / f"business_date={day.isoformat()}" / "ap_invoices.csv"
    with path.open(newline="") as handle:
        return {r["invoice_id"]: r for r in csv.DictReader(handle)}


def _expected_open(root: Path, day: date, kind: str) -> set[tuple[str, ...]]:
    path = root / "answer_keys" / "close" / f"{day.isoformat()}.json"
    return {
        tuple(e["records"])
        for e in json.loads(path.read_text())["open"]
        if e["exception_type"] == kind
    }


def test_each_po_invoice_of_a_date_lands_its_document_one_scanned_but_one_left_out(root):
    left_out = set()
    for day in DAYS:
        key = _key(root, day)
        files = sorted(p.name for p in _folder(root, day).glob("*")) if key else []
        assert files == sorted(key), day
        if day.weekday() >= 5:
            assert not key and not _folder(root, day).exists()
            continue
        po_invoices = {i for i, row in _ap(root, day).items() if row["po_number"]}
        documented = {e["ap_invoice_id"] for e in key.values() if not e["duplicate_of"]} - {None}
        assert documented <= po_invoices, day
        left_out |= {(f"ap_invoices:{i}",) for i in po_invoices - documented}
        [scan] = [name for name, entry in key.items() if entry["scanned"]]
        path = _folder(root, day) / scan
        if path.suffix == ".pdf":  # no text layer: a reader has to OCR it
            with pdfplumber.open(path) as pdf:
                assert not (pdf.pages[0].extract_text() or "").strip()
    # One of the range's dates seeds AP_WITHOUT_DOC, and the answer key lists it.
    assert len(left_out) == 1 and left_out == _expected_open(root, END, docs.AP_WITHOUT_DOC)


def test_documents_agree_with_ap_but_for_the_seeded_discrepancies(root):
    seeded = []
    for day in DAYS:
        ap = _ap(root, day) if day.weekday() < 5 else {}
        for name, entry in _key(root, day).items():
            kind = entry["discrepancy"]
            seeded.append(kind)
            assert Decimal(entry["net"]) + Decimal(entry["tax"]) == Decimal(entry["total"])
            amounts = sum(Decimal(line[3].replace(",", "")) for line in entry["lines"])
            assert amounts == Decimal(entry["net"]), name
            if kind == docs.DOC_NOT_IN_AP:
                assert entry["ap_invoice_id"] is None
                assert entry["invoice_number"] not in ap
                continue
            if kind == docs.DUPLICATE_DOCUMENT:
                first = date.fromisoformat(entry["duplicate_of_date"])
                assert first < day and entry["duplicate_of"] in _key(root, first)
                original = _folder(root, first) / entry["duplicate_of"]
                digest = hashlib.sha256((_folder(root, day) / name).read_bytes()).hexdigest()
                assert digest == hashlib.sha256(original.read_bytes()).hexdigest()
                continue
            row = ap[entry["ap_invoice_id"]]
            assert entry["invoice_number"] == row["invoice_id"]
            assert (entry["vendor_name"], entry["currency"]) == (
                row["vendor_name"],
                row["currency"],
            )
            same_date = entry["invoice_date"] == row["invoice_date"]
            assert same_date == (kind != docs.DOC_DATE_MISMATCH), name
            assert entry["invoice_date"] <= row["invoice_date"]
            same = Decimal(entry["total"]) == Decimal(row["amount"])
            assert same == (kind != docs.DOC_AMOUNT_MISMATCH), name
    # Three dates with documents: each first kind once, and the date mismatch on two of them.
    expected = [*docs.DISCREPANCIES, docs.DOC_DATE_MISMATCH, docs.DOC_DATE_MISMATCH]
    assert sorted(k for k in seeded if k) == sorted(expected)


def test_the_offline_extractor_reads_every_stated_field_of_the_digital_documents(root):
    for day in DAYS:
        for name, entry in _key(root, day).items():
            if entry["scanned"]:
                continue
            pages = read_pages(_folder(root, day) / name)
            assert {p.method for p in pages} == {METHOD_TEXT_LAYER}
            found = extract_invoice(pages)
            for field in STATED:
                value = getattr(found, field)
                assert value is not None and str(value.value) == entry[field], (name, field)


@pytest.mark.skipif(not tesseract_available(), reason="tesseract-ocr is not installed")
def test_a_scan_is_read_by_ocr_with_its_totals(root):
    [(name, entry)] = [(n, e) for n, e in _key(root, START).items() if e["scanned"]]
    pages = read_pages(_folder(root, START) / name)
    assert [p.method for p in pages] == [METHOD_OCR] and pages[0].ocr_confidence > 0.8
    found = extract_invoice(pages)
    assert str(found.invoice_number.value) == entry["invoice_number"]
    assert str(found.total.value) == entry["total"]


def test_contracts_state_their_terms_and_the_seeded_invoices_are_due_beyond_them(root):
    """The digital contracts read by the offline contract rules say what the key says; each
    seeded AP invoice is due past its vendor's terms (the scan is read in the e2e close)."""
    path = root / "answer_keys" / "close" / f"{START.isoformat()}.json"
    contracts = json.loads(path.read_text())["contract_documents"]
    assert len(contracts) == len(contract_docs.CONTRACTED_VENDORS)
    assert sum(c["scanned"] for c in contracts.values()) == 1
    folder = root / "landing" / contract_docs.SOURCE / f"business_date={START.isoformat()}"
    for name, entry in contracts.items():
        if entry["scanned"]:
            continue
        with pdfplumber.open(folder / name) as pdf:
            pages = [PageText(1, pdf.pages[0].extract_text(), METHOD_TEXT_LAYER, None)]
        read = extract_contract(pages)
        assert read.payment_terms.value == entry["payment_terms"]
        assert read.effective_date.value.isoformat() == entry["effective_date"]
        assert read.parties[1].name == entry["vendor_name"]
    seeded = [
        records
        for day in DAYS
        for records in _expected_open(root, day, contract_docs.AP_TERMS_OUTSIDE_CONTRACT)
    ]
    assert seeded
    for ap_record, contract_record in seeded:
        invoice_id = ap_record.split(":")[1]
        row = next(r for d in DAYS[:3] for i, r in _ap(root, d).items() if i == invoice_id)
        entry = contracts[contract_record.split("|")[1]]
        terms = date.fromisoformat(row["due_date"]) - date.fromisoformat(row["invoice_date"])
        assert terms.days > entry["payment_days"]
