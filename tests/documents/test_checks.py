from decimal import Decimal

from documents.checks import (
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    check_invoice,
    lines_sum_to_net,
    net_plus_tax_is_total,
)
from documents.extract import extract_invoice
from documents.text import METHOD_TEXT_LAYER, PageText


def test_lines_sum_to_net_within_a_cent():
    assert lines_sum_to_net([Decimal("10.00"), Decimal("20.01")], Decimal("30.00")).status == PASSED
    failed = lines_sum_to_net([Decimal("10.00"), Decimal("20.02")], Decimal("30.00"))
    assert (failed.status, failed.expected, failed.actual) == (
        FAILED,
        Decimal("30.02"),
        Decimal("30.00"),
    )
    assert lines_sum_to_net([], Decimal("30.00")).status == NOT_APPLICABLE
    assert lines_sum_to_net([Decimal("1")], None).status == NOT_APPLICABLE


def test_net_plus_tax_is_total_within_a_cent():
    assert (
        net_plus_tax_is_total(Decimal("262.90"), Decimal("16.94"), Decimal("279.84")).status
        == PASSED
    )
    assert (
        net_plus_tax_is_total(Decimal("262.90"), Decimal("16.94"), Decimal("279.85")).status
        == PASSED
    )
    assert (
        net_plus_tax_is_total(Decimal("262.90"), Decimal("16.94"), Decimal("279.86")).status
        == FAILED
    )
    assert net_plus_tax_is_total(None, Decimal("1"), Decimal("1")).status == NOT_APPLICABLE


def test_checks_of_an_extracted_invoice():
    text = "Widget 3 10,00 30,00\nSubtotal 30,00\nVAT amount 5,70\nTotal 36,70\n"
    lines, totals = check_invoice(extract_invoice([PageText(1, text, METHOD_TEXT_LAYER)]))
    assert lines.status == PASSED
    assert (totals.status, totals.expected, totals.actual) == (
        FAILED,
        Decimal("35.70"),
        Decimal("36.70"),
    )
