"""Reference data the reconciliations rely on: entities, bank accounts, GL account roles.

In production these come from the ERP's master data; here they are declared once, in code, so a
reader finds them in one place and tests can rely on them.
"""

from dataclasses import dataclass


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
