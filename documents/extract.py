"""The embedded offline invoice extractor: label rules and value patterns over page text.

Every value keeps its page and character span. Confidence says how it was found: a label with
its value on the same line (0.9), a label whose value sits on the next line or under it in a
header row (0.75, 0.7), a label without separator (0.6), an unlabelled heuristic (0.3-0.5). The
answers are labelled as what they are: ``source = rule``, ``model = embedded/invoice-rules-v1``.
"""

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from documents.fields import InvoiceExtraction, LineItem
from documents.patterns import Match, find_amounts, find_currencies, find_dates, numeric_date_order
from documents.text import PageText

MODEL_ID = "embedded/invoice-rules-v1"
SOURCE = "rule"

CONF_SAME_LINE = 0.9
CONF_NEXT_LINE = 0.75
CONF_HEADER_ROW = 0.7
CONF_LOOSE_LABEL = 0.6
CONF_LEGAL_FORM = 0.5
CONF_FIRST_DATE = 0.4
CONF_FIRST_LINE = 0.3
CONF_LINE_ITEM = 0.6

# Labels per field as (pattern, priority); a higher priority wins over a more generic label.
# "other" labels are never extracted: they stop a generic label inside them (the "Date" of
# "Order Date") from being read as that field.
_LABELS: dict[str, list[tuple[str, int]]] = {
    "invoice_number": [
        (r"invoice\s*(?:number|no\.?|num\.?|nr\.?|#|id)", 3),
        (r"(?:inv|bill|receipt)\.?\s*(?:number|no\.?|#)", 3),
        (r"rechnungs?\s*-?\s*(?:nummer|nr\.?)", 3),
        (r"factuur\s*(?:nummer|nr\.?)", 3),
        (r"facture\s*(?:n°|no\.?|nr\.?|num[ée]ro)", 3),
        (r"num[ée]ro\s+de\s+facture|n°\s*de\s*facture", 3),
        (r"faktura\s*(?:nr\.?|numer)|numer\s+faktury", 3),
        (r"fattura\s*(?:n\.?|nr\.?|numero)|n[úu]mero\s+de\s+factura|factura\s*(?:n[º°o]\.?|#)", 3),
        # The document's title followed directly by its number ("Invoice INV/2023/03/0008").
        (r"invoice|facture|factuur|rechnung|faktura|fattura|factura", 1),
    ],
    "invoice_date": [
        (r"invoice\s*date|date\s+of\s+(?:invoice|issue)|issue\s*date|date\s+issued", 3),
        (r"rechnungsdatum|factuur\s*datum|date\s+de\s+(?:la\s+)?facture", 3),
        (r"data\s+wystawienia|fecha\s+de\s+(?:la\s+)?factura|data\s+fattura|billing\s+date", 3),
        (r"date|datum|dated|fecha|data", 1),
    ],
    "due_date": [
        (r"due\s*date|date\s+due|payment\s+due(?:\s+date)?|due\s+(?:on|by)|pay(?:able)?\s+by", 3),
        (r"verval\s*datum|f[äa]lligkeitsdatum|f[äa]llig\s+am|zahlbar\s+bis", 3),
        (r"date\s+limite\s+de\s+paiement|[ée]ch[ée]ance|termin\s+p[łl]atno[śs]ci", 3),
        (r"fecha\s+de\s+vencimiento|scadenza|zahlungsziel", 3),
    ],
    "total": [
        (r"(?:total\s+)?amount\s+due|balance\s+due|total\s+due|amount\s+payable", 3),
        (r"grand\s+total|invoice\s+total|total\s+(?:amount|payable|for\s+this\s+invoice)", 3),
        (r"gesamtbetrag|rechnungsbetrag|endbetrag|zu\s+zahlen|gesamtsumme", 3),
        (r"(?:montant|total)\s+(?:[a-z]{3}\s+)?ttc|(?:net|somme|montant)\s+[àa]\s+payer", 3),
        (r"factuur\s*totaal|totaal\s+(?:te\s+betalen|incl\.?)|te\s+betalen", 3),
        (r"nale[żz]no[śs][ćc]\s+og[óo][łl]em|do\s+zap[łl]aty", 3),
        (r"total|totaal|summe|gesamt|razem|totale", 1),
    ],
    "net": [
        (r"(?:total|montant)\s+(?:[a-z]{3}\s+)?ht|net\s+amount|amount\s+before\s+tax", 3),
        (r"untaxed\s+amount|total\s+(?:excl|excluding)\.?(?:\s+(?:vat|tax))?", 3),
        (r"exclusief\s+btw|excl\.?\s+(?:btw|vat|tax|mwst)|totaal\s+excl\.?", 3),
        (r"nettobetrag|netto\s*betrag|summe\s+netto|grondslag|warto[śs][ćc]\s+netto", 3),
        (r"subtotal|sub-total|sub\s+total|subtotaal|zwischensumme|netto", 1),
    ],
    "tax": [
        (r"(?:vat|tax|gst)\s+amount|total\s+(?:tax|vat|gst)|sales\s+tax", 3),
        (r"btw\s*bedrag|montant\s+(?:de\s+la\s+)?tva|total\s+tva|mwst\.?\s*-?betrag", 3),
        (r"kwota\s+vat|umsatzsteuer|mehrwertsteuer", 3),
        # "Tax 15% on $ 112.90 $ 16.94": the rate and its base belong to the label.
        (r"(?:tax|vat|gst|btw|tva|mwst)\s*\d+(?:[.,]\d+)?\s*%\s+on\s+\D{0,2}\d[\d.,]*", 2),
        (r"tax|vat|gst|btw|tva|mwst\.?|ust\.?|iva", 1),
    ],
    "vendor_name": [
        (r"sold\s+by|seller|vendor|supplier|service\s+provider|issued\s+by|bill\s+from", 3),
        (r"sprzedawca|verk[äa]ufer|lieferant|fournisseur|vendeur|leverancier|verkoper", 3),
    ],
    "vendor_tax_id": [
        (r"vat\s*(?:/\s*tin|reg(?:istration)?\.?\s*(?:no\.?|number)?|no\.?|number|id)", 3),
        (r"tax\s*id|tin|gstin|ust-?\s*id(?:nr)?\.?|steuer-?nr\.?", 3),
        (r"btw\s*(?:-?nr\.?|nummer)?|tva\s+intracom\w*|n°\s*tva|nip", 2),
    ],
    "po_number": [
        (r"p\.?\s?o\.?\s*(?:number|no\.?|#)|purchase\s+order(?:\s*(?:number|no\.?|#))?", 3),
        (r"bestellnummer|inkoopordernummer|bon\s+de\s+commande", 3),
    ],
    "other": [
        (r"order\s*date|orderdatum|delivery\s*date|ship(?:ping)?\s*date|lieferdatum", 9),
        (r"leverdatum|date\s+de\s+livraison|check\s*(?:in|out)|service\s+tax", 9),
        (r"(?:uw|your|customer|client|votre|ihre|buyer)\s+(?:btw|vat|tax|tva|ust)\w*", 9),
        (r"(?:incl|inclusive|including)\.?\s+(?:of\s+)?", 9),
        # Rate columns ("Tax(%)", "BTW %") and "without VAT" columns hold no tax amount.
        (r"(?:tax|vat|btw|tva|mwst\.?|gst)\s*\(?\s*%\s*\)?|ohne\s+mwst\.?", 9),
    ],
}

