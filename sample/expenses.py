"""Deterministic sample landing zone: realistic expense report lines with known bad rows.

Each business date gets ``landing/expense_lines/business_date=YYYY-MM-DD/expense_lines.csv`` plus an
answer key (``answer_keys/expense_lines/YYYY-MM-DD.json``) that says which rows are bad and what
should become of them, so tests can check the pipeline's verdicts row by row.

Usage: ``python -m sample.expenses --start 2026-11-20 --end 2026-11-26 --rows 200``
"""

import argparse
import csv
import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from infra.settings import lakehouse_root
from transforms.reference_data import (
    EXPENSE_CATEGORY_LIMITS_USD,
    WEEKDAY_ONLY_CATEGORIES,
)

# The expense policy the close enforces; good claims are generated well inside it.
CATEGORY_LIMITS_USD: dict[str, int] = {k: int(v) for k, v in EXPENSE_CATEGORY_LIMITS_USD.items()}
# Good claims stay under this share of their limit, converted at the highest rate a day can have.
POLICY_HEADROOM = 0.8

# Realistic USD per unit; the sample fx_rates drift at most FX_MAX_DRIFT around these.
FX_BASE_RATES: dict[str, float] = {
    "USD": 1.0,
    "EUR": 1.0832,
    "GBP": 1.2674,
    "CAD": 0.7312,
    "SGD": 0.7431,
    "JPY": 0.006712,
    "CHF": 1.1296,
    "AUD": 0.6548,
    "NZD": 0.5987,
    "SEK": 0.09421,
    "NOK": 0.09312,
    "DKK": 0.14521,
    "PLN": 0.24987,
    "CZK": 0.04312,
    "HUF": 0.002741,
    "INR": 0.011923,
    "CNY": 0.13821,
    "HKD": 0.12814,
    "MXN": 0.05832,
    "BRL": 0.19876,
    "ZAR": 0.05521,
    "AED": 0.27229,
}
FX_MAX_DRIFT = 0.03

EXPENSE_COLUMNS = [
    "report_id",
    "line_id",
    "employee_id",
    "transaction_date",
    "merchant",
    "amount",
    "currency",
    "claimed_category",
    "justification",
]

# (merchant, true category, typical amount range, justification templates)
_MERCHANTS: list[tuple[str, str, tuple[float, float], list[str]]] = [
    (
        "Delta Air Lines",
        "travel_air",
        (180, 1400),
        [
            "Flight to {city} for the {event}.",
            "Return airfare {city} for quarterly {event} with the regional team.",
        ],
    ),
    (
        "United Airlines",
        "travel_air",
        (150, 1600),
        [
            "Economy ticket to {city} to attend the {event}.",
        ],
    ),
    (
        "Marriott Hotels",
        "lodging",
        (120, 900),
        [
            "Hotel in {city}, {nights} nights, for the {event}.",
            "Accommodation during the {event} in {city}.",
        ],
    ),
    (
        "Hilton Garden Inn",
        "lodging",
        (110, 700),
        [
            "Two nights lodging in {city} for client {event}.",
        ],
    ),
    (
        "Uber",
        "ground_transport",
        (8, 90),
        [
            "Taxi from airport to client office in {city}.",
            "Ride to the {event} venue, no public transport at that hour.",
        ],
    ),
    (
        "Hertz Car Rental",
        "ground_transport",
        (60, 450),
        [
            "Car rental in {city} to visit three supplier sites.",
        ],
    ),
    (
        "Amtrak",
        "ground_transport",
        (40, 260),
        [
            "Train ticket to {city} for the {event}.",
        ],
    ),
    (
        "Olive Garden",
        "meals",
        (25, 240),
        [
            "Team dinner after the {event} in {city}.",
            "Client lunch to discuss the {event} renewal.",
        ],
    ),
    (
        "Starbucks",
        "meals",
        (4, 35),
        [
            "Coffee with a candidate during the {event}.",
        ],
    ),
    (
        "Pret A Manger",
        "meals",
        (6, 45),
        [
            "Working lunch during the {event} preparation.",
        ],
    ),
    (
        "Amazon Web Services",
        "software",
        (20, 2500),
        [
            "Cloud compute for the {event} analytics sandbox.",
        ],
    ),
    (
        "Atlassian",
        "software",
        (10, 800),
        [
            "Jira licence seats for the {event} project team.",
        ],
    ),
    (
        "Staples",
        "office_supplies",
        (5, 300),
        [
            "Printer paper and toner for the {city} office.",
            "Notebooks and pens for the {event} workshop.",
        ],
    ),
    (
        "Coursera",
        "training",
        (39, 600),
        [
            "Online course on IFRS 17 for the {event} certification plan.",
        ],
    ),
    (
        "AICPA",
        "training",
        (150, 1500),
        [
            "Registration for the CPE {event} seminar.",
        ],
    ),
    (
        "Verizon Wireless",
        "telecom",
        (30, 180),
        [
            "Mobile data roaming while at the {event} in {city}.",
        ],
    ),
]
_CITIES = ["Chicago", "London", "Toronto", "Frankfurt", "Singapore", "Austin", "Dublin", "Boston"]
_EVENTS = [
    "audit committee",
    "month-end close",
    "tax planning offsite",
    "vendor review",
    "budget kickoff",
    "payroll migration",
    "SOX walkthrough",
    "customer summit",
]
_CURRENCIES = [("USD", 0.7), ("EUR", 0.12), ("GBP", 0.1), ("CAD", 0.05), ("SGD", 0.03)]
_CLAIMED_NOISE = 0.08  # employees pick the wrong category now and then
_LAGS = [0, 0, 1, 1, 2, 3, 5, 9, 14]  # days between transaction and claim
# Good claims' amounts in cents are ≡ lag (mod _LAG_MODULUS): two claims with the same transaction
# date but different business dates can then never be exact duplicates by accident.
_LAG_MODULUS = 32

