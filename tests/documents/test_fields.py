from decimal import Decimal

import pytest
from pydantic import ValidationError

from documents.fields import (
    CONTRACT_SPEC,
    INVOICE_SPEC,
    ContractExtraction,
    Extracted,
    InvoiceExtraction,
    llm_json_schema,
)


def strict_objects(schema):
    """Every object schema inside ``schema``."""
    if isinstance(schema, dict):
        if schema.get("type") in ("object", ["object", "null"]):
            yield schema
        for value in schema.values():
            yield from strict_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from strict_objects(value)


def test_llm_schema_is_strict_every_object_closed_and_fully_required():
    answer = llm_json_schema()
    assert answer["strict"] is True and answer["name"] == INVOICE_SPEC.name
    root = answer["schema"]
    assert list(root["properties"]) == [*INVOICE_SPEC.field_names, "line_items"]
    objects = list(strict_objects(root))
    assert len(objects) == len(INVOICE_SPEC.fields) + 2  # the fields, the root, a line item
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])


def test_llm_schema_values_are_nullable_and_carry_confidence_page_and_quote():
    props = llm_json_schema()["schema"]["properties"]
    total = props["total"]["properties"]
    assert set(total) == {"value", "confidence", "page", "quote"}
    assert total["confidence"]["type"] == "number"
    assert all("null" in total[key]["type"] for key in ("value", "page", "quote"))
    item = props["line_items"]["items"]["properties"]
    assert set(item) == {
        "description",
        "quantity",
        "unit_price",
        "amount",
        "confidence",
        "page",
        "quote",
    }


def test_contract_spec_has_its_own_strict_schema_with_parties_as_items():
    root = llm_json_schema(CONTRACT_SPEC)["schema"]
    assert list(root["properties"]) == [*CONTRACT_SPEC.field_names, "parties"]
    party = root["properties"]["parties"]["items"]
    assert set(party["properties"]) == {"name", "role", "confidence", "page", "quote"}
    assert set(ContractExtraction.model_fields) - {"model", "parties"} == set(
        CONTRACT_SPEC.field_names
    )


def test_spec_and_extraction_record_declare_the_same_fields():
    record = set(InvoiceExtraction.model_fields) - {"model", "line_items"}
    assert record == set(INVOICE_SPEC.field_names)


def test_provenance_is_validated():
    ok = Extracted[Decimal](value="1.50", confidence=1, page=1, start=0, end=4, source="rule")
    assert ok.value == Decimal("1.50")
    for bad in ({"confidence": 1.2}, {"page": 0}, {"source": "guess"}):
        fields = {"value": "1", "confidence": 0.5, "page": 1, "start": 0, "end": 1} | bad
        with pytest.raises(ValidationError):
            Extracted[Decimal](source=fields.pop("source", "rule"), **fields)
