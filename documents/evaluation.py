"""Field-level scoring of extracted invoices against labelled answers (invoice2data's ``.json``).

A field is scored only where the answer states it (the answers leave out many fields the
documents print, so a value we find for an unlabelled field is neither right nor wrong):

* correct: the answer states the field and our value matches it;
* precision = correct / fields we filled among those the answer states;
* recall = correct / fields the answer states.

Matching: dates equal as ISO dates; amounts equal within 0.01; currency codes equal; the vendor
name matches when, lower-cased with whitespace collapsed, one contains the other; the invoice
number, vendor tax id and PO number must be equal after lower-casing and dropping whitespace and
a leading ``#``. invoice2data's labels state neither tax id nor PO number; the sample generator's
answer key (:func:`sample_answer`) states every field.
"""

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from documents.fields import InvoiceExtraction

# Our field -> the answer's key.
ANSWER_KEYS = {
    "vendor_name": "issuer",
    "invoice_number": "invoice_number",
    "invoice_date": "date",
    "due_date": "date_due",
    "total": "amount",
    "tax": "amount_tax",
    "net": "amount_untaxed",
    "currency": "currency",
    # Stated by the sample generator's answer key, not by invoice2data's labels.
    "vendor_tax_id": "vendor_tax_id",
    "po_number": "po_number",
}
SCORED_FIELDS = tuple(ANSWER_KEYS)
AMOUNT_TOLERANCE = Decimal("0.01")


@dataclass(frozen=True)
class FieldScore:
    """Counts for one field (or all fields): labelled, filled where labelled, and correct."""

    labelled: int = 0
    predicted: int = 0
    correct: int = 0

    def __add__(self, other: "FieldScore") -> "FieldScore":
        return FieldScore(
            self.labelled + other.labelled,
            self.predicted + other.predicted,
            self.correct + other.correct,
        )

    @property
    def precision(self) -> float | None:
        """Correct among the values we gave; None when we gave none."""
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        """Correct among the values the answers state; None when they state none."""
        return self.correct / self.labelled if self.labelled else None


def load_answer(path: Path) -> dict[str, Any]:
    """The answer beside a document: ``X.json`` for ``X.pdf`` / ``X.png`` / ``X.txt``."""
    answers = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    return answers[0] if isinstance(answers, list) else answers


def sample_answer(entry: dict[str, Any]) -> dict[str, Any]:
    """The sample generator's answer key entry for a document (``sample/invoice_documents.py``
    ``answer_key_entry``) in the labels' shape that :func:`score` reads."""
    return {key: entry[field] for field, key in ANSWER_KEYS.items() if field in entry}


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())


def matches(field: str, ours: Any, answer: Any) -> bool:
    """Whether our value for ``field`` counts as the answer's (see the module docstring)."""
    if field in ("invoice_date", "due_date"):
        return isinstance(ours, dt.date) and ours.isoformat() == str(answer)[:10]
    if field in ("total", "tax", "net"):
        return abs(Decimal(str(ours)) - Decimal(str(answer))) <= AMOUNT_TOLERANCE
    if field == "currency":
        return str(ours).upper() == str(answer).upper()
    if field in ("invoice_number", "vendor_tax_id", "po_number"):
        return _norm(ours).replace(" ", "").lstrip("#") == _norm(answer).replace(" ", "").lstrip(
            "#"
        )
    a, b = _norm(ours), _norm(answer)
    return bool(a and b) and (a in b or b in a)


def score(extraction: InvoiceExtraction, answer: dict[str, Any]) -> dict[str, FieldScore]:
    """Per scored field, the counts for one document."""
    scores = {}
    for field, key in ANSWER_KEYS.items():
        expected = answer.get(key)
        if expected in (None, ""):
            scores[field] = FieldScore()
            continue
        extracted = getattr(extraction, field)
        if extracted is None:
            scores[field] = FieldScore(labelled=1)
            continue
        scores[field] = FieldScore(1, 1, int(matches(field, extracted.value, expected)))
    return scores


def total(scores: Iterable[dict[str, FieldScore]]) -> dict[str, FieldScore]:
    """Per-field sums over documents, plus ``overall`` over every field."""
    summed = dict.fromkeys(SCORED_FIELDS, FieldScore())
    for document in scores:
        for field, counts in document.items():
            summed[field] = summed[field] + counts
    summed["overall"] = sum(summed.values(), FieldScore())
    return summed