# Expected fates of deliberately bad rows: reason codes that silver must produce.
BAD_ROW_KINDS = {
    "malformed": "MALFORMED_RECORD",
    "bad_amount": "INVALID_AMOUNT",
    "negative_amount": "AMOUNT_OUT_OF_RANGE",
    "huge_amount": "AMOUNT_OUT_OF_RANGE",
    "bad_currency": "INVALID_CURRENCY",
    "bad_date": "INVALID_DATE",
    "future_date": "DATE_OUT_OF_RANGE",
    "missing_employee": "MISSING_REQUIRED_FIELD",
    "duplicate": "DUPLICATE_KEY",
}


@dataclass
class DayAnswerKey:
    """What the pipeline must conclude about one business date's landing file."""

    business_date: str
    rows_written: int = 0
    valid_keys: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # "report_id|line_id#n" -> reason
    categories: dict[str, str] = field(default_factory=dict)  # valid key -> true category


@dataclass
class ExpenseDay:
    """One business date's expense lines before they are written, with what they contain."""

    business_date: date
    lines: list[dict | str]
    key: DayAnswerKey
    # (employee, merchant, transaction_date) of every line: a new claim must avoid these, so no
    # accidental duplicate or split transaction appears.
    used: set[tuple[str, str, str]] = field(default_factory=set)


