"""Deterministic sample landing zone for the whole nightly close, with seeded anomalies.

For every business date of a range it writes the landing files of every source declared in
``transforms/contracts.py`` (``landing/<source>/business_date=YYYY-MM-DD/``, in the contract's file
format and column order) and an answer key ``answer_keys/close/YYYY-MM-DD.json`` listing exactly
the reconciliation exceptions open and closed that night, the rows silver must quarantine, the
true labels of the HR cases (see docs/RECONCILIATIONS.md), and what each invoice document landed
in ``landing/invoice_documents/`` and each contract in ``landing/contract_documents/`` states
(``sample/invoice_documents.py``, ``sample/contract_documents.py``).

Anomalies are seeded on purpose; everything else is built so that it cannot raise an exception by
accident (amounts that could pair by amount are unique per entity over the whole window, claims
stay well inside the expense policy, payroll pays the roster's salaries).

Usage: ``python -m sample.close --start 2026-11-16 --end 2026-11-30``
"""

import argparse
import csv
import json
import random
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from infra.settings import lakehouse_root
from sample import contract_documents as sample_contracts
from sample import expenses as sample_data
from sample import invoice_documents as sample_documents
from sample.expenses import (
    _MERCHANTS,
    CATEGORY_LIMITS_USD,
    FX_BASE_RATES,
    FX_MAX_DRIFT,
    WEEKDAY_ONLY_CATEGORIES,
    lag_cents,
)
from transforms.contracts import CONTRACTS, VALID_CURRENCIES
from transforms.reference_data import (
    AP_SOURCE_SYSTEM,
    BANK_ACCOUNTS,
    GL_AP_CONTROL_ACCOUNT,
    LEGAL_ENTITIES,
    RECON_LOOKBACK_DAYS,
)

# Records older than the reconciliations' window leave it (they close as aged out).
LOOKBACK_DAYS = RECON_LOOKBACK_DAYS
DOCUMENT_RECON = "document_ap"
CONTRACT_RECON = "contract_ap"
CASH_ACCOUNT = "1010"
AR_ACCOUNT = "1200"
MISSING_RATE_CURRENCY = "SEK"
TAX_RATE = Decimal("0.22")
DEDUCTION_RATE = Decimal("0.05")

BANK_GL_ANOMALIES = ("timing", "missing_posting", "fx_error", "duplicate_posting", "never_clears")
AP_GL_ANOMALIES = ("ap_unposted", "ap_late", "manual_ap_journal", "ap_amount_mismatch")
POLICY_ANOMALIES = ("duplicate", "split", "over_limit", "weekend", "blocked")
HR_CASE_TYPES = (
    "payroll_query",
    "leave_request",
    "benefits",
    "harassment_complaint",
    "relocation",
    "performance",
    "resignation",
)

_ENTITY_OF_ACCOUNT = {b.legal_entity: b.account for b in BANK_ACCOUNTS.values()}
_FILLER_ACCOUNTS = [
    AR_ACCOUNT,
    "1300",
    "1500",
    "1600",
    "2300",
    "2400",
    "2500",
    "4000",
    "4100",
    *[str(a) for a in range(5000, 8000, 100)],
]
_EXPENSE_ACCOUNTS = [str(a) for a in range(6000, 7000, 100)]
_COST_CENTRES = ["CC-100", "CC-200", "CC-300", "CC-400", "CC-500", "CC-600", "CC-700"]
_FILLER_TEXT = [
    "Prepaid expense amortisation",
    "Depreciation run",
    "Intercompany recharge",
    "Payroll clearing",
    "Revenue recognition",
    "Reclass between cost centres",
    "Deferred revenue release",
]
_CUSTOMERS = [
    "Northwind Traders",
    "Contoso Ltd",
    "Fabrikam Inc",
    "Tailspin Toys",
    "Wide World Importers",
    "Adventure Works",
    "Litware Inc",
    "Proseware GmbH",
    "Blue Yonder Airlines",
    "Coho Winery",
]
_VENDORS = [
    ("V-1001", "Acme Office Supply", "6100"),
    ("V-1002", "Globex Facilities", "6200"),
    ("V-1003", "Initech Software", "6300"),
    ("V-1004", "Umbrella Logistics", "6400"),
    ("V-1005", "Stark Legal LLP", "6500"),
    ("V-1006", "Wayne Consulting", "6600"),
    ("V-1007", "Hooli Cloud", "6300"),
    ("V-1008", "Vandelay Industries", "6700"),
]
_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Oliver",
    "Amelia",
    "Harry",
    "Isla",
    "George",
    "Ava",
    "Noah",
    "Emily",
    "Lukas",
    "Hannah",
    "Felix",
    "Lea",
    "Jonas",
    "Mia",
    "Paul",
    "Anna",
    "Priya",
    "Wei",
    "Carlos",
    "Sofia",
    "Ahmed",
    "Fatima",
    "Kenji",
    "Yuki",
    "Omar",
    "Chloe",
    "Liam",
    "Zoe",
]
_LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Wilson",
    "Taylor",
    "Clarke",
    "Wright",
    "Walker",
    "Hughes",
    "Edwards",
    "Green",
    "Hall",
    "Wood",
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Patel",
    "Chen",
    "Nguyen",
    "Kim",
    "Rossi",
    "Silva",
    "Khan",
    "Novak",
    "Okafor",
    "Larsen",
    "Dubois",
    "Costa",
    "Tanaka",
    "Ivanova",
]
_DEPARTMENTS = {
    "Finance": ("CC-100", ["Accountant", "Financial Analyst", "Controller", "AP Specialist"]),
    "People": ("CC-200", ["HR Generalist", "Recruiter", "Payroll Specialist"]),
    "Engineering": ("CC-300", ["Software Engineer", "Data Engineer", "Engineering Manager"]),
    "Sales": ("CC-400", ["Account Executive", "Sales Manager", "Sales Engineer"]),
    "Operations": ("CC-500", ["Operations Analyst", "Facilities Coordinator"]),
    "Marketing": ("CC-600", ["Marketing Manager", "Content Strategist"]),
    "Legal": ("CC-700", ["Counsel", "Paralegal"]),
}
_LOCATIONS = {
    "US01": ["New York", "Chicago", "Austin"],
    "GB01": ["London", "Manchester"],
    "DE01": ["Frankfurt", "Berlin", "Munich"],
}
_EMAIL_DOMAIN = {
    "US01": "corpservices.com",
    "GB01": "corpservices.co.uk",
    "DE01": "corpservices.de",
}
_PHONE_PREFIX = {"US01": "+1 312 555 0", "GB01": "+44 20 7946 0", "DE01": "+49 30 9018 2"}
_SALARY_RANGE = {"US01": (55_000, 220_000), "GB01": (40_000, 160_000), "DE01": (45_000, 170_000)}
_BLOCKED_MERCHANTS = [
    "Lucky Star Casino",
    "Downtown Liquor Store",
    "Velvet Nightclub",
    "BetKing Sports Betting",
]


# --- small helpers -----------------------------------------------------------------------------


