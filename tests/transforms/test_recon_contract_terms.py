"""AP invoices ↔ contract payment terms (``contract_ap``): which contract governs an invoice,
when its due or paid date is outside the terms, and carry-forward, on tiny inline frames."""

from datetime import timedelta
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession

from tests.transforms.test_carry_forward import checkpointed, states
from tests.transforms.test_recon_ap import INVOICE_SCHEMA, PAYMENT_SCHEMA
from tests.transforms.test_recon_cash import D, days
from transforms.recon.carry_forward import reconcile_with_carry_forward
from transforms.recon.common import EXCEPTION_COLUMNS, MATCH_COLUMNS
from transforms.recon.contract_terms import CONTRACT_SCHEMA, reconcile_contract_terms_ap

US = "Corporate Services Inc."


def contracts_df(spark: SparkSession, *rows: tuple) -> DataFrame:
    """(landed, file, vendor party, payment days, effective date) per contract."""
    return spark.createDataFrame(
        [
            (
                landed,
                file,
                effective,
                None if n is None else f"net {n}",
                n,
                [(US, "Customer"), (vendor, "Supplier")],
            )
            for landed, file, vendor, n, effective in rows
        ],
        CONTRACT_SCHEMA,
    )


def invoices_df(spark: SparkSession, *rows: tuple) -> DataFrame:
    """(id, vendor, invoice date, days to due (None: no due date), landed) per AP invoice."""
    data = [
        ("INV-" + id_, "US01", "V-1", vendor, issued,
         None if due is None else issued + timedelta(days=due), Decimal("100.00"), "USD", None,
         "PO-1", "open", landed, Decimal(1), Decimal("100.00"))
        for id_, vendor, issued, due, landed in rows
    ]  # fmt: skip
    return spark.createDataFrame(data, INVOICE_SCHEMA)


def payments_df(spark: SparkSession, *rows: tuple) -> DataFrame:
    """(invoice id, payment date) per payment, landed on its date."""
    data = [
        (f"PMT-{i}", "INV-" + id_, "US01", "V-1", None, paid, Decimal("100.00"), "USD", None,
         "released", paid, Decimal(1), Decimal("100.00"))
        for i, (id_, paid) in enumerate(rows)
    ]  # fmt: skip
    return spark.createDataFrame(data, PAYMENT_SCHEMA)


def ap(id_: str) -> str:
    return f"ap_invoices:INV-{id_}"


def contract(file: str, day) -> str:
    return f"contract_documents:{day.isoformat()}|{file}"


def test_an_invoice_due_or_paid_beyond_its_vendors_contract_terms_is_an_exception(spark):
    issued = days(-50)  # landed today (D) all the same
    contracts = contracts_df(
        spark,
        # The later contract of a vendor supersedes the earlier one (net 90 -> net 30).
        (days(-20), "acme_2025.pdf", "Acme Office Supply Ltd.", 90, None),
        (days(-5), "acme_2026.pdf", "ACME Office Supply Ltd", 30, days(-60)),
        # Terms not read (no days): governs nothing.
        (days(-5), "globex.pdf", "Globex Facilities", None, None),
        # In effect only after the invoice date.
        (days(-5), "initech.pdf", "Initech Software", 10, days(-1)),
    )
    invoices = invoices_df(
        spark,
        ("1", "Acme Office Supply", issued, 60, D),  # due beyond net 30
        ("2", "Acme Office Supply", issued, 30, D),  # due on the last day allowed
        ("3", "Acme Office Supply", issued, 20, D),  # due inside, paid 40 days on
        ("4", "Globex Facilities", issued, 90, D),  # the contract's terms were not read
        ("5", "Initech Software", issued, 45, D),  # contract not yet in effect
        ("6", "Acme Office Supply", issued, None, D),  # no due date, not paid: nothing to say
        ("7", "Wayne Consulting", issued, 120, D),  # no contract
        ("8", None, issued, 120, D),  # no vendor name: no contract
    )
    payments = payments_df(
        spark, ("3", issued + timedelta(days=40)), ("2", issued + timedelta(days=25))
    )
    result = reconcile_contract_terms_ap(contracts, invoices, payments, D, checkpointed)
    rows = {tuple(r["records"]): r for r in result.exceptions.select(*EXCEPTION_COLUMNS).collect()}
    assert set(rows) == {
        (ap("1"), contract("acme_2026.pdf", days(-5))),
        (ap("3"), contract("acme_2026.pdf", days(-5))),
    }
    late = rows[(ap("1"), contract("acme_2026.pdf", days(-5)))]
    assert (late["recon"], late["exception_type"], late["rule"], late["status"]) == (
        "contract_ap", "AP_TERMS_OUTSIDE_CONTRACT", "PAYMENT_TERMS", "open",
    )  # fmt: skip
    assert (late["first_seen_date"], late["amount"], late["legal_entity"]) == (
        D, Decimal("100.00"), "US01",
    )  # fmt: skip
    assert "60 days, outside the 30 days of its contract acme_2026.pdf" in late["detail"]
    paid = rows[(ap("3"), contract("acme_2026.pdf", days(-5)))]
    assert f"paid {issued + timedelta(days=40)}: 40 days" in paid["detail"]
    assert result.matches.columns == MATCH_COLUMNS and result.matches.count() == 0


def test_carried_forward_it_opens_when_the_contract_lands_and_ages_out_with_the_invoice(spark):
    contracts = contracts_df(spark, (D, "acme.pdf", "Acme Office Supply", 30, None))
    old_landing = days(-46)  # in the window of D - 1, out of D's
    invoices = invoices_df(
        spark,
        ("1", "Acme Office Supply", days(-3), 45, days(-1)),
        ("2", "Acme Office Supply", old_landing, 90, old_landing),
    )
    earlier = contracts_df(spark, (days(-50), "acme_old.pdf", "Acme Office Supply", 60, None))
    result = reconcile_with_carry_forward(
        reconcile_contract_terms_ap,
        contracts.unionByName(earlier),
        invoices,
        payments_df(spark),
        as_of=D,
        materialize=checkpointed,
    )
    assert states(result.exceptions) == [
        # Yesterday the old contract governed INV-2; today INV-2 has left the window.
        ("AP_TERMS_OUTSIDE_CONTRACT", "closed", "aged_out", 46, old_landing, D,
         (ap("2"), contract("acme_old.pdf", days(-50)))),
        # The new contract (net 30, net 60 before) landed today: INV-1, landed yesterday, is
        # outside it from today.
        ("AP_TERMS_OUTSIDE_CONTRACT", "open", None, 1, days(-1), None,
         (ap("1"), contract("acme.pdf", D))),
    ]  # fmt: skip
