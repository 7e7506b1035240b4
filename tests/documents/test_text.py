import hashlib

import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFont

from documents.text import (
    INSTALL_HINT,
    METHOD_OCR,
    METHOD_PLAIN_TEXT,
    OcrUnavailableError,
    fingerprint,
    ocr_image,
    read_pages,
    tesseract_available,
)

needs_tesseract = pytest.mark.skipif(
    not tesseract_available(), reason=f"tesseract not found: {INSTALL_HINT}"
)


def scan(text: str) -> Image.Image:
    image = Image.new("RGB", (1400, 220), "white")
    ImageDraw.Draw(image).text((40, 70), text, fill="black", font=ImageFont.load_default(56))
    return image


def test_plain_text_is_one_page_with_a_fingerprint(tmp_path):
    path = tmp_path / "invoice.txt"
    path.write_text("Invoice No: 42\nTotal 1,00 EUR\n", encoding="utf-8")
    (page,) = read_pages(path)
    assert (page.page, page.method, page.ocr_confidence) == (1, METHOD_PLAIN_TEXT, None)
    assert page.text.startswith("Invoice No: 42")
    print_ = fingerprint(path)
    assert print_.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (print_.pages, print_.file_name, print_.size_bytes) == (1, "invoice.txt", 30)


def test_unsupported_documents_are_refused(tmp_path):
    path = tmp_path / "invoice.docx"
    path.write_bytes(b"PK")
    with pytest.raises(ValueError, match="unsupported document type"):
        read_pages(path)


def test_ocr_without_tesseract_says_how_to_install(monkeypatch):
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(OcrUnavailableError, match="apt-get install tesseract-ocr"):
        ocr_image(scan("Invoice"))


@needs_tesseract
def test_a_scan_is_read_by_ocr_with_a_confidence(tmp_path):
    path = tmp_path / "scan.png"
    scan("Invoice Number 4711").save(path)
    (page,) = read_pages(path)
    assert page.method == METHOD_OCR
    assert "4711" in page.text
    assert 0.5 < page.ocr_confidence <= 1


@needs_tesseract
def test_a_pdf_page_without_text_layer_falls_back_to_ocr(tmp_path):
    path = tmp_path / "scanned.pdf"
    scan("Total 35.70 EUR").save(path)  # an image-only PDF, as a scanner writes
    (page,) = read_pages(path)
    assert page.method == METHOD_OCR and page.ocr_confidence is not None
    assert "35.70" in page.text
    assert fingerprint(path).pages == 1
