"""Value patterns in page text: amounts, dates and currencies, each found with its char span."""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

T = TypeVar("T")

# Month names in the languages of the invoices we meet (en, de, fr, nl, es, it, pl), lower case.
_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "january jan januar janvier januari enero gennaio stycznia styczeń",
        "february feb februar février fevrier februari febrero febbraio lutego luty",
        "march mar märz maerz mars maart marzo marca marzec",
        "april apr avril abril aprile kwietnia kwiecień",
        "may mai mei mayo maggio maja maj",
        "june jun juni juin junio giugno czerwca czerwiec",
        "july jul juli juillet julio luglio lipca lipiec",
        "august aug août aout augustus agosto sierpnia sierpień",
        "september sep sept septembre septiembre settembre września wrzesień",
        "october oct oktober octobre octubre ottobre okt października październik",
        "november nov novembre noviembre listopada listopad",
        "december dec dezember décembre decembre diciembre dicembre dez grudnia grudzień",
    ],
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number
_MONTH = "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))

_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_NUMERIC_DATE = re.compile(r"(?<![\d./-])(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?![\d./-])")
_DAY_MONTH_YEAR = re.compile(
    rf"(?<!\d)(\d{{1,2}})\.?\s*(?:de\s+)?({_MONTH})\.?,?\s+(\d{{4}})\b", re.I
)
_MONTH_DAY_YEAR = re.compile(
    rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s*(\d{{4}})\b", re.I
)

# A run of digits and separators not glued to letters or to date/time punctuation.
_NUMBER = re.compile(r"(?<![\w/:.,-])-?\d[\d.,']*(?![\w/])")
_PERCENT_AFTER = re.compile(r"\s?%")
# Currency symbols and codes, as written beside amounts.
CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "₹": "INR", "zł": "PLN", "¥": "JPY"}
_CODES = "EUR USD GBP INR PLN CHF JPY CAD AUD NZD SEK NOK DKK CZK HUF RON BGN CNY HKD SGD ZAR BRL"
CURRENCY_CODES = frozenset(_CODES.split(" "))
_CURRENCY_WORDS = {"rs": "INR", "rs.": "INR", "inr": "INR", "us dollars": "USD", "euro": "EUR"}
_CURRENCY = re.compile(
    r"(?P<symbol>€|\$|£|₹|¥|\bzł\b)|\b(?P<code>[A-Z]{3})\b"
    r"|(?P<word>\bRs\.?(?=\s?-?\d)|\bUS Dollars\b)"
)


@dataclass(frozen=True)
class Match(Generic[T]):
    """A value found in a text and where: ``text[start:end]`` is what was read."""

    value: T
    start: int
    end: int


def parse_amount(token: str) -> Decimal | None:
    """A decimal from a printed number: ``1.234,56``, ``1,234.56``, ``1'234.56``, ``4,11``, ``12``.

    A single separator followed by exactly three digits is read as a thousands separator; one
    followed by one or two digits as the decimal point. None when the grouping is inconsistent.
    """
    text = token.strip().rstrip(".,").replace("'", "")
    negative = text.startswith("-")
    text = text.lstrip("-")
    if not text or not text[0].isdigit():
        return None
    separators = [c for c in text if c in ".,"]
    integer, fraction = text, ""
    if separators:
        last = max(text.rfind("."), text.rfind(","))
        tail = text[last + 1 :]
        mixed = len(set(separators)) == 2
        if mixed or (len(separators) == 1 and len(tail) in (1, 2)):
            integer, fraction = text[:last], tail
            if mixed and text[:last].count(text[last]) > 0:
                return None  # the decimal separator also appears as a group separator
        groups = re.split(r"[.,]", integer)
        if len(groups) > 1 and (
            not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])
        ):
            return None
        integer = "".join(groups)
    try:
        value = Decimal(f"{integer}.{fraction}" if fraction else integer)
    except InvalidOperation:
        return None
    return -value if negative else value


def find_amounts(text: str, require_cents: bool = True) -> list[Match[Decimal]]:
    """Money amounts in ``text``: numbers with two decimals, or any number after a currency sign.

    Percentages are skipped. ``require_cents=False`` also admits bare numbers (quantities).
    """
    found: list[Match[Decimal]] = []
    for m in _NUMBER.finditer(text):
        token = m.group().rstrip(".,")
        end = m.start() + len(token)
        if _PERCENT_AFTER.match(text, end):
            continue
        value = parse_amount(token)
        if value is None:
            continue
        has_cents = re.search(r"[.,]\d{2}$", token) is not None
        before = text[max(0, m.start() - 4) : m.start()]
        after_sign = bool(re.search(r"(?:[€$£₹¥]|\b[A-Z]{3}|\bRs\.?)\s?$", before))
        if require_cents and not (has_cents or after_sign):
            continue
        found.append(Match(value, m.start(), end))
    return found


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    if year < 100:
        year += 2000
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def numeric_date_order(text: str) -> str:
    """``"dmy"`` or ``"mdy"`` for ambiguous numeric dates, from the unambiguous ones in ``text``.

    A date like 03/20/2023 (second part over 12) makes the document month-first; without such
    evidence day-first is assumed, as on most non-US invoices.
    """
    month_first = day_first = 0
    for m in _NUMERIC_DATE.finditer(text):
        first, second = int(m.group(1)), int(m.group(3))
        month_first += second > 12 >= first
        day_first += first > 12 >= second
    return "mdy" if month_first > day_first else "dmy"


def find_dates(text: str, order: str | None = None) -> list[Match[dt.date]]:
    """Dates in ``text`` in reading order: ISO, numeric (d/m/y or m/d/y), and with month names."""
    order = order or numeric_date_order(text)
    found: list[Match[dt.date]] = []
    for m in _ISO_DATE.finditer(text):
        value = _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if value:
            found.append(Match(value, m.start(), m.end()))
    for m in _NUMERIC_DATE.finditer(text):
        first, second, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
        day, month = (second, first) if order == "mdy" else (first, second)
        value = _safe_date(year, month, day)
        if value:
            found.append(Match(value, m.start(), m.end()))
    for m in _DAY_MONTH_YEAR.finditer(text):
        value = _safe_date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
        if value:
            found.append(Match(value, m.start(), m.end()))
    for m in _MONTH_DAY_YEAR.finditer(text):
        value = _safe_date(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)))
        if value:
            found.append(Match(value, m.start(), m.end()))
    found.sort(key=lambda match: match.start)
    # A shorter reading inside a longer one (``3 2014`` inside ``August 3 , 2014``) is dropped.
    kept: list[Match[dt.date]] = []
    for match in found:
        if kept and match.start < kept[-1].end:
            if match.end - match.start > kept[-1].end - kept[-1].start:
                kept[-1] = match
            continue
        kept.append(match)
    return kept


def find_currencies(text: str) -> list[Match[str]]:
    """ISO 4217 codes and currency signs in ``text``, as codes (``$`` is read as USD)."""
    found: list[Match[str]] = []
    for m in _CURRENCY.finditer(text):
        if m.group("symbol"):
            found.append(Match(CURRENCY_SYMBOLS[m.group("symbol")], m.start(), m.end()))
        elif m.group("code") in CURRENCY_CODES:
            found.append(Match(m.group("code"), m.start(), m.end()))
        elif m.group("word"):
            found.append(Match(_CURRENCY_WORDS[m.group("word").lower()], m.start(), m.end()))
    return found