def _dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up (non-negative numerator)."""
    return (2 * numerator + denominator) // (2 * denominator)


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def _last_business_day(day: date) -> date:
    last = _month_end(day)
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return last


def pay_period(day: date) -> tuple[date, date] | None:
    """The semi-monthly period paid on ``day`` (the 15th or the month end), else None."""
    if day.day == 15:
        return day.replace(day=1), day
    if day == _month_end(day):
        return day.replace(day=16), day
    return None


def _rid(source: str, *key: object) -> str:
    return f"{source}:{'|'.join(str(k) for k in key)}"


def fx_rate(seed: int, day: date, currency: str) -> float:
    """Units of USD per ``currency`` on ``day``: a smooth drift around the base rate, USD = 1."""
    if currency == "USD":
        return 1.0
    phase = random.Random(f"{seed}:fx:{currency}").uniform(0, 40)
    noise = random.Random(f"{seed}:fx:{day.isoformat()}:{currency}").uniform(-0.004, 0.004)
    wave = 0.02 * ((((day.toordinal() + phase) % 40) / 20) - 1)  # triangle-ish, within ±2%
    drift = max(-FX_MAX_DRIFT + 0.001, min(FX_MAX_DRIFT - 0.001, wave + noise))
    return float(f"{FX_BASE_RATES[currency] * (1 + drift):.6g}")


# --- the answer key ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Exception:
    recon: str
    exception_type: str
    records: tuple[str, ...]
    opened: date
    # Carried-forward recons: the date the counterpart lands (closed ``matched``); None = never,
    # so it ages out of the window. Not used for reported-once recons.
    closes: date | None = None
    carried: bool = True
    # The oldest landing date among its records, when not ``opened``: it ages out from there.
    first_seen: date | None = None


def _exception(
    recon: str,
    kind: str,
    records: list[str],
    opened: date,
    closes: date | None = None,
    first_seen: date | None = None,
) -> _Exception:
    carried = recon in ("bank_gl", "ap_gl", DOCUMENT_RECON, CONTRACT_RECON)
    return _Exception(recon, kind, tuple(sorted(records)), opened, closes, carried, first_seen)


def _document_exceptions(day: date, landed: sample_documents.LandedDocuments) -> list[_Exception]:
    """What a date's seeded document discrepancies raise (``document_ap``, carried forward)."""
    found = []
    for doc in landed.documents:
        record = _rid(sample_documents.SOURCE, day.isoformat(), doc.file_name)
        if doc.discrepancy in (sample_documents.DOC_AMOUNT_MISMATCH,
                               sample_documents.DOC_DATE_MISMATCH):  # fmt: skip
            ap = _rid("ap_invoices", doc.ap_invoice_id)
            found.append(_exception(DOCUMENT_RECON, doc.discrepancy, [record, ap], day))
        elif doc.discrepancy == sample_documents.DOC_NOT_IN_AP:
            found.append(_exception(DOCUMENT_RECON, doc.discrepancy, [record], day))
        elif doc.discrepancy == sample_documents.DUPLICATE_DOCUMENT:
            first = date.fromisoformat(doc.duplicate_of_date)
            original = _rid(sample_documents.SOURCE, doc.duplicate_of_date, doc.duplicate_of)
            found.append(
                _exception(DOCUMENT_RECON, doc.discrepancy, [original, record], day, None, first)
            )
            # Once the original and its AP invoice leave the window, the copy is alone.
            alone = first + timedelta(days=LOOKBACK_DAYS + 1)
            found.append(
                _exception(
                    DOCUMENT_RECON, sample_documents.DOC_NOT_IN_AP, [record], alone, None, day
                )
            )
    for invoice_id in landed.without_document:
        record = _rid("ap_invoices", invoice_id)
        found.append(_exception(DOCUMENT_RECON, sample_documents.AP_WITHOUT_DOC, [record], day))
    return found


def _terms_exceptions(
    day: date,
    index: int,
    ap_rows: list[list[str]],
    contracts: list[sample_contracts.ContractDocument],
    contracts_landed: date,
    seed: int,
) -> list[_Exception]:
    """Seed a date's AP invoice due outside its vendor's contract terms (``contract_ap``,
    carried forward and ageing with the invoice); the exception it raises."""
    invoice_id = sample_contracts.seed_terms_discrepancy(day, index, ap_rows, contracts, seed)
    if invoice_id is None:
        return []
    vendor_id = next(r[2] for r in ap_rows if r[0] == invoice_id)
    contract = next(c for c in contracts if c.vendor_id == vendor_id)
    records = [
        _rid("ap_invoices", invoice_id),
        _rid(sample_contracts.SOURCE, contracts_landed.isoformat(), contract.file_name),
    ]
    kind = sample_contracts.AP_TERMS_OUTSIDE_CONTRACT
    return [_exception(CONTRACT_RECON, kind, records, day, None, day)]


