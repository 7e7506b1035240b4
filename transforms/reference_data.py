"""Reference data the reconciliations rely on: entities, bank accounts, GL account roles.

In production these come from the ERP's master data; here they are declared once, in code, so a
reader finds them in one place and tests can rely on them.
"""

from dataclasses import dataclass
from decimal import Decimal

# How far back the matching reconciliations look (business dates before D): an item unmatched
# for longer closes as aged out. The sample generator plans its anomalies with the same number.
RECON_LOOKBACK_DAYS = 45

# The expense policy (``transforms/recon/expense_policy.py``); the sample generator keeps good
# claims inside it and seeds violations against it.
EXPENSE_CATEGORY_LIMITS_USD: dict[str, Decimal] = {
    "travel_air": Decimal(2500),
    "lodging": Decimal(1200),
    "ground_transport": Decimal(600),
    "meals": Decimal(300),
    "software": Decimal(3000),
    "office_supplies": Decimal(400),
    "training": Decimal(2000),
    "telecom": Decimal(250),
    "entertainment": Decimal(500),
}
WEEKDAY_ONLY_CATEGORIES = frozenset({"office_supplies", "software", "training", "telecom"})
BLOCKED_MERCHANT_TERMS = ("casino", "liquor", "nightclub", "betting")


@dataclass(frozen=True)
class LegalEntity:
    """A company of the group, with its functional currency."""

    code: str
    name: str
    currency: str


@dataclass(frozen=True)
class BankAccount:
    """A bank account held by an entity; its GL cash account holds its postings."""

    account: str
    legal_entity: str
    currency: str
    gl_cash_account: str


LEGAL_ENTITIES: dict[str, LegalEntity] = {
    e.code: e
    for e in (
        LegalEntity("US01", "Corporate Services Inc.", "USD"),
        LegalEntity("GB01", "Corporate Services UK Ltd", "GBP"),
        LegalEntity("DE01", "Corporate Services GmbH", "EUR"),
    )
}

BANK_ACCOUNTS: dict[str, BankAccount] = {
    b.account: b
    for b in (
        BankAccount("US01-OPER-001", "US01", "USD", "1010"),
        BankAccount("GB01-OPER-001", "GB01", "GBP", "1010"),
        BankAccount("DE01-OPER-001", "DE01", "EUR", "1010"),
    )
}

# GL accounts with a role in the reconciliations.
GL_CASH_ACCOUNTS = frozenset({"1010"})
GL_AP_CONTROL_ACCOUNT = "2100"
# source_system of the journals the AP subledger posts (their reference is the AP document id).
AP_SOURCE_SYSTEM = "AP"
