"""AP invoices ↔ contract payment terms (``contract_ap``): which contract governs an invoice,
when its due or paid date is outside the terms, and carry-forward, on tiny inline frames."""

from datetime import timedelta
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from tests.transforms.test_carry_forward import checkpointed, states
from tests.transforms.test_recon_ap import INVOICE_SCHEMA, PAYMENT_SCHEMA
from tests.transforms.test_recon_cash import D, days
from transforms.frames import local_frame
from transforms.recon.carry_forward import reconcile_with_carry_forward
from transforms.recon.common import EXCEPTION_COLUMNS, MATCH_COLUMNS
from transforms.recon.contract_terms import (
    CONTRACT_SCHEMA,
    reconcile_contract_terms_ap,
    reconcile_contract_terms_ap_dates,
)

US = "Corporate Services Inc."


def contracts_df(spark: SparkSession, *rows: tuple) -> DataFrame:
    """(landed, file, vendor party, payment days, effective date) per contract."""
    return local_frame(
        spark,
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
    return local_frame(spark, data, INVOICE_SCHEMA)


def payments_df(spark: SparkSession, *rows: tuple) -> DataFrame:
    """(invoice id, payment date) per payment, landed on its date."""
    data = [
        (f"PMT-{i}", "INV-" + id_, "US01", "V-1", None, paid, Decimal("100.00"), "USD", None,
         "released", paid, Decimal(1), Decimal("100.00"))
        for i, (id_, paid) in enumerate(rows)
    ]  # fmt: skip
    return local_frame(spark, data, PAYMENT_SCHEMA)


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


RUN = [days(-2), days(-1), D]


def multi_date_inputs(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Contracts, AP invoices and payments landed over the run's dates, earlier landings
    mattering later."""
    contracts = contracts_df(
        spark,
        (days(-50), "acme_old.pdf", "Acme Office Supply", 60, None),
        # Supersedes the old terms from D - 1 on.
        (days(-1), "acme.pdf", "Acme Office Supply", 30, None),
        # Landed after the run: no night of the run reads it.
        (days(1), "acme_next.pdf", "Acme Office Supply", 10, None),
    )
    invoices = invoices_df(
        spark,
        # Within net 60, outside net 30: an exception from D - 1 on.
        ("1", "Acme Office Supply", days(-3), 45, days(-2)),
        # Landed on D - 46: in the windows of D - 2 and D - 1, out of D's.
        ("2", "Acme Office Supply", days(-50), 90, days(-46)),
        # Due inside the terms, paid 40 days on: its payment lands on D.
        ("3", "Acme Office Supply", days(-40), 20, days(-2)),
        # Landed again on D with a due date inside the terms.
        ("4", "Acme Office Supply", days(-10), 90, days(-2)),
        ("4", "Acme Office Supply", days(-10), 20, D),
    )
    payments = payments_df(spark, ("3", D), ("1", days(1)))
    return contracts, invoices, payments


def test_a_run_of_dates_is_each_date_reconciled_alone(spark):
    contracts, invoices, payments = multi_date_inputs(spark)
    result = reconcile_contract_terms_ap_dates(contracts, invoices, payments, RUN, checkpointed)
    alone = [reconcile_contract_terms_ap(contracts, invoices, payments, d) for d in RUN]
    for got, one_by_one in (
        (result.matches, [r.matches for r in alone]),
        (result.exceptions, [r.exceptions for r in alone]),
    ):
        union = one_by_one[0].unionByName(one_by_one[1]).unionByName(one_by_one[2])
        assert_df_equality(got, union, ignore_row_order=True)

    # Each date's rows, as the reconciliation of one date gave them before it was set-based.
    assert result.matches.columns == MATCH_COLUMNS and result.matches.count() == 0
    old, new = ("acme_old.pdf", days(-50), 60), ("acme.pdf", days(-1), 30)
    paid = ", paid 2026-11-20"
    # (as of, invoice, first seen, age, its contract, invoice date, due (and paid), days)
    rows = [
        (days(-2), "2", days(-46), 44, old, "2026-10-01", "2026-12-30", 90),
        (days(-2), "4", days(-2), 0, old, "2026-11-10", "2027-02-08", 90),
        (days(-1), "2", days(-46), 45, new, "2026-10-01", "2026-12-30", 90),
        (days(-1), "1", days(-2), 1, new, "2026-11-17", "2027-01-01", 45),
        (days(-1), "4", days(-2), 1, new, "2026-11-10", "2027-02-08", 90),
        (D, "1", days(-2), 2, new, "2026-11-17", "2027-01-01", 45),
        (D, "3", days(-2), 2, new, "2026-10-11", "2026-10-31" + paid, 40),
    ]
    expected = [
        (
            as_of,
            first_seen,
            age,
            (ap(invoice), contract(file, landed)),
            f"AP invoice INV-{invoice} of Acme Office Supply for 100.00 USD dated {issued} is due "
            f"{due}: {n} days, outside the {terms} days of its contract {file} ('net {terms}')",
        )
        for as_of, invoice, first_seen, age, (file, landed, terms), issued, due, n in rows
    ]
    assert sorted(
        (r["business_date"], r["first_seen_date"], r["age_days"], tuple(r["records"]), r["detail"])
        for r in result.exceptions.collect()
    ) == sorted(expected)
    assert {
        (r["exception_type"], r["legal_entity"], r["amount"], r["amount_usd"], r["status"])
        for r in result.exceptions.collect()
    } == {("AP_TERMS_OUTSIDE_CONTRACT", "US01", Decimal("100.00"), Decimal("100.00"), "open")}
