"""Reading landed files: by column name in every format, drift reported or refused, never filled."""

import json
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.lakehouse import LakehouseResource
from infra.landing import LandingRefusedError
from transforms import contracts as c
from transforms.drift import SchemaDriftError

DAY = date(2026, 11, 20)


def landing(root, source: str):
    folder = root / "landing" / source / f"business_date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    return folder


def test_json_lines_are_read_by_name_with_extra_columns_kept_as_text(spark, tmp_path):
    folder = landing(tmp_path, "fx_rates")
    (folder / "fx.jsonl").write_text(
        json.dumps(
            {
                "currency": "EUR",
                "rate_to_usd": 1.0832,
                "rate_date": "2026-11-20",
                "source": "ECB",
                "bank_holiday": False,
            }
        )
        + "\n"
    )
    lakehouse = LakehouseResource(root=str(tmp_path))
    df, drift = lakehouse.read_landing_checked(spark, c.FX_RATES, DAY)
    row = df.first()
    assert df.columns[:4] == c.FX_RATES.column_names
    assert (row["currency"], row["rate_to_usd"], row["rate_date"]) == (
        "EUR",
        "1.0832",
        "2026-11-20",
    )
    assert json.loads(row["_extra_columns"]) == {"bank_holiday": "false"}
    assert drift.added == ("bank_holiday",) and not drift.breaking


def test_reordered_csv_columns_land_in_the_right_place(spark, tmp_path):
    folder = landing(tmp_path, "hris_roster")
    header = list(reversed(c.HRIS_ROSTER.column_names))
    values = {
        "employee_id": "EMP-1",
        "name": "Ada Lovelace",
        "legal_entity": "GB01",
        "status": "active",
    }
    (folder / "roster.csv").write_text(
        ",".join(header) + "\n" + ",".join(values.get(h, "") for h in header) + "\n"
    )
    df = LakehouseResource(root=str(tmp_path)).read_landing(spark, c.HRIS_ROSTER, DAY)
    row = df.first()
    assert (row["employee_id"], row["name"], row["status"]) == ("EMP-1", "Ada Lovelace", "active")


def test_renamed_required_column_is_refused_with_the_drift_named(spark, tmp_path):
    folder = landing(tmp_path, "ap_payments")
    header = ["payment_ref" if h == "payment_id" else h for h in c.AP_PAYMENTS.column_names]
    (folder / "payments.csv").write_text(",".join(header) + "\n" + ",".join("x" for _ in header))
    with pytest.raises(SchemaDriftError, match="payment_id"):
        LakehouseResource(root=str(tmp_path)).read_landing(spark, c.AP_PAYMENTS, DAY)


def test_parquet_typed_columns_are_read_as_text(spark, tmp_path):
    folder = landing(tmp_path, "bank_statement_lines")
    table = pa.table(
        {
            "bank_account": ["US01-OPER-001"],
            "statement_line_id": ["S1"],
            "value_date": pa.array([DAY], pa.date32()),
            "amount": pa.array([Decimal("-12.30")], pa.decimal128(18, 2)),
            "currency": ["USD"],
            "counterparty": ["ACME"],
            "reference": ["PAY-1"],
            "narrative": ["payment"],
        }
    )
    pq.write_table(table, folder / "bank.parquet")
    df, drift = LakehouseResource(root=str(tmp_path)).read_landing_checked(
        spark, c.BANK_STATEMENT_LINES, DAY
    )
    row = df.first()
    assert (row["value_date"], row["amount"]) == ("2026-11-20", "-12.30")
    assert not drift.has_drift


def test_retyped_parquet_column_is_refused(spark, tmp_path):
    folder = landing(tmp_path, "bank_statement_lines")
    columns = {name: ["x"] for name in c.BANK_STATEMENT_LINES.column_names}
    columns["amount"] = pa.array([True])
    pq.write_table(pa.table(columns), folder / "bank.parquet")
    with pytest.raises(SchemaDriftError, match="amount"):
        LakehouseResource(root=str(tmp_path)).read_landing(spark, c.BANK_STATEMENT_LINES, DAY)


def test_missing_daily_source_is_an_error_but_an_occasional_one_is_empty(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="gl_journal_lines"):
        lakehouse.read_landing(spark, c.GL_JOURNAL_LINES, DAY)
    payroll = lakehouse.read_landing(spark, c.PAYROLL_REGISTER, DAY)
    assert payroll.count() == 0
    assert payroll.columns[: len(c.PAYROLL_REGISTER.column_names)] == (
        c.PAYROLL_REGISTER.column_names
    )


def test_short_csv_line_is_kept_whole_as_corrupt(spark, tmp_path):
    folder = landing(tmp_path, "ap_invoices")
    header = ",".join(c.AP_INVOICES.column_names)
    good = "INV-1,US01,V1,Acme,2026-11-20,2026-12-20,100.00,USD,memo,PO1,open"
    (folder / "inv.csv").write_text(f"{header}\n{good}\nINV-2,US01\n")
    df = LakehouseResource(root=str(tmp_path)).read_landing(spark, c.AP_INVOICES, DAY)
    rows = {r["invoice_id"]: r["_corrupt_record"] for r in df.collect()}
    assert rows == {"INV-1": None, "INV-2": "INV-2,US01"}


def test_documents_are_read_as_bytes_and_a_stray_name_refuses_the_date(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path))
    folder = landing(tmp_path, "invoice_documents")
    (folder / "a.pdf").write_bytes(b"%PDF-1.7 a")
    (folder / "b.PNG").write_bytes(b"\x89PNG b")
    (folder / "_SUCCESS").write_bytes(b"")
    files = lakehouse.read_landed_documents(spark, "invoice_documents", [DAY, date(2026, 11, 21)])
    got = {
        r["path"].rsplit("/", 1)[1]: (bytes(r["content"]), r["business_date"])
        for r in files.collect()
    }
    assert got == {"a.pdf": (b"%PDF-1.7 a", DAY), "b.PNG": (b"\x89PNG b", DAY)}
    (folder / "c.pdf.part").write_bytes(b"%PDF")
    with pytest.raises(LandingRefusedError, match=r"c\.pdf\.part"):
        lakehouse.read_landed_documents(spark, "invoice_documents", [DAY])
