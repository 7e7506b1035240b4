"""The declared invoice field schema, its typed extraction record and a strict JSON schema.

``INVOICE_SPEC`` is shaped like an enrichment ``TaskSpec`` so it can become the ``extract`` task
(an LLM filling the same fields); today only the embedded rules fill it (``documents/extract.py``).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

KIND_STRING = "string"
KIND_DATE = "date"
KIND_AMOUNT = "amount"
KIND_CURRENCY = "currency"
KIND_QUANTITY = "quantity"

# The enrichment engine's provenance values (enrichment.models SOURCE_*) that apply to documents.
Source = Literal["rule", "llm", "cache"]


@dataclass(frozen=True)
class FieldSpec:
    """One field to extract: its name, value kind and what it means (for rules, prompts, people)."""

    name: str
    kind: str
    description: str


@dataclass(frozen=True)
class ExtractionSpec:
    """A document extraction task: header fields, line-item fields, and a versioned contract."""

    name: str
    prompt_version: str
    instructions: str
    fields: tuple[FieldSpec, ...]
    line_item_fields: tuple[FieldSpec, ...]

    @property
    def field_names(self) -> list[str]:
        """Header field names, in declared order."""
        return [spec.name for spec in self.fields]


INVOICE_SPEC = ExtractionSpec(
    name="extract_invoice",
    prompt_version="invoice-v1",
    instructions=(
        "Extract the invoice's fields from its page text. Copy values as printed; use null for a "
        "field the document does not state. Never compute or guess a value."
    ),
    fields=(
        FieldSpec("vendor_name", KIND_STRING, "the issuer (seller) of the invoice"),
        FieldSpec("vendor_tax_id", KIND_STRING, "the issuer's VAT / tax registration number"),
        FieldSpec("invoice_number", KIND_STRING, "the invoice's number as printed"),
        FieldSpec("invoice_date", KIND_DATE, "the date the invoice was issued, ISO 8601"),
        FieldSpec("due_date", KIND_DATE, "the date payment is due, ISO 8601"),
        FieldSpec("currency", KIND_CURRENCY, "ISO 4217 code of the amounts"),
        FieldSpec("net", KIND_AMOUNT, "amount before tax (subtotal, untaxed)"),
        FieldSpec("tax", KIND_AMOUNT, "tax amount (VAT, GST, sales tax)"),
        FieldSpec("total", KIND_AMOUNT, "amount payable including tax"),
        FieldSpec("po_number", KIND_STRING, "the buyer's purchase order number"),
    ),
    line_item_fields=(
        FieldSpec("description", KIND_STRING, "what was sold"),
        FieldSpec("quantity", KIND_QUANTITY, "how many units"),
        FieldSpec("unit_price", KIND_AMOUNT, "price of one unit"),
        FieldSpec("amount", KIND_AMOUNT, "the line's amount"),
    ),
)

T = TypeVar("T")


class Provenance(BaseModel):
    """Where a value was found: page, character span in that page's text, how, how sure."""

    model_config = ConfigDict(frozen=True)

    confidence: float = Field(ge=0, le=1)
    page: int = Field(ge=1)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    source: Source


class Extracted(Provenance, Generic[T]):
    """One extracted value with its provenance."""

    value: T


class LineItem(Provenance):
    """One invoice line; its span covers the line as printed."""

    description: str
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    amount: Decimal | None = None


class InvoiceExtraction(BaseModel):
    """The fields found in one invoice; None where nothing was found. ``model`` names the method."""

    model_config = ConfigDict(frozen=True)

    model: str
    vendor_name: Extracted[str] | None = None
    vendor_tax_id: Extracted[str] | None = None
    invoice_number: Extracted[str] | None = None
    invoice_date: Extracted[dt.date] | None = None
    due_date: Extracted[dt.date] | None = None
    currency: Extracted[str] | None = None
    net: Extracted[Decimal] | None = None
    tax: Extracted[Decimal] | None = None
    total: Extracted[Decimal] | None = None
    po_number: Extracted[str] | None = None
    line_items: tuple[LineItem, ...] = ()


# Value hints per kind. Amounts travel as decimal strings: no float rounding on the way.
_VALUE_HINTS = {
    KIND_STRING: "",
    KIND_DATE: " (YYYY-MM-DD)",
    KIND_CURRENCY: " (ISO 4217 code, e.g. EUR)",
    KIND_AMOUNT: " (decimal string, '.' separator, e.g. 1234.50)",
    KIND_QUANTITY: " (decimal string, '.' separator)",
}


def _value_schema(spec: FieldSpec) -> dict[str, Any]:
    return {"type": ["string", "null"], "description": spec.description + _VALUE_HINTS[spec.kind]}


def _strict_object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    return _strict_object(
        {
            "value": _value_schema(spec),
            "page": {"type": ["integer", "null"], "description": "1-based page of the value"},
            "quote": {"type": ["string", "null"], "description": "the value exactly as printed"},
        }
    )


def llm_json_schema(spec: ExtractionSpec = INVOICE_SPEC) -> dict[str, Any]:
    """A strict JSON schema (OpenAI structured outputs) of the answer an LLM must give.

    Every object forbids additional properties and requires all its properties; an absent value is
    ``null``. The LLM returns value, page and the verbatim quote; the span is found by locating the
    quote in that page's text, so the model never invents offsets.
    """
    line_item = _strict_object(
        {f.name: _value_schema(f) for f in spec.line_item_fields}
        | {
            "page": {"type": ["integer", "null"]},
            "quote": {"type": ["string", "null"], "description": "the line as printed"},
        }
    )
    properties = {f.name: _field_schema(f) for f in spec.fields}
    properties["line_items"] = {"type": "array", "items": line_item}
    return {"name": spec.name, "strict": True, "schema": _strict_object(properties)}