@dataclass
class CloseAnswerKey:
    """What the close must conclude for one business date (docs/RECONCILIATIONS.md)."""

    business_date: str
    open: list[dict] = field(default_factory=list)
    closed: list[dict] = field(default_factory=list)
    quarantined: dict[str, dict[str, str]] = field(default_factory=dict)
    hr_cases: dict[str, dict[str, str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    # The invoice documents landed on the date, by file name: what each states, the AP invoice
    # it documents and the discrepancy seeded in it (sample/invoice_documents.py).
    invoice_documents: dict[str, dict] = field(default_factory=dict)
    # The contracts landed on the date, by file name: what each states
    # (sample/contract_documents.py).
    contract_documents: dict[str, dict] = field(default_factory=dict)


def _sort_key(item: dict) -> tuple:
    return (item["recon"], item["exception_type"], item["records"])


def _answer_key(
    day: date,
    exceptions: list[_Exception],
    quarantined: dict[str, dict[str, str]],
    hr_cases: dict[str, dict[str, str]],
    counts: dict[str, int],
) -> CloseAnswerKey:
    key = CloseAnswerKey(day.isoformat(), quarantined=quarantined, hr_cases=hr_cases, counts=counts)
    for e in exceptions:
        item = {"recon": e.recon, "exception_type": e.exception_type, "records": list(e.records)}
        if not e.carried:
            if e.opened == day:
                key.open.append(item)
            continue
        aged_out = (e.first_seen or e.opened) + timedelta(days=LOOKBACK_DAYS + 1)
        closes, resolution = (e.closes, "matched") if e.closes else (aged_out, "aged_out")
        if e.opened <= day < closes:
            key.open.append(item)
        elif day == closes:
            key.closed.append({**item, "resolution": resolution})
    key.open.sort(key=_sort_key)
    key.closed.sort(key=_sort_key)
    return key


# --- finance: GL, bank, AP ----------------------------------------------------------------------


class _Ledger:
    """GL, bank and AP rows per landing date, and the exceptions they are seeded to raise."""

    def __init__(self, days: list[date]) -> None:
        self.days = set(days)
        self.gl: dict[date, list[list[str]]] = {d: [] for d in days}
        self.bank: dict[date, list[tuple]] = {d: [] for d in days}
        self.invoices: dict[date, list[list[str]]] = {d: [] for d in days}
        self.payments: dict[date, list[list[str]]] = {d: [] for d in days}
        self.quarantined: dict[date, dict[str, str]] = {d: {} for d in days}
        self.exceptions: list[_Exception] = []
        self._used: dict[str, set[int]] = {e: set() for e in LEGAL_ENTITIES}
        self._journal_seq: dict[date, int] = {}
        self._bank_seq: dict[tuple[date, str], int] = {}
        self._seq: dict[str, int] = {"invoice": 200_000, "backlog": 100_000, "payment": 0, "ref": 0}

    # amounts: unique per entity over the window, so nothing pairs by amount by accident
    def alloc(self, rng: random.Random, entity: str, low: float, high: float) -> int:
        used = self._used[entity]
        while True:
            cents = rng.randint(round(low * 100), round(high * 100))
            if cents not in used:
                used.add(cents)
                return cents

    def reserve(self, entity: str, cents: int) -> bool:
        used = self._used[entity]
        if abs(cents) in used:
            return False
        used.add(abs(cents))
        return True

    def late_pair(
        self,
        recon: str,
        kinds: tuple[str, str],
        older: list[str],
        day: date,
        newer: list[str],
        lands: date,
    ) -> None:
        """A pair split over two dates: the older side is open until the newer lands; when the
        older side leaves the window, the newer one is alone until it leaves too."""
        self.exceptions.append(_exception(recon, kinds[0], older, day, lands))
        if newer:
            alone = day + timedelta(days=LOOKBACK_DAYS + 1)
            self.exceptions.append(_exception(recon, kinds[1], newer, alone, first_seen=lands))

    def next_id(self, kind: str) -> int:
        self._seq[kind] += 1
        return self._seq[kind]

    def journal(
        self,
        day: date,
        entity: str,
        lines: list[tuple[str, int]],
        source: str,
        reference: str | None,
        description: str,
    ) -> list[str]:
        """Post a journal (account, signed cents: debit > 0) on ``day``; its lines' record ids."""
        if day not in self.days:
            return []
        seq = self._journal_seq.get(day, 0) + 1
        self._journal_seq[day] = seq
        journal_id = f"JE-{day:%Y%m%d}-{seq:06d}"
        currency = LEGAL_ENTITIES[entity].currency
        rows = self.gl[day]
        ids = []
        for n, (account, cents) in enumerate(lines, start=1):
            cc = "" if account < "5000" else _COST_CENTRES[(seq + n) % len(_COST_CENTRES)]
            debit, credit = (cents, 0) if cents >= 0 else (0, -cents)
            rows.append(
                [
                    journal_id,
                    str(n),
                    entity,
                    day.isoformat(),
                    account,
                    cc,
                    _money(debit),
                    _money(credit),
                    currency,
                    description,
                    source,
                    reference or "",
                ]
            )
            ids.append(_rid("gl_journal_lines", journal_id, n))
        return ids

    def bank_line(
        self,
        day: date,
        entity: str,
        cents: int,
        reference: str | None,
        counterparty: str,
        narrative: str,
    ) -> str | None:
        """A statement line of ``entity``'s account valued (and landing) on ``day``."""
        if day not in self.days:
            return None
        account = _ENTITY_OF_ACCOUNT[entity]
        seq = self._bank_seq.get((day, account), 0) + 1
        self._bank_seq[(day, account)] = seq
        line_id = f"BSL-{day:%Y%m%d}-{seq:04d}"
        currency = LEGAL_ENTITIES[entity].currency
        self.bank[day].append(
            (account, line_id, day, cents, currency, counterparty, reference, narrative)
        )
        return _rid("bank_statement_lines", account, line_id)

    def receipt(
        self, day: date, entity: str, cents: int, reference: str | None, customer: str
    ) -> list[str]:
        """A customer receipt posted by AR: debit cash, credit receivables."""
        return self.journal(
            day,
            entity,
            [(CASH_ACCOUNT, cents), (AR_ACCOUNT, -cents)],
            "AR",
            reference,
            f"Receipt from {customer}",
        )

    def invoice(
        self, day: date, entity: str, invoice_id: str, vendor: tuple, cents: int, rng: random.Random
    ) -> str:
        vendor_id, vendor_name, _ = vendor
        due = day + timedelta(days=rng.choice([14, 30, 30, 45]))
        self.invoices[day].append(
            [
                invoice_id,
                entity,
                vendor_id,
                vendor_name,
                day.isoformat(),
                due.isoformat(),
                _money(cents),
                LEGAL_ENTITIES[entity].currency,
                f"{vendor_name} services {day:%B %Y}",
                f"PO-{rng.randint(10000, 99999)}" if rng.random() < 0.7 else "",
                "open",
            ]
        )
        return _rid("ap_invoices", invoice_id)

    def post_invoice(
        self, day: date, entity: str, invoice_id: str, vendor: tuple, cents: int
    ) -> list[str]:
        """The AP journal of an invoice: debit the vendor's expense account, credit AP control."""
        return self.journal(
            day,
            entity,
            [(vendor[2], cents), (GL_AP_CONTROL_ACCOUNT, -cents)],
            AP_SOURCE_SYSTEM,
            invoice_id,
            f"Invoice {invoice_id} {vendor[1]}",
        )

    def payment(
        self, day: date, entity: str, invoice_id: str, vendor: tuple, cents: int, partial: bool
    ) -> None:
        """An AP payment with its GL journal (debit AP control, credit cash) and bank line."""
        if day not in self.days:
            return
        payment_id = f"PMT-{self.next_id('payment'):06d}"
        vendor_id, vendor_name, _ = vendor
        self.payments[day].append(
            [
                payment_id,
                invoice_id,
                entity,
                vendor_id,
                vendor_name,
                day.isoformat(),
                _money(cents),
                LEGAL_ENTITIES[entity].currency,
                ("Partial payment of " if partial else "Payment of ") + invoice_id,
                "released",
            ]
        )
        self.journal(
            day,
            entity,
            [(GL_AP_CONTROL_ACCOUNT, cents), (CASH_ACCOUNT, -cents)],
            AP_SOURCE_SYSTEM,
            payment_id,
            f"Payment {payment_id} to {vendor_name}",
        )
        self.bank_line(day, entity, -cents, payment_id, vendor_name, f"SEPA/ACH {payment_id}")

    def split(self, rng: random.Random, entity: str, total: int) -> tuple[int, int]:
        """Two unique parts of ``total`` (a partial payment and its remainder)."""
        while True:
            first = rng.randint(total // 4, 3 * total // 4)
            if self.reserve(entity, first):
                if self.reserve(entity, total - first):
                    return first, total - first
                self._used[entity].discard(first)


_GL_THEN_BANK = ("GL_NOT_IN_BANK", "BANK_NOT_IN_GL")


def _next_weekday(day: date, any_day: bool = False) -> date:
    while not any_day and day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _ref(ledger: _Ledger, prefix: str, day: date) -> str:
    return f"{prefix}-{day:%Y%m%d}-{ledger.next_id('ref'):05d}"


def _plan_flows(ledger: _Ledger, rng: random.Random, day: date, lines: int, any_day: bool) -> None:
    """Ordinary activity of one day (matches cleanly): receipts, AP invoices and payments."""
    n_receipts = max(2, lines // 60)
    n_invoices = max(2, lines // 100)
    n_backlog = max(1, lines // 200)
    for entity in LEGAL_ENTITIES:
        for _ in range(n_receipts):
            cents = ledger.alloc(rng, entity, 100, 95_000)
            reference = _ref(ledger, "RCPT", day)
            customer = rng.choice(_CUSTOMERS)
            ledger.receipt(day, entity, cents, reference, customer)
            ledger.bank_line(
                day, entity, cents, reference, customer, f"Credit transfer {reference}"
            )
        if rng.random() < 0.6:  # one bank line settles 2-3 postings
            reference = _ref(ledger, "LBX", day)
            while True:
                parts = [ledger.alloc(rng, entity, 100, 20_000) for _ in range(rng.randint(2, 3))]
                if ledger.reserve(entity, sum(parts)):
                    break
            customer = rng.choice(_CUSTOMERS)
            for part in parts:
                ledger.receipt(day, entity, part, reference, customer)
            ledger.bank_line(day, entity, sum(parts), reference, "Lockbox", f"Lockbox {reference}")
        if rng.random() < 0.6:  # two bank lines for one posting
            reference = _ref(ledger, "RCPT", day)
            while True:
                parts = [ledger.alloc(rng, entity, 100, 20_000) for _ in range(2)]
                if ledger.reserve(entity, sum(parts)):
                    break
            customer = rng.choice(_CUSTOMERS)
            ledger.receipt(day, entity, sum(parts), reference, customer)
            for part in parts:
                ledger.bank_line(day, entity, part, reference, customer, f"Instalment {reference}")
        for _ in range(rng.randint(1, 2)):  # no reference: matched by amount and date
            cents = ledger.alloc(rng, entity, 20, 5_000) * rng.choice([1, -1])
            lag = rng.choice([0, 0, 0, 1, 2])
            lands = day + timedelta(days=lag)
            if not any_day and lands.weekday() >= 5:
                lag, lands = 0, day
            text = "Card settlement" if cents < 0 else "Interest received"
            counter = rng.choice(_EXPENSE_ACCOUNTS) if cents < 0 else "7900"
            ids = ledger.journal(
                day, entity, [(CASH_ACCOUNT, cents), (counter, -cents)], "GL", None, text
            )
            bank = ledger.bank_line(lands, entity, cents, None, "Bank", text)
            if lag:
                newer = [bank] if bank else []
                ledger.late_pair("bank_gl", _GL_THEN_BANK, ids[:1], day, newer, lands)
        for _ in range(n_invoices):
            vendor = rng.choice(_VENDORS)
            cents = ledger.alloc(rng, entity, 200, 60_000)
            invoice_id = f"INV-{ledger.next_id('invoice'):06d}"
            ledger.invoice(day, entity, invoice_id, vendor, cents, rng)
            ledger.post_invoice(day, entity, invoice_id, vendor, cents)
            _plan_payments(ledger, rng, day, entity, invoice_id, vendor, cents, any_day)
        for _ in range(n_backlog):  # invoices entered before the window, paid now
            vendor = rng.choice(_VENDORS)
            invoice_id = f"INV-{ledger.next_id('backlog'):06d}"
            if rng.random() < 0.2:
                total = ledger.alloc(rng, entity, 400, 60_000)
                for part in ledger.split(rng, entity, total):
                    ledger.payment(day, entity, invoice_id, vendor, part, True)
            else:
                cents = ledger.alloc(rng, entity, 200, 60_000)
                ledger.payment(day, entity, invoice_id, vendor, cents, False)


def _plan_payments(
    ledger: _Ledger,
    rng: random.Random,
    day: date,
    entity: str,
    invoice_id: str,
    vendor: tuple,
    cents: int,
    any_day: bool,
) -> None:
    pay_day = _next_weekday(day + timedelta(days=rng.randint(3, 12)), any_day)
    if rng.random() < 0.15:  # partial payments: two payments for one invoice
        first, second = ledger.split(rng, entity, cents)
        ledger.payment(pay_day, entity, invoice_id, vendor, first, True)
        later = _next_weekday(pay_day + timedelta(days=rng.randint(0, 5)), any_day)
        ledger.payment(later, entity, invoice_id, vendor, second, True)
    else:
        ledger.payment(pay_day, entity, invoice_id, vendor, cents, False)


def _plan_anomaly(ledger: _Ledger, rng: random.Random, day: date, kind: str, any_day: bool) -> None:
    """Seed one anomaly on ``day`` and record the exception(s) it must raise."""
    entity = rng.choice(["GB01", "DE01"] if kind == "fx_error" else list(LEGAL_ENTITIES))
    customer = rng.choice(_CUSTOMERS)
    if kind == "timing":  # GL on D, bank on D+1 or D+2
        lags = [k for k in (1, 2) if any_day or (day + timedelta(days=k)).weekday() < 5]
        if not lags:
            return
        lands = day + timedelta(days=rng.choice(lags))
        cents = ledger.alloc(rng, entity, 500, 80_000)
        reference = _ref(ledger, "RCPT", day)
        ids = ledger.receipt(day, entity, cents, reference, customer)
        bank = ledger.bank_line(
            lands, entity, cents, reference, customer, f"Credit transfer {reference}"
        )
        newer = [bank] if bank else []
        ledger.late_pair("bank_gl", _GL_THEN_BANK, ids[:1], day, newer, lands)
    elif kind == "missing_posting":  # a bank charge nobody posted
        cents = ledger.alloc(rng, entity, 5, 250)
        reference = _ref(ledger, "FEE", day) if rng.random() < 0.5 else None
        record = ledger.bank_line(day, entity, -cents, reference, "Bank", "Account service charge")
        ledger.exceptions.append(_exception("bank_gl", "BANK_NOT_IN_GL", [record], day))
    elif kind == "fx_error":  # posted at the wrong currency's rate
        other = "EUR" if entity == "GB01" else "GBP"
        own = LEGAL_ENTITIES[entity].currency
        factor = FX_BASE_RATES[own] / FX_BASE_RATES[other]
        while True:
            cents = ledger.alloc(rng, entity, 1_000, 50_000)
            wrong = round(cents * factor)
            if ledger.reserve(entity, wrong):
                break
        reference = _ref(ledger, "RCPT", day)
        bank = ledger.bank_line(day, entity, cents, reference, customer, f"Transfer {reference}")
        ids = ledger.receipt(day, entity, wrong, reference, customer)
        ledger.exceptions.append(_exception("bank_gl", "AMOUNT_MISMATCH", [bank, ids[0]], day))
    elif kind == "duplicate_posting":  # one receipt posted by two journals
        cents = ledger.alloc(rng, entity, 500, 50_000)
        reference = _ref(ledger, "RCPT", day)
        bank = ledger.bank_line(day, entity, cents, reference, customer, f"Transfer {reference}")
        first = ledger.receipt(day, entity, cents, reference, customer)
        second = ledger.receipt(day, entity, cents, reference, customer)
        records = [bank, first[0], second[0]]
        ledger.exceptions.append(_exception("bank_gl", "AMOUNT_MISMATCH", records, day))
    elif kind == "never_clears":  # a cheque that is never presented
        cents = ledger.alloc(rng, entity, 200, 9_000)
        reference = f"CHQ-{ledger.next_id('ref'):06d}"
        ids = ledger.journal(
            day,
            entity,
            [(rng.choice(_EXPENSE_ACCOUNTS), cents), (CASH_ACCOUNT, -cents)],
            "GL",
            reference,
            f"Cheque {reference}",
        )
        ledger.exceptions.append(_exception("bank_gl", "GL_NOT_IN_BANK", ids[1:], day))
    elif kind in ("ap_unposted", "ap_late", "ap_amount_mismatch"):
        vendor = rng.choice(_VENDORS)
        cents = ledger.alloc(rng, entity, 200, 40_000)
        invoice_id = f"INV-{ledger.next_id('invoice'):06d}"
        record = ledger.invoice(day, entity, invoice_id, vendor, cents, rng)
        if kind == "ap_unposted":
            ledger.exceptions.append(_exception("ap_gl", "AP_NOT_IN_GL", [record], day))
        elif kind == "ap_late":
            late = day + timedelta(days=1)
            if not any_day and late.weekday() >= 5:
                ledger.post_invoice(day, entity, invoice_id, vendor, cents)  # not late after all
                return
            ids = ledger.post_invoice(late, entity, invoice_id, vendor, cents)
            kinds = ("AP_NOT_IN_GL", "GL_NOT_IN_AP")
            ledger.late_pair("ap_gl", kinds, [record], day, ids[1:], late)
            _plan_payments(ledger, rng, late, entity, invoice_id, vendor, cents, any_day)
        else:
            posted = cents + rng.choice([-1, 1]) * rng.randint(1_000, cents // 5 + 1_000)
            ids = ledger.post_invoice(day, entity, invoice_id, vendor, posted)
            records = [record, ids[1]]
            ledger.exceptions.append(_exception("ap_gl", "AMOUNT_MISMATCH", records, day))
    elif kind == "manual_ap_journal":  # a manual accrual on the AP control account, no document
        first, second = rng.randint(10_000, 500_000), rng.randint(10_000, 500_000)
        referenced = rng.random() < 0.3
        reference = _ref(ledger, "ADJ", day) if referenced else None
        ids = ledger.journal(
            day,
            entity,
            [
                (rng.choice(_EXPENSE_ACCOUNTS), first + second),
                (GL_AP_CONTROL_ACCOUNT, -first),
                (GL_AP_CONTROL_ACCOUNT, -second),
            ],
            "GL",
            reference,
            "Manual accrual, no invoice yet",
        )
        groups = [ids[1:]] if referenced else [[i] for i in ids[1:]]
        for group in groups:
            ledger.exceptions.append(_exception("ap_gl", "GL_NOT_IN_AP", group, day))


def _plan_unbalanced(ledger: _Ledger, rng: random.Random, day: date) -> None:
    entity = rng.choice(list(LEGAL_ENTITIES))
    cents = rng.randint(10_000, 900_000)
    off = rng.randint(1, 5_000)
    accounts = rng.sample(_FILLER_ACCOUNTS, 3)
    ids = ledger.journal(
        day,
        entity,
        [
            (accounts[0], cents),
            (accounts[1], -(cents // 2)),
            (accounts[2], -(cents - cents // 2) + off),
        ],
        "GL",
        None,
        "Reclass (keyed by hand)",
    )
    for record in ids:
        ledger.quarantined[day][record.split(":", 1)[1]] = "UNBALANCED_JOURNAL"


def _fill(ledger: _Ledger, rng: random.Random, day: date, target: int, accrual: bool) -> None:
    """Balanced filler journals (no cash, no AP control) until ``day`` has ``target`` lines.

    Written for speed (a benchmark asks for a million lines): plain floats from ``rng.random``.
    """
    rows = ledger.gl[day]
    remaining = target - len(rows)
    if remaining < 2:
        return
    # (entity, currency) by weight: US01 half the journals, the others a quarter each
    entities = [(e, LEGAL_ENTITIES[e].currency) for e in LEGAL_ENTITIES]
    entities = [entities[0], *entities]
    accounts = [(a, a >= "5000") for a in _FILLER_ACCOUNTS]
    n_accounts, n_entities, n_cc = len(accounts), len(entities), len(_COST_CENTRES)
    iso = day.isoformat()
    prefix = f"JE-{day:%Y%m%d}-"
    seq = ledger._journal_seq.get(day, 0)
    random_ = rng.random
    append = rows.append
    while remaining >= 2:
        n = min(int(random_() * 5) + 2, remaining)
        if remaining - n == 1:
            n += 1
        remaining -= n
        seq += 1
        journal_id = f"{prefix}{seq:06d}"
        entity, currency = entities[int(random_() * n_entities)]
        text = "Month-end accrual" if accrual else _FILLER_TEXT[seq % len(_FILLER_TEXT)]
        signed = [int(random_() * 5_000_000) - 2_500_000 or 1 for _ in range(n - 1)]
        last = -sum(signed)
        if last == 0:
            signed[0] += 1
            last = -1
        signed.append(last)
        for number, cents in enumerate(signed, start=1):
            account, has_cc = accounts[int(random_() * n_accounts)]
            cc = _COST_CENTRES[int(random_() * n_cc)] if has_cc else ""
            if cents > 0:
                debit, credit = f"{cents // 100}.{cents % 100:02d}", "0.00"
            else:
                debit, credit = "0.00", f"{-cents // 100}.{-cents % 100:02d}"
            append(
                (
                    journal_id,
                    str(number),
                    entity,
                    iso,
                    account,
                    cc,
                    debit,
                    credit,
                    currency,
                    text,
                    "GL",
                    "",
                )
            )
    ledger._journal_seq[day] = seq


def _plan_finance(
    days: list[date], lines: int, seed: int, any_day: bool = False, month_end: bool = True
) -> _Ledger:
    """Every GL, bank and AP row of ``days`` with the exceptions seeded among them."""
    ledger = _Ledger(days)
    active = [d for d in days if any_day or d.weekday() < 5]
    for index, day in enumerate(active):
        rng = random.Random(f"{seed}:finance:{day.isoformat()}")
        spike = month_end and day == _last_business_day(day)
        target = lines * 3 if spike else lines
        _plan_flows(ledger, rng, day, lines, any_day)
        kinds = {BANK_GL_ANOMALIES[index % 5], AP_GL_ANOMALIES[index % 4]}
        kinds |= {k for k in BANK_GL_ANOMALIES + AP_GL_ANOMALIES if rng.random() < 0.15}
        for kind in [k for k in BANK_GL_ANOMALIES + AP_GL_ANOMALIES if k in kinds]:
            _plan_anomaly(ledger, rng, day, kind, any_day)
        if index % 5 == 2 or rng.random() < 0.1:
            _plan_unbalanced(ledger, rng, day)
        _fill(ledger, rng, day, target, accrual=spike)
    return ledger


# --- HR: roster, payroll, cases -----------------------------------------------------------------


@dataclass
class _Employee:
    employee_id: str
    name: str
    email: str
    phone: str
    legal_entity: str
    department: str
    title: str
    location: str
    hire_date: date
    manager_id: str
    salary_cents: int
    termination_date: date | None = None
    on_leave: bool = False
    transfer: tuple[date, str] | None = None  # (effective date, new department)

    def status(self, day: date) -> str:
        if self.termination_date and self.termination_date <= day:
            return "terminated"
        return "leave" if self.on_leave else "active"

    def department_on(self, day: date) -> str:
        if self.transfer and self.transfer[0] <= day:
            return self.transfer[1]
        return self.department

    def snapshot(self, day: date) -> dict[str, str] | None:
        """The HRIS row as of ``day`` (None before the hire date)."""
        if self.hire_date > day:
            return None
        department = self.department_on(day)
        status = self.status(day)
        return {
            "employee_id": self.employee_id,
            "name": self.name,
            "email": self.email,
            "legal_entity": self.legal_entity,
            "department": department,
            "cost_centre": f"{self.legal_entity}-{_DEPARTMENTS[department][0]}",
            "title": self.title,
            "location": self.location,
            "hire_date": self.hire_date.isoformat(),
            "termination_date": self.termination_date.isoformat() if status == "terminated" else "",
            "status": status,
            "manager_id": self.manager_id,
            "annual_salary": _money(self.salary_cents),
            "currency": LEGAL_ENTITIES[self.legal_entity].currency,
        }


def _period_ends(start: date, end: date) -> list[date]:
    return [d for d in _dates(start, end) if pay_period(d)]


def build_roster(seed: int, employees: int, start: date, end: date) -> list["_Employee"]:
    """``employees`` people with hires, terminations and transfers inside ``[start, end]``."""
    rng = random.Random(f"{seed}:roster")
    people: list[_Employee] = []
    emails: set[str] = set()
    departments = list(_DEPARTMENTS)
    for n in range(1, employees + 1):
        entity = rng.choices(list(LEGAL_ENTITIES), [0.5, 0.3, 0.2])[0]
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first}.{last}".lower()
        suffix = 1
        while f"{email}@{_EMAIL_DOMAIN[entity]}" in emails:
            suffix += 1
            email = f"{first}.{last}{suffix}".lower()
        email = f"{email}@{_EMAIL_DOMAIN[entity]}"
        emails.add(email)
        department = rng.choice(departments)
        low, high = _SALARY_RANGE[entity]
        people.append(
            _Employee(
                employee_id=f"EMP-{n:04d}",
                name=f"{first} {last}",
                email=email,
                phone=f"{_PHONE_PREFIX[entity]}{rng.randint(100, 999)}",
                legal_entity=entity,
                department=department,
                title=rng.choice(_DEPARTMENTS[department][1]),
                location=rng.choice(_LOCATIONS[entity]),
                hire_date=start - timedelta(days=rng.randint(60, 3650)),
                manager_id=f"EMP-{rng.randint(1, min(20, employees)):04d}" if n > 20 else "",
                salary_cents=rng.randint(low // 500, high // 500) * 500 * 100,
            )
        )
    ordinary = list(people[20:] if employees > 40 else people[1:])
    rng.shuffle(ordinary)
    n_events = max(2, employees // 100)
    hires, ordinary = ordinary[:n_events], ordinary[n_events:]
    span = (end - start).days
    for person in hires:
        person.hire_date = start + timedelta(days=rng.randint(0, span))
    leavers, ordinary = ordinary[: max(2, employees // 25)], ordinary[max(2, employees // 25) :]
    for person in leavers:  # terminated at a period end before the window
        ends = _period_ends(start - timedelta(days=300), start - timedelta(days=1))
        person.termination_date = rng.choice(ends)
        person.hire_date = min(person.hire_date, person.termination_date - timedelta(days=90))
    in_window_ends = _period_ends(start, end)
    if in_window_ends:
        quitters, ordinary = ordinary[:n_events], ordinary[n_events:]
        for person in quitters:
            person.termination_date = rng.choice(in_window_ends)
    on_leave, ordinary = ordinary[: max(1, employees // 40)], ordinary[max(1, employees // 40) :]
    for person in on_leave:
        person.on_leave = True
    if span:
        movers, ordinary = ordinary[:n_events], ordinary[n_events:]
        for person in movers:
            moved_to = rng.choice([d for d in departments if d != person.department])
            person.transfer = (start + timedelta(days=rng.randint(1, span)), moved_to)
    return people


def _plain(people: list[_Employee], day: date) -> list[_Employee]:
    """Employees with no event anywhere near ``day``: active, not new, not leaving."""
    return [
        p
        for p in people
        if p.status(day) == "active"
        and p.termination_date is None
        and p.transfer is None
        and p.hire_date < day - timedelta(days=31)
    ]


def _pay_row(
    payment_id: str, period: tuple[date, date], employee_id: str, entity: str, gross: int
) -> dict[str, str]:
    taxes = _half_up(gross * 22, 100)
    deductions = _half_up(gross * 5, 100)
    return {
        "payment_id": payment_id,
        "pay_period_start": period[0].isoformat(),
        "pay_period_end": period[1].isoformat(),
        "employee_id": employee_id,
        "legal_entity": entity,
        "gross": _money(gross),
        "taxes": _money(taxes),
        "deductions": _money(deductions),
        "net": _money(gross - taxes - deductions),
        "currency": LEGAL_ENTITIES[entity].currency,
        "pay_date": period[1].isoformat(),
    }


def _payroll(
    people: list[_Employee], day: date, seed: int
) -> tuple[list[dict[str, str]], list[_Exception]]:
    """The pay run of ``day`` (a pay date) with its seeded anomalies."""
    period = pay_period(day)
    assert period is not None
    rng = random.Random(f"{seed}:payroll:{day.isoformat()}")
    plain = _plain(people, day)
    rng.shuffle(plain)
    missed, variance, duplicate = [*plain, None, None, None][:3]  # a tiny roster skips some
    gone = [p for p in people if p.termination_date and p.termination_date < period[0]]
    paid_after = rng.choice(gone) if gone else None
    rows: list[dict[str, str]] = []
    exceptions: list[_Exception] = []

    def pay(employee_id: str, entity: str, gross: int) -> str:
        payment_id = f"PAY-{day:%Y%m%d}-{len(rows) + 1:05d}"
        rows.append(_pay_row(payment_id, period, employee_id, entity, gross))
        return _rid("payroll_register", payment_id)

    def normal_gross(person: _Employee) -> int:
        return round(person.salary_cents * rng.uniform(0.98, 1.02) / 24)

    for person in people:
        if person.hire_date > day or person is missed:
            continue
        if person.termination_date and person.termination_date < period[0]:
            if person is paid_after:
                record = pay(person.employee_id, person.legal_entity, normal_gross(person))
                exceptions.append(_exception("payroll_hris", "PAID_NOT_ACTIVE", [record], day))
            continue
        if person is variance:
            factor = rng.choice([1.6, 0.5])
            gross = round(person.salary_cents * factor / 24)
            record = pay(person.employee_id, person.legal_entity, gross)
            exceptions.append(_exception("payroll_hris", "PAY_VARIANCE", [record], day))
        else:
            pay(person.employee_id, person.legal_entity, normal_gross(person))
    if missed:
        record = _rid("hris_roster", missed.employee_id)
        exceptions.append(_exception("payroll_hris", "ACTIVE_NOT_PAID", [record], day))
    if duplicate:
        first = next(r for r in rows if r["employee_id"] == duplicate.employee_id)
        second = pay(duplicate.employee_id, duplicate.legal_entity, normal_gross(duplicate))
        records = [_rid("payroll_register", first["payment_id"]), second]
        exceptions.append(_exception("payroll_hris", "DUPLICATE_PAYMENT", records, day))
    entity = rng.choice(list(LEGAL_ENTITIES))
    ghost = f"EMP-{len(people) + 101 + rng.randint(0, 800):04d}"
    low, high = _SALARY_RANGE[entity]
    record = pay(ghost, entity, rng.randint(low, high) * 100 // 24)
    exceptions.append(_exception("payroll_hris", "PAID_UNKNOWN_EMPLOYEE", [record], day))
    return rows, exceptions


_CASES: dict[str, tuple[list[str], list[str], list[str]]] = {
    # case type: (subjects, descriptions, urgencies it can have)
    "payroll_query": (
        ["Question about my payslip", "Overtime missing from last pay"],
        [
            "Hi, this is {name} ({email}). My last payslip looks short; my salary is {salary} "
            "a year but the net pay does not add up. Could payroll check it?",
            "{name} here, {email}. The overtime I worked in {month} is not on my payslip.{phone}",
        ],
        ["medium", "medium", "high"],
    ),
    "leave_request": (
        ["Annual leave request", "Parental leave"],
        [
            "Hello, I ({name}, {email}) would like to book annual leave from the 2nd to the 9th "
            "of next month. My manager has agreed.",
            "This is {name}. We are expecting a baby and I would like to plan parental leave. "
            "Please reply to {email}.{phone}",
        ],
        ["low", "low", "medium"],
    ),
    "benefits": (
        ["Dental plan enrolment", "Pension contribution change"],
        [
            "Hi HR, {name} ({email}) here. How do I add my partner to the dental plan?",
            "I'd like to raise my pension contribution to 8%. My salary is {salary}. {name}",
        ],
        ["low"],
    ),
    "harassment_complaint": (
        ["Confidential: conduct of a colleague", "Complaint about behaviour in meetings"],
        [
            "I, {name} ({email}), want to report repeated inappropriate comments from a "
            "colleague in our team meetings. I would prefer to discuss this in person.{phone}",
            "This is {name}. A senior colleague has made me feel unsafe on several occasions. "
            "Please contact me privately at {email}.",
        ],
        ["high"],
    ),
    "relocation": (
        ["Relocation to {city}", "Moving to the {city} office"],
        [
            "Hi, {name} ({email}). I have been offered a role in {city} and would like to know "
            "what relocation support is available.",
            "{name} here: my family is moving to {city}; can I transfer there? Reach me at "
            "{email}.{phone}",
        ],
        ["low", "medium"],
    ),
    "performance": (
        ["Disagreement with my review", "Performance improvement plan"],
        [
            "Hello, I'm {name} ({email}). I do not agree with the rating in my annual review "
            "and would like a second opinion.",
            "{name}: I was put on a performance plan without warning. Please call me.{phone}",
        ],
        ["low", "medium", "medium"],
    ),
    "resignation": (
        ["Resignation", "Notice of resignation"],
        [
            "Dear HR, please accept this as my formal resignation. My last day will be in four "
            "weeks. Kind regards, {name} ({email}).",
            "I ({name}) have accepted another offer and am resigning; salary there is higher "
            "than my {salary}. Contact: {email}.{phone}",
        ],
        ["medium", "high"],
    ),
}


def _hr_cases(
    people: list[_Employee], day: date, seed: int
) -> tuple[list[dict[str, str | None]], dict[str, dict[str, str]]]:
    rng = random.Random(f"{seed}:hr_cases:{day.isoformat()}")
    staff = [p for p in people if p.snapshot(day) and p.status(day) != "terminated"]
    rows: list[dict[str, str | None]] = []
    truth: dict[str, dict[str, str]] = {}
    for n in range(1, rng.randint(2, 5) + 1 if staff else 1):
        person = rng.choice(staff)
        case_type = rng.choice(HR_CASE_TYPES)
        subjects, texts, urgencies = _CASES[case_type]
        values = {
            "name": person.name,
            "email": person.email,
            "salary": f"{LEGAL_ENTITIES[person.legal_entity].currency} "
            f"{person.salary_cents // 100:,}",
            "phone": f" You can call me on {person.phone}." if rng.random() < 0.5 else "",
            "month": f"{day:%B}",
            "city": rng.choice(["Austin", "London", "Berlin", "Chicago", "Munich"]),
        }
        case_id = f"HRC-{day:%Y%m%d}-{n:03d}"
        opened = f"{day.isoformat()}T{rng.randint(7, 18):02d}:{rng.randint(0, 59):02d}:00Z"
        rows.append(
            {
                "case_id": case_id,
                "opened_at": opened,
                "employee_id": person.employee_id,
                "channel": rng.choice(["email", "portal", "phone"]),
                "subject": rng.choice(subjects).format(**values),
                "description": rng.choice(texts).format(**values),
            }
        )
        truth[case_id] = {"case_type": case_type, "urgency": rng.choice(urgencies)}
    return rows, truth


# --- expenses -----------------------------------------------------------------------------------


def _good_claims(day: sample_data.ExpenseDay) -> list[dict]:
    """Valid, unique claims of a generated day (candidates to duplicate)."""
    valid = set(day.key.valid_keys)
    resent = {k.split("#")[0] for k in day.key.quarantined if k.endswith("#dup")}
    return [
        r
        for r in day.lines
        if isinstance(r, dict)
        and f"{r['report_id']}|{r['line_id']}" in valid
        and f"{r['report_id']}|{r['line_id']}" not in resent
    ]


class _Claims:
    """Adds anomalous claims to a generated expense day and records what they must raise."""

    def __init__(self, day: sample_data.ExpenseDay, employees: list[str], rng: random.Random):
        self.day, self.employees, self.rng = day, employees, rng
        self.date = day.business_date
        self.report = 90_000
        self.exceptions: list[_Exception] = []

    def new_report(self) -> str:
        self.report += 1
        return f"ER-{self.date:%Y%m%d}-{self.report:05d}"

    def employee(self, merchant: str, tx_date: date) -> str:
        while True:
            employee = self.rng.choice(self.employees)
            key = (employee, merchant, tx_date.isoformat())
            if key not in self.day.used:
                self.day.used.add(key)
                return employee

    def add(self, row: dict, category: str) -> str:
        self.day.lines.append(row)
        key = f"{row['report_id']}|{row['line_id']}"
        self.day.key.valid_keys.append(key)
        self.day.key.categories[key] = category
        return _rid("expense_lines", key)

    def claim(
        self,
        report: str,
        line: int,
        employee: str,
        merchant: str,
        tx_date: date,
        usd: float,
        category: str,
        text: str,
        currency: str = "USD",
    ) -> dict:
        cents = lag_cents(round(usd * 100), (self.date - tx_date).days)
        return {
            "report_id": report,
            "line_id": str(line),
            "employee_id": employee,
            "transaction_date": tx_date.isoformat(),
            "merchant": merchant,
            "amount": _money(cents),
            "currency": currency,
            "claimed_category": category,
            "justification": text,
        }

    def weekday_before(self, max_lag: int = 5) -> date:
        options = [
            self.date - timedelta(days=k)
            for k in range(max_lag + 1)
            if (self.date - timedelta(days=k)).weekday() < 5
        ]
        return self.rng.choice(options)

    def merchant(self, weekday_ok: bool = True) -> tuple[str, str]:
        options = [m for m in _MERCHANTS if weekday_ok or m[1] not in WEEKDAY_ONLY_CATEGORIES]
        merchant, category, _, _ = self.rng.choice(options)
        return merchant, category

    def over_limit(self) -> None:
        merchant, category = self.merchant()
        tx_date = self.weekday_before()
        usd = CATEGORY_LIMITS_USD[category] * self.rng.uniform(1.15, 1.6)
        row = self.claim(
            self.new_report(),
            1,
            self.employee(merchant, tx_date),
            merchant,
            tx_date,
            usd,
            category,
            "Premium option booked at short notice for the board visit.",
        )
        self.exceptions.append(
            _exception("expense_policy", "OVER_LIMIT", [self.add(row, category)], self.date)
        )

    def weekend(self) -> None:
        options = [m for m in _MERCHANTS if m[1] in WEEKDAY_ONLY_CATEGORIES]
        merchant, category, _, _ = self.rng.choice(options)
        weekend = [
            self.date - timedelta(days=k)
            for k in range(8)
            if (self.date - timedelta(days=k)).weekday() >= 5
        ]
        tx_date = self.rng.choice(weekend)
        usd = CATEGORY_LIMITS_USD[category] * self.rng.uniform(0.1, 0.4)
        row = self.claim(
            self.new_report(),
            1,
            self.employee(merchant, tx_date),
            merchant,
            tx_date,
            usd,
            category,
            "Bought over the weekend to be ready for Monday.",
        )
        self.exceptions.append(
            _exception("expense_policy", "WEEKEND_EXPENSE", [self.add(row, category)], self.date)
        )

    def blocked(self) -> None:
        merchant = self.rng.choice(_BLOCKED_MERCHANTS)
        tx_date = self.date - timedelta(days=self.rng.randint(0, 6))
        usd = CATEGORY_LIMITS_USD["entertainment"] * self.rng.uniform(0.1, 0.5)
        row = self.claim(
            self.new_report(),
            1,
            self.employee(merchant, tx_date),
            merchant,
            tx_date,
            usd,
            "entertainment",
            "Client entertainment after the customer summit.",
        )
        self.exceptions.append(
            _exception(
                "expense_policy", "BLOCKED_MERCHANT", [self.add(row, "entertainment")], self.date
            )
        )

    def split(self) -> None:
        merchant, category = self.merchant(weekday_ok=False)
        tx_date = self.weekday_before()
        employee = self.employee(merchant, tx_date)
        report = self.new_report()
        parts = self.rng.choice([2, 3])
        share = (0.55, 0.8) if parts == 2 else (0.4, 0.6)
        limit = CATEGORY_LIMITS_USD[category]
        records = []
        amounts: set[str] = set()
        for line in range(1, parts + 1):
            while True:
                row = self.claim(
                    report,
                    line,
                    employee,
                    merchant,
                    tx_date,
                    limit * self.rng.uniform(*share),
                    category,
                    f"Part {line} of {parts} of the booking for the offsite.",
                )
                if row["amount"] not in amounts:
                    break
            amounts.add(row["amount"])
            records.append(self.add(row, category))
        self.exceptions.append(
            _exception("expense_policy", "SPLIT_TRANSACTION", records, self.date)
        )

    def duplicate(self, earlier: list[tuple[date, dict]], taken: set[str]) -> bool:
        """Claim again a claim of today or of an earlier day; False when none fits."""

        def fits(claimed_on: date, r: dict) -> bool:
            if f"{r['report_id']}|{r['line_id']}" in taken:
                return False
            if claimed_on == self.date:  # the pair together stays within the limit: no split
                usd = float(r["amount"]) * sample_data.max_rate_to_usd(r["currency"])
                return usd <= 0.4 * CATEGORY_LIMITS_USD[r["claimed_category"]]
            return (r["employee_id"], r["merchant"], r["transaction_date"]) not in self.day.used

        candidates = [(d, r) for d, r in earlier if fits(d, r)]
        if not candidates:
            return False
        _, original = self.rng.choice(candidates)
        row = {**original, "report_id": self.new_report(), "line_id": "1"}
        key = f"{original['report_id']}|{original['line_id']}"
        taken.add(key)
        self.day.used.add((row["employee_id"], row["merchant"], row["transaction_date"]))
        category = self.day.key.categories.get(key, row["claimed_category"])
        records = [_rid("expense_lines", key), self.add(row, category)]
        taken.add(records[1].split(":", 1)[1])
        self.exceptions.append(_exception("expense_policy", "DUPLICATE_CLAIM", records, self.date))
        return True

    def missing_rate(self) -> str:
        """A claim in the currency whose rate is missing today: quarantined, nothing else."""
        tx_date = self.weekday_before()
        row = self.claim(
            self.new_report(),
            1,
            self.employee("Pret A Manger", tx_date),
            "Pret A Manger",
            tx_date,
            123.45,
            "meals",
            "Lunch with the Stockholm auditors.",
            currency=MISSING_RATE_CURRENCY,
        )
        self.day.lines.append(row)
        key = f"{row['report_id']}|{row['line_id']}"
        self.day.key.quarantined[key] = "MISSING_FX_RATE"
        return key


def _expenses(
    day: date,
    index: int,
    rows: int,
    seed: int,
    employee_ids: list[str],
    history: dict[date, list[dict]],
    taken: set[str],
    missing_rate: bool,
) -> tuple[sample_data.ExpenseDay, list[_Exception], dict[str, str]]:
    expense_day = sample_data.build_day(day, rows, seed, employee_ids=employee_ids)
    history[day] = _good_claims(expense_day)
    claims = _Claims(expense_day, employee_ids, random.Random(f"{seed}:policy:{day.isoformat()}"))
    kinds = {POLICY_ANOMALIES[index % len(POLICY_ANOMALIES)]}
    kinds |= {k for k in POLICY_ANOMALIES if claims.rng.random() < 0.35}
    for kind in [k for k in POLICY_ANOMALIES if k in kinds]:
        if kind == "duplicate":
            previous = [
                (d, r)
                for d, claims_of_day in history.items()
                if day - timedelta(days=10) <= d < day
                for r in claims_of_day
            ]
            same_day = [(day, r) for r in history[day]]
            pool = previous if previous and claims.rng.random() < 0.5 else same_day
            claims.duplicate(pool, taken)
        else:
            getattr(claims, kind)()
    # The generator's bad rows keep their keys (``#dup`` marks the resent copy of a key).
    quarantined = dict(expense_day.key.quarantined)
    if missing_rate:
        key = claims.missing_rate()
        quarantined[key] = "MISSING_FX_RATE"
    return expense_day, claims.exceptions, quarantined


# --- writing ------------------------------------------------------------------------------------


def _landing(root: Path, source: str, day: date) -> Path:
    path = root / "landing" / source / f"business_date={day.isoformat()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_csv(root: Path, source: str, day: date, rows: list) -> int:
    columns = CONTRACTS[source].column_names
    with (_landing(root, source, day) / f"{source}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        if rows and isinstance(rows[0], dict):
            writer.writerows(rows)
        else:
            csv.writer(handle).writerows(rows)
    return len(rows)


def _write_jsonl(root: Path, source: str, day: date, rows: list[dict]) -> int:
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (_landing(root, source, day) / f"{source}.jsonl").write_text(lines)
    return len(rows)


BANK_SCHEMA = pa.schema(
    [
        pa.field("bank_account", pa.string()),
        pa.field("statement_line_id", pa.string()),
        pa.field("value_date", pa.date32()),
        pa.field("amount", pa.decimal128(18, 2)),
        pa.field("currency", pa.string()),
        pa.field("counterparty", pa.string()),
        pa.field("reference", pa.string()),
        pa.field("narrative", pa.string()),
    ]
)


def _write_bank(root: Path, day: date, rows: list[tuple]) -> int:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in BANK_SCHEMA]
    data = [list(c) for c in columns]
    if rows:
        data[3] = [Decimal(c).scaleb(-2) for c in data[3]]
    table = pa.Table.from_arrays(
        [pa.array(values, type=f.type) for values, f in zip(data, BANK_SCHEMA, strict=True)],
        schema=BANK_SCHEMA,
    )
    source = "bank_statement_lines"
    pq.write_table(table, _landing(root, source, day) / f"{source}.parquet")
    return len(rows)


def _fx_rows(seed: int, day: date, omit: str | None) -> list[dict]:
    return [
        {
            "rate_date": day.isoformat(),
            "currency": currency,
            "rate_to_usd": fx_rate(seed, day, currency),
            "source": "ECB",
        }
        for currency in sorted(VALID_CURRENCIES)
        if currency != omit
    ]


def _write_finance(root: Path, ledger: _Ledger, day: date) -> dict[str, int]:
    return {
        "gl_journal_lines": _write_csv(root, "gl_journal_lines", day, ledger.gl[day]),
        "ap_invoices": _write_csv(root, "ap_invoices", day, ledger.invoices[day]),
        "ap_payments": _write_csv(root, "ap_payments", day, ledger.payments[day]),
        "bank_statement_lines": _write_bank(root, day, ledger.bank[day]),
    }


def _write_key(root: Path, key: CloseAnswerKey) -> None:
    key_dir = root / "answer_keys" / "close"
    key_dir.mkdir(parents=True, exist_ok=True)
    (key_dir / f"{key.business_date}.json").write_text(json.dumps(asdict(key), indent=1))


# --- public API ---------------------------------------------------------------------------------


def missing_rate_days(start: date, end: date, seed: int = 7) -> list[date]:
    """The dates whose fx_rates omit ``MISSING_RATE_CURRENCY`` (one in every 30 days)."""
    days = _dates(start, end)
    offset = random.Random(f"{seed}:missing_rate").randrange(min(30, len(days)))
    return [d for i, d in enumerate(days) if i % 30 == offset]


def generate_close(
    root: Path,
    start: date,
    end: date,
    *,
    seed: int = 7,
    gl_lines_per_day: int = 600,
    employees: int = 300,
    expense_rows: int = 200,
    with_documents: bool = True,
) -> list[CloseAnswerKey]:
    """Write every source's landing files and the close answer key for each date of the range.

    ``with_documents`` adds the invoice documents of each date's PO invoices
    (``sample/invoice_documents.py``), one of them scanned, with two seeded discrepancies; and
    the contracts of a few vendors on the first date, with an AP invoice due outside its
    vendor's terms on every other date (``sample/contract_documents.py``).
    """
    days = _dates(start, end)
    people = build_roster(seed, employees, start, end)
    ledger = _plan_finance(days, gl_lines_per_day, seed)
    no_rate = set(missing_rate_days(start, end, seed))
    history: dict[date, list[dict]] = {}
    taken: set[str] = set()
    exceptions = list(ledger.exceptions)
    per_day: list[tuple[date, dict, dict, dict]] = []
    documents: dict[date, dict[str, dict]] = {}
    documented: list = []  # earlier dates' documents, their date and bytes (a duplicate copies one)
    contracts: list[sample_contracts.ContractDocument] = []
    contract_keys: dict[date, dict[str, dict]] = {}
    for index, day in enumerate(days):
        counts = {source: 0 for source in CONTRACTS}
        quarantined: dict[str, dict[str, str]] = {}
        omit = MISSING_RATE_CURRENCY if day in no_rate else None
        counts["fx_rates"] = _write_jsonl(root, "fx_rates", day, _fx_rows(seed, day, omit))
        roster = [row for p in people if (row := p.snapshot(day))]
        counts["hris_roster"] = _write_csv(root, "hris_roster", day, roster)
        if pay_period(day):
            pay_rows, pay_exceptions = _payroll(people, day, seed)
            counts["payroll_register"] = _write_csv(root, "payroll_register", day, pay_rows)
            exceptions += pay_exceptions
        truth: dict[str, dict[str, str]] = {}
        if day.weekday() < 5:
            cases, truth = _hr_cases(people, day, seed)
            counts["hr_cases"] = _write_jsonl(root, "hr_cases", day, cases)
        ids = [r["employee_id"] for r in roster if r["status"] != "terminated"]
        ids = ids or [p.employee_id for p in people[:1]] or ["EMP-0001"]
        expense_day, policy, bad = _expenses(
            day, index, expense_rows, seed, ids, history, taken, day in no_rate
        )
        sample_data.write_day(root, expense_day)
        counts["expense_lines"] = len(expense_day.lines)
        exceptions += policy
        if bad:
            quarantined["expense_lines"] = bad
        if with_documents:
            if index == 0:
                contracts = sample_contracts.write_contract_documents(root, day, seed)
                contract_keys[day] = {
                    c.file_name: sample_contracts.answer_key_entry(c) for c in contracts
                }
            exceptions += _terms_exceptions(
                day, index, ledger.invoices[day], contracts, start, seed
            )
        counts.update(_write_finance(root, ledger, day))
        if ledger.quarantined[day]:
            quarantined["gl_journal_lines"] = ledger.quarantined[day]
        if with_documents:
            landed = sample_documents.write_invoice_documents(
                root, day, len(documents), ledger.invoices[day], seed, documented
            )
            if landed.documents:
                documents[day] = {
                    d.file_name: sample_documents.answer_key_entry(d) for d in landed.documents
                }
                exceptions += _document_exceptions(day, landed)
        per_day.append((day, quarantined, truth, counts))
    keys = []
    for day, quarantined, truth, counts in per_day:
        key = _answer_key(day, exceptions, quarantined, truth, counts)
        key.invoice_documents = documents.get(day, {})
        key.contract_documents = contract_keys.get(day, {})
        _write_key(root, key)
        keys.append(key)
    return keys


def generate_gl_day(root: Path, day: date, lines: int, seed: int = 7) -> CloseAnswerKey:
    """Write one date's GL (about ``lines`` lines) with matching bank, AP and fx_rates files.

    Activity is planned on ``day`` whatever its weekday and without the month-end spike, so a
    benchmark gets the volume it asks for; counterparts due after ``day`` stay open.
    """
    ledger = _plan_finance([day], lines, seed, any_day=True, month_end=False)
    counts = {"fx_rates": _write_jsonl(root, "fx_rates", day, _fx_rows(seed, day, None))}
    counts.update(_write_finance(root, ledger, day))
    quarantined = {"gl_journal_lines": ledger.quarantined[day]} if ledger.quarantined[day] else {}
    key = _answer_key(day, ledger.exceptions, quarantined, {}, counts)
    _write_key(root, key)
    return key


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a sample landing zone for the close.")
    yesterday = date.today() - timedelta(days=1)
    parser.add_argument("--start", type=date.fromisoformat, default=yesterday - timedelta(days=6))
    parser.add_argument("--end", type=date.fromisoformat, default=yesterday)
    parser.add_argument("--root", type=Path, default=None, help="defaults to LAKEHOUSE_ROOT")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gl-lines", type=int, default=600, help="GL lines per business day")
    parser.add_argument("--employees", type=int, default=300)
    parser.add_argument("--expense-rows", type=int, default=200)
    args = parser.parse_args()
    root = args.root or Path(lakehouse_root())
    keys = generate_close(
        root,
        args.start,
        args.end,
        seed=args.seed,
        gl_lines_per_day=args.gl_lines,
        employees=args.employees,
        expense_rows=args.expense_rows,
    )
    for k in keys:
        print(
            f"{k.business_date}: {sum(k.counts.values())} rows, {len(k.open)} open, "
            f"{len(k.closed)} closed, {sum(len(v) for v in k.quarantined.values())} quarantined, "
            f"{len(k.invoice_documents)} invoice documents, {len(k.contract_documents)} contracts"
        )


if __name__ == "__main__":
    main()
