"""Arithmetic checks of an extracted invoice: pure functions, one result per check."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from documents.fields import InvoiceExtraction

# One cent of the invoice's currency: rounding on a printed invoice stays within it.
TOLERANCE = Decimal("0.01")

PASSED = "passed"
FAILED = "failed"
NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class CheckResult:
    """One check on one document: ``expected`` adds up the parts, ``actual`` is as printed."""

    name: str
    status: str
    expected: Decimal | None = None
    actual: Decimal | None = None
    message: str = ""


def lines_sum_to_net(
    line_amounts: Sequence[Decimal], net: Decimal | None, tolerance: Decimal = TOLERANCE
) -> CheckResult:
    """The line items' amounts add up to the net amount."""
    name = "lines_sum_to_net"
    if not line_amounts or net is None:
        return CheckResult(name, NOT_APPLICABLE, message="no line items or no net amount")
    expected = sum(line_amounts, Decimal(0))
    if abs(expected - net) <= tolerance:
        return CheckResult(name, PASSED, expected, net)
    return CheckResult(name, FAILED, expected, net, f"lines sum to {expected}, net is {net}")


def net_plus_tax_is_total(
    net: Decimal | None,
    tax: Decimal | None,
    total: Decimal | None,
    tolerance: Decimal = TOLERANCE,
) -> CheckResult:
    """Net plus tax equals the total."""
    name = "net_plus_tax_is_total"
    if net is None or tax is None or total is None:
        return CheckResult(name, NOT_APPLICABLE, message="net, tax or total missing")
    expected = net + tax
    if abs(expected - total) <= tolerance:
        return CheckResult(name, PASSED, expected, total)
    return CheckResult(name, FAILED, expected, total, f"{net} + {tax} = {expected}, total {total}")


def check_invoice(invoice: InvoiceExtraction) -> tuple[CheckResult, ...]:
    """Every arithmetic check on one extracted invoice."""

    def value(field: str) -> Decimal | None:
        extracted = getattr(invoice, field)
        return None if extracted is None else extracted.value

    amounts = [item.amount for item in invoice.line_items if item.amount is not None]
    return (
        lines_sum_to_net(amounts, value("net")),
        net_plus_tax_is_total(value("net"), value("tax"), value("total")),
    )
