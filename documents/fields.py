"""The declared document field schemas, their typed extraction records and strict JSON schemas.

``INVOICE_SPEC`` and ``CONTRACT_SPEC`` declare what the ``extract`` enrichment task asks for
(``enrichment/prompts.py``: ``INVOICE_EXTRACT_TASK``, ``CONTRACT_EXTRACT_TASK``); the embedded
rules (``documents/extract.py``, ``documents/contract_rules.py``) fill the same records offline.
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
KINDS = (KIND_STRING, KIND_DATE, KIND_AMOUNT, KIND_CURRENCY, KIND_QUANTITY)

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
    """A document extraction task: header fields, repeated items, and a versioned contract.

    ``items_field`` names the list of repeated items (an invoice's ``line_items``, a contract's
    ``parties``); ``line_item_fields`` are the fields of one item.
    """

    name: str
    prompt_version: str
    instructions: str
    document: str
    fields: tuple[FieldSpec, ...]
    line_item_fields: tuple[FieldSpec, ...]
    items_field: str = "line_items"

    @property
    def field_names(self) -> list[str]:
        """Header field names, in declared order."""
        return [spec.name for spec in self.fields]


INVOICE_SPEC = ExtractionSpec(
    name="extract_invoice",
    prompt_version="invoice-v1",
    instructions=(
        "Extract the invoice's fields from its page text; use null for a field the document "
        "does not state. Never compute or guess a value (no total from the lines, no due date "
        "from payment terms)."
    ),
    document="invoice",
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
    """Where a value was found: page, character span in that page's text, how, how sure.

    ``start`` / ``end`` are None when an LLM's quote of the value was not found in the page text
    (the value is kept, at a lower confidence); ``page`` is then the page the model named, if any.
    """

    model_config = ConfigDict(frozen=True)

    confidence: float = Field(ge=0, le=1)
    page: int | None = Field(default=None, ge=1)
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
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


CONTRACT_SPEC = ExtractionSpec(
    name="extract_contract",
    prompt_version="contract-v1",
    instructions=(
        "Extract the contract's key terms from its page text. Copy values as printed (dates as "
        "ISO 8601); use null for a term the document does not state. Never infer a term from "
        "what contracts usually say."
    ),
    document="contract",
    fields=(
        FieldSpec("effective_date", KIND_DATE, "the date the contract takes effect, ISO 8601"),
        FieldSpec("term", KIND_STRING, "how long the contract runs (e.g. 'two (2) years')"),
        FieldSpec(
            "renewal_terms", KIND_STRING, "whether and how it renews (e.g. automatic renewal)"
        ),
        FieldSpec("notice_period", KIND_STRING, "notice needed to terminate or not renew"),
        FieldSpec("payment_terms", KIND_STRING, "when invoices are due (e.g. 'net 30 days')"),
        FieldSpec("governing_law", KIND_STRING, "the law (state or country) governing it"),
    ),
    line_item_fields=(
        FieldSpec("name", KIND_STRING, "a party's name as printed"),
        FieldSpec("role", KIND_STRING, "the party's defined role (e.g. Supplier, Customer)"),
    ),
    items_field="parties",
)


class Party(Provenance):
    """One party of a contract; its span covers the name as printed."""

    name: str
    role: str | None = None


class ContractExtraction(BaseModel):
    """The key terms found in one contract; None where nothing was found."""

    model_config = ConfigDict(frozen=True)

    model: str
    effective_date: Extracted[dt.date] | None = None
    term: Extracted[str] | None = None
    renewal_terms: Extracted[str] | None = None
    notice_period: Extracted[str] | None = None
    payment_terms: Extracted[str] | None = None
    governing_law: Extracted[str] | None = None
    parties: tuple[Party, ...] = ()


DocumentExtraction = InvoiceExtraction | ContractExtraction
# The typed record each spec's answers are validated into.
RECORD_MODELS: dict[str, type[InvoiceExtraction] | type[ContractExtraction]] = {
    INVOICE_SPEC.name: InvoiceExtraction,
    CONTRACT_SPEC.name: ContractExtraction,
}

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
            "confidence": {"type": "number", "description": "0..1, how sure the value is"},
            "page": {"type": ["integer", "null"], "description": "1-based page of the value"},
            "quote": {"type": ["string", "null"], "description": "the value exactly as printed"},
        }
    )


def document_schema(spec: ExtractionSpec = INVOICE_SPEC) -> dict[str, Any]:
    """The strict JSON schema of one document's answer (header fields and items)."""
    line_item = _strict_object(
        {f.name: _value_schema(f) for f in spec.line_item_fields}
        | {
            "confidence": {"type": "number"},
            "page": {"type": ["integer", "null"]},
            "quote": {"type": ["string", "null"], "description": "the item as printed"},
        }
    )
    properties = {f.name: _field_schema(f) for f in spec.fields}
    properties[spec.items_field] = {"type": "array", "items": line_item}
    return _strict_object(properties)


def llm_json_schema(spec: ExtractionSpec = INVOICE_SPEC) -> dict[str, Any]:
    """A strict JSON schema (OpenAI structured outputs) of the answer for one document.

    Every object forbids additional properties and requires all its properties; an absent value is
    ``null``. The LLM returns value, confidence, page and the verbatim quote; the span is found by
    locating the quote in that page's text, so the model never invents offsets. The ``extract``
    task sends this schema once per document of a packed request
    (``enrichment/packing.response_schema``).
    """
    return {"name": spec.name, "strict": True, "schema": document_schema(spec)}