_DATE_FIELDS = ("invoice_date", "due_date")
_AMOUNT_FIELDS = ("total", "net", "tax")
_ID_FIELDS = ("invoice_number", "po_number", "vendor_tax_id")
# After a label: optional separators, then the value.
_SEPARATOR = re.compile(r"[\s:#.*-]*")
_ID_TOKEN = re.compile(r"#?\s?([A-Za-z0-9][A-Za-z0-9/_.-]*[A-Za-z0-9]|\d)")
_TAX_ID_TOKEN = re.compile(r"[A-Z]{0,2}\s?\d[\dA-Z .-]{4,}[\dA-Z]")
# A company's legal form ends its name; short forms are matched in capitals only.
_LEGAL_FORM = re.compile(
    r"\b(?:Inc\.?|Incorporated|Ltd\.?|Limited|LLC|GmbH|AG|B\.V\.|BV|N\.V\.|S\.A\.S?\.?|SAS|"
    r"SARL|S\.p\.A\.|Pvt\.?\s+Ltd\.?|Corp\.?|Corporation|plc|PLC|sp\.\s?z\s?o\.\s?o\.)(?!\w)"
)
_DOC_TYPE_WORDS = re.compile(
    r"\b(?:tax\s+)?(?:invoice|facture|factuur|rechnung|faktura|fattura|factura|receipt|bill)s?\b"
    r"\.?|payment\s+receipt",
    re.I,
)