def _weighted(rng: random.Random, choices: list[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def max_rate_to_usd(currency: str) -> float:
    """The highest rate_to_usd the sample fx_rates can give ``currency`` on any day."""
    return FX_BASE_RATES[currency] * (1 + FX_MAX_DRIFT)


def amount_usd(amount: str | Decimal, rate_to_usd: str | float | Decimal) -> Decimal:
    """``round_half_up(amount × rate, 2)``: how silver converts an amount to USD."""
    value = Decimal(str(amount)) * Decimal(str(rate_to_usd))
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def lag_cents(cents: int, lag: int) -> int:
    """``cents`` moved to the nearest lower value ≡ ``lag`` (mod 32), never below 32 + lag."""
    return max(cents - cents % _LAG_MODULUS, _LAG_MODULUS) + lag


def _good_row(
    rng: random.Random,
    business_date: date,
    report: int,
    line: int,
    employee_ids: list[str] | None = None,
    used: set[tuple[str, str, str]] | None = None,
) -> tuple[dict, str]:
    merchant, category, (low, high), templates = rng.choice(_MERCHANTS)
    text = rng.choice(templates).format(
        city=rng.choice(_CITIES), event=rng.choice(_EVENTS), nights=rng.randint(1, 4)
    )
    claimed = category
    if rng.random() < _CLAIMED_NOISE:
        claimed = rng.choice([m[1] for m in _MERCHANTS])
    lag = rng.choice(_LAGS)
    tx_date = business_date - timedelta(days=lag)
    if {category, claimed} & WEEKDAY_ONLY_CATEGORIES and tx_date.weekday() >= 5:
        lag += tx_date.weekday() - 4  # back to the Friday before
        tx_date = business_date - timedelta(days=lag)
    currency = _weighted(rng, _CURRENCIES)
    limit = min(CATEGORY_LIMITS_USD[category], CATEGORY_LIMITS_USD[claimed])
    high = min(high, POLICY_HEADROOM * limit / max_rate_to_usd(currency))
    low = min(low, high / 2)
    cents = lag_cents(round(rng.uniform(low, high) * 100), lag)
    for _ in range(50):
        employee = rng.choice(employee_ids) if employee_ids else f"E{rng.randint(1, 4000):05d}"
        if used is None or (employee, merchant, tx_date.isoformat()) not in used:
            break
    if used is not None:
        used.add((employee, merchant, tx_date.isoformat()))
    row = {
        "report_id": f"ER-{business_date:%Y%m%d}-{report:05d}",
        "line_id": str(line),
        "employee_id": employee,
        "transaction_date": tx_date.isoformat(),
        "merchant": merchant,
        "amount": f"{cents // 100}.{cents % 100:02d}",
        "currency": currency,
        "claimed_category": claimed,
        "justification": text,
    }
    return row, category


def _corrupt(rng: random.Random, kind: str, row: dict, business_date: date) -> dict | str:
    row = dict(row)
    if kind == "bad_amount":
        row["amount"] = rng.choice(["12,5O", "N/A", "$$", "1.2.3"])
    elif kind == "negative_amount":
        row["amount"] = f"-{rng.uniform(1, 500):.2f}"
    elif kind == "huge_amount":
        row["amount"] = f"{rng.uniform(100_001, 9_000_000):.2f}"
    elif kind == "bad_currency":
        row["currency"] = rng.choice(["US$", "XXX", "EURO", "usd1"])
    elif kind == "bad_date":
        row["transaction_date"] = rng.choice(["2026-02-30", "31/12/2025", "yesterday"])
    elif kind == "future_date":
        row["transaction_date"] = (business_date + timedelta(days=rng.randint(2, 40))).isoformat()
    elif kind == "missing_employee":
        row["employee_id"] = ""
    elif kind == "malformed":
        # A line cut short by a broken export: too few fields for the declared contract.
        return ",".join([row["report_id"], row["line_id"], row["employee_id"]])
    return row


def build_day(
    business_date: date,
    rows: int,
    seed: int = 7,
    bad_share: float = 0.05,
    employee_ids: list[str] | None = None,
) -> ExpenseDay:
    """One business date's expense lines (good ones obey the expense policy) and answer key."""
    rng = random.Random(f"{seed}:{business_date.isoformat()}")
    key = DayAnswerKey(business_date=business_date.isoformat())
    used: set[tuple[str, str, str]] = set()
    bad_kinds = list(BAD_ROW_KINDS)
    n_bad = max(len(bad_kinds), int(rows * bad_share)) if rows >= 50 else 0
    bad_positions = set(rng.sample(range(rows), min(n_bad, rows)))
    lines: list[dict | str] = []
    report, line = 1, 1
    for i in range(rows):
        row, category = _good_row(rng, business_date, report, line, employee_ids, used)
        if i in bad_positions:
            kind = bad_kinds[len(key.quarantined) % len(bad_kinds)]
            if kind == "duplicate" and lines and isinstance(lines[-1], dict):
                # A resent line: same business key, so one copy is kept and the other quarantined.
                previous = lines[-1]
                lines.append(dict(previous))
                key.quarantined[f"{previous['report_id']}|{previous['line_id']}#dup"] = (
                    "DUPLICATE_KEY"
                )
            else:
                if kind == "duplicate":
                    kind = "bad_amount"
                lines.append(_corrupt(rng, kind, row, business_date))
                key.quarantined[f"{row['report_id']}|{row['line_id']}"] = BAD_ROW_KINDS[kind]
        else:
            lines.append(row)
            row_key = f"{row['report_id']}|{row['line_id']}"
            key.valid_keys.append(row_key)
            key.categories[row_key] = category
        line += 1
        if line > rng.randint(1, 8):
            report, line = report + 1, 1
    return ExpenseDay(business_date, lines, key, used)


def write_day(root: Path, day: ExpenseDay) -> DayAnswerKey:
    """Write an ``ExpenseDay``'s landing file and its answer key; return the key."""
    business_date, lines, key = day.business_date, day.lines, day.key
    out_dir = root / "landing" / "expense_lines" / f"business_date={business_date.isoformat()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "expense_lines.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPENSE_COLUMNS)
        writer.writeheader()
        for item in lines:
            if isinstance(item, str):
                handle.write(item + "\r\n")
            else:
                writer.writerow(item)
    key.rows_written = len(lines)
    key_dir = root / "answer_keys" / "expense_lines"
    key_dir.mkdir(parents=True, exist_ok=True)
    (key_dir / f"{business_date.isoformat()}.json").write_text(json.dumps(key.__dict__, indent=1))
    return key


def generate_day(
    root: Path, business_date: date, rows: int, seed: int = 7, bad_share: float = 0.05
) -> DayAnswerKey:
    """Write one business date's expense lines and its answer key; return the key."""
    return write_day(root, build_day(business_date, rows, seed, bad_share))


def generate(root: Path, start: date, end: date, rows: int, seed: int = 7) -> list[DayAnswerKey]:
    """Write a landing zone for every date in ``[start, end]``."""
    keys = []
    day = start
    while day <= end:
        keys.append(generate_day(root, day, rows, seed))
        day += timedelta(days=1)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a sample landing zone.")
    yesterday = date.today() - timedelta(days=1)
    parser.add_argument("--start", type=date.fromisoformat, default=yesterday - timedelta(days=2))
    parser.add_argument("--end", type=date.fromisoformat, default=yesterday)
    parser.add_argument("--rows", type=int, default=200, help="rows per source per day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, default=None, help="defaults to LAKEHOUSE_ROOT")
    args = parser.parse_args()
    root = args.root or Path(lakehouse_root())
    keys = generate(root, args.start, args.end, args.rows, args.seed)
    for k in keys:
        print(f"{k.business_date}: {k.rows_written} rows, {len(k.quarantined)} deliberately bad")


if __name__ == "__main__":
    main()