@dataclass(frozen=True)
class _Label:
    field: str
    priority: int
    start: int
    end: int


_COMPILED = [
    # Word boundaries where the label starts or ends with a letter ("Facture n°562044387").
    (field, priority, re.compile(rf"(?<!\w)(?:{pattern})(?!(?<=\w)\w)", re.I))
    for field, patterns in _LABELS.items()
    for pattern, priority in patterns
]


def find_labels(text: str) -> list[_Label]:
    """Every field label in ``text`` in reading order; where labels overlap the longest wins."""
    found = [
        _Label(field, priority, m.start(), m.end())
        for field, priority, regex in _COMPILED
        for m in regex.finditer(text)
    ]
    found.sort(key=lambda lb: (lb.start - lb.end, -lb.priority))
    kept: list[_Label] = []
    for label in found:
        if all(label.end <= k.start or label.start >= k.end for k in kept):
            kept.append(label)
    return sorted(kept, key=lambda lb: lb.start)


def _line_bounds(text: str, index: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return start, len(text) if end == -1 else end


def _next_line(text: str, index: int) -> tuple[int, int] | None:
    _, end = _line_bounds(text, index)
    while end < len(text):
        start = end + 1
        _, stop = _line_bounds(text, start)
        if text[start:stop].strip():
            return start, stop
        end = stop
    return None


Finder = Callable[[str, int, int], list[Match[Any]]]


def _find_in(finder: Callable[[str], list[Match[Any]]]) -> Finder:
    def find(text: str, start: int, end: int) -> list[Match[Any]]:
        return [Match(m.value, m.start + start, m.end + start) for m in finder(text[start:end])]

    return find


def _ids(text: str, start: int, end: int) -> list[Match[Any]]:
    found = []
    for m in _ID_TOKEN.finditer(text, start, end):
        if any(c.isdigit() for c in m.group(1)):
            found.append(Match(m.group(1), m.start(1), m.end(1)))
    return found


def _tax_ids(text: str, start: int, end: int) -> list[Match[Any]]:
    found = []
    for m in _TAX_ID_TOKEN.finditer(text, start, end):
        value = m.group().strip()
        found.append(Match(value, m.start(), m.start() + len(value)))
    return found


@dataclass(frozen=True)
class _Candidate:
    field: str
    priority: int
    confidence: float
    page: int
    match: Match[Any]


def _labelled_candidates(page: PageText, labels: list[_Label], finders: dict[str, Finder]):
    text = page.text
    for index, label in enumerate(labels):
        if label.field not in finders:
            continue
        find = finders[label.field]
        _, line_end = _line_bounds(text, label.end)
        next_label = next((lb.start for lb in labels[index + 1 :] if lb.start < line_end), None)
        # The value follows the label on its line, before the next label there.
        gap = _SEPARATOR.match(text, label.end)
        stop = next_label if next_label is not None else line_end
        same_line = find(text, label.end, stop)
        if label.field in _ID_FIELDS:
            # An id must follow its label directly ("Invoice No: 123", not words further on).
            same_line = [m for m in same_line[:2] if text[gap.end() : m.start].strip("#: ") == ""]
        if same_line:
            separated = gap.end() > label.end and text[label.end : gap.end()].strip() != ""
            confidence = CONF_SAME_LINE if separated or label.priority > 1 else CONF_LOOSE_LABEL
            if label.field in _ID_FIELDS and not separated and label.priority < 3:
                confidence = CONF_LOOSE_LABEL
            yield _Candidate(label.field, label.priority, confidence, page.page, same_line[0])
            continue
        below = _next_line(text, label.end)
        # Look below only when the label's line holds nothing else (no rate, no other number) and
        # never for a bare title ("Invoice" in a header row is no invoice number).
        if below is None or (label.priority < 2 and label.field in _ID_FIELDS):
            continue
        if any(c.isdigit() for c in text[label.end : line_end]):
            continue
        kind = _kind(label.field)
        row = [
            lb for lb in labels if _line_bounds(text, lb.start) == _line_bounds(text, label.start)
        ]
        row = [lb for lb in row if _kind(lb.field) == kind]
        values = find(text, *below)
        if not values:
            continue
        if len(row) == 1:
            yield _Candidate(label.field, label.priority, CONF_NEXT_LINE, page.page, values[0])
            continue
        position = row.index(label)
        # Amount columns align right (a description or rate column has none); others align left.
        if kind == "amount":
            position += len(values) - len(row)
        if 0 <= position < len(values):
            yield _Candidate(
                label.field, label.priority, CONF_HEADER_ROW, page.page, values[position]
            )


def _kind(field: str) -> str:
    if field in _DATE_FIELDS:
        return "date"
    if field in _AMOUNT_FIELDS:
        return "amount"
    return field


def _best(candidates: list[_Candidate], field: str) -> _Candidate | None:
    mine = [c for c in candidates if c.field == field]
    if not mine:
        return None
    if field in _AMOUNT_FIELDS:
        # Among labels of one strength, the largest amount: the last subtotal, the grand total.
        return max(mine, key=lambda c: (c.priority, c.confidence, c.match.value))
    return max(mine, key=lambda c: (c.priority, c.confidence, -c.page, -c.match.start))


def _extracted(candidate: _Candidate) -> dict[str, Any]:
    return {
        "value": candidate.match.value,
        "confidence": candidate.confidence,
        "page": candidate.page,
        "start": candidate.match.start,
        "end": candidate.match.end,
        "source": SOURCE,
    }


def _vendor_by_legal_form(page: PageText) -> _Candidate | None:
    for m in _LEGAL_FORM.finditer(page.text):
        line_start, _ = _line_bounds(page.text, m.start())
        words = page.text[line_start : m.start()].split(" ")
        name: list[str] = []
        for word in reversed(words):
            if not word:
                continue
            if (not word[0].isupper() and not word[0].isdigit()) or word.endswith((":", ".")):
                break
            name.insert(0, word)
            if len(name) == 4:
                break
        if name:
            start = page.text.rfind(name[0], line_start, m.start())
            value = page.text[start : m.end()].strip()
            return _Candidate(
                "vendor_name", 0, CONF_LEGAL_FORM, page.page, Match(value, start, m.end())
            )
    return None


def _vendor_by_first_line(page: PageText) -> _Candidate | None:
    offset = 0
    for line in page.text.split("\n"):
        name = _DOC_TYPE_WORDS.sub("", line).strip(" .:-")
        letters = sum(c.isalpha() for c in name)
        if letters >= 3 and not any(c.isdigit() for c in name) and "@" not in name:
            start = offset + line.find(name)
            return _Candidate(
                "vendor_name", 0, CONF_FIRST_LINE, page.page, Match(name, start, start + len(name))
            )
        offset += len(line) + 1
    return None


def _vendor_after_label(text: str, start: int, end: int) -> list[Match[Any]]:
    value = text[start:end].strip(" :-\t,")
    if not value or value.startswith("(") or not any(c.isalpha() for c in value):
        return []
    begin = text.find(value, start, end)
    return [Match(value, begin, begin + len(value))]


_FINDERS: dict[str, Finder] = {
    "invoice_number": _ids,
    "po_number": _ids,
    "vendor_tax_id": _tax_ids,
    "vendor_name": _vendor_after_label,
    "total": _find_in(find_amounts),
    "net": _find_in(find_amounts),
    "tax": _find_in(find_amounts),
}


def _currency(pages: Sequence[PageText]) -> _Candidate | None:
    found = [(page, m) for page in pages for m in find_currencies(page.text)]
    if not found:
        return None
    codes = [(page, m) for page, m in found if page.text[m.start : m.end].isalpha()]
    pool = codes or found
    winner, _ = Counter(m.value for _, m in pool).most_common(1)[0]
    page, match = next((p, m) for p, m in pool if m.value == winner)
    return _Candidate("currency", 0, 0.85 if codes else 0.6, page.page, match)


def _line_items(page: PageText) -> list[LineItem]:
    items: list[LineItem] = []
    offset = 0
    for line in page.text.split("\n"):
        amounts = find_amounts(line)
        numbers = find_amounts(line, require_cents=False)
        if len(amounts) >= 2:
            total = amounts[-1]
            for unit in amounts[:-1]:
                quantities = [n for n in numbers if n.end <= unit.start and n.value > 0]
                quantity = next(
                    (
                        q
                        for q in reversed(quantities)
                        if abs(q.value * unit.value - total.value) <= Decimal("0.01")
                    ),
                    None,
                )
                if quantity is None:
                    continue
                description = line[: quantity.start].strip(" -€$£")
                if description and not find_labels(description):
                    items.append(
                        LineItem(
                            description=description,
                            quantity=quantity.value,
                            unit_price=unit.value,
                            amount=total.value,
                            confidence=CONF_LINE_ITEM,
                            page=page.page,
                            start=offset,
                            end=offset + len(line),
                            source=SOURCE,
                        )
                    )
                break
        offset += len(line) + 1
    return items


def extract_invoice(pages: Sequence[PageText]) -> InvoiceExtraction:
    """The invoice fields found in ``pages``, each with page, span and confidence."""
    order = numeric_date_order("\n".join(page.text for page in pages))
    finders = {**_FINDERS}
    date_finder = _find_in(lambda text: find_dates(text, order))
    finders.update(dict.fromkeys(_DATE_FIELDS, date_finder))
    candidates: list[_Candidate] = []
    for page in pages:
        candidates.extend(_labelled_candidates(page, find_labels(page.text), finders))
    fields: dict[str, Any] = {}
    for field in ("invoice_number", "invoice_date", "due_date", "total", "net", "tax"):
        best = _best(candidates, field)
        if best:
            fields[field] = _extracted(best)
    for field in ("vendor_tax_id", "po_number"):
        best = _best(candidates, field)
        if best:
            fields[field] = _extracted(best)
    vendor = _best(candidates, "vendor_name")
    if vendor is None and pages:
        vendor = next(filter(None, map(_vendor_by_legal_form, pages)), None)
        vendor = vendor or _vendor_by_first_line(pages[0])
    if vendor:
        fields["vendor_name"] = _extracted(vendor)
    if "invoice_date" not in fields:
        first = next(((p, d) for p in pages for d in find_dates(p.text, order)), None)
        if first:
            page, date = first
            fields["invoice_date"] = _extracted(
                _Candidate("invoice_date", 0, CONF_FIRST_DATE, page.page, date)
            )
    currency = _currency(pages)
    if currency:
        fields["currency"] = _extracted(currency)
    line_items = tuple(item for page in pages for item in _line_items(page))
    return InvoiceExtraction(model=MODEL_ID, line_items=line_items, **fields)
