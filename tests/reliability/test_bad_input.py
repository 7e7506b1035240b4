"""Case 9, bad input at the door: every bad file is refused by name or quarantined with a reason.

One small lakehouse for the module: the HRIS roster (CSV) lands on one date per case, the files
that can be read are ingested and conformed together (one ranged run, as a backfill runs them),
and each refused file is tried on its own date. Afterwards nothing is lost, nothing duplicated.
"""

import csv
import io
import json
import os
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from assets.sources import LANDED_FILES, conform_dates, ingest_dates
from infra.lakehouse import LakehouseResource, TableRef
from infra.landing import LandingRefusedError
from tests.reliability.invariants import assert_invariants
from transforms import contracts as c

ROSTER = c.HRIS_ROSTER
# Readable oddities share one date (each its own file); added columns get a date of their own,
# because drift is reported per date.
ODD_DAY = date(2026, 11, 2)
EXTRA_DAY = ODD_DAY + timedelta(days=1)
REFUSED_FROM = ODD_DAY + timedelta(days=10)


@dataclass(frozen=True)
class Refusal:
    """A file that must be refused: where it lands and what the error must say."""

    contract: c.SourceContract
    file_name: str
    content: bytes
    says: str


def roster_csv(rows: list[dict], header: list[str] | None = None) -> str:
    """CSV text of roster rows, in ``header`` order (the contract's by default)."""
    header = header or ROSTER.column_names
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{h: r.get(h, "") for h in header} for r in rows])
    return out.getvalue()


def person(employee_id: str, name: str = "Zoë Müller", **more: str) -> dict:
    return {
        "employee_id": employee_id,
        "name": name,
        "legal_entity": "DE01",
        "status": "active",
        **more,
    }


def _parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({n: ["x"] for n in c.BANK_STATEMENT_LINES.column_names}), sink)
    return sink.getvalue()


GOOD = roster_csv([person("E1"), person("E2")])
REFUSALS = {
    "cut_mid_row": Refusal(ROSTER, "roster.csv", GOOD[:-9].encode(), "does not end with a line"),
    "utf16": Refusal(ROSTER, "roster.csv", GOOD.encode("utf-16"), "is UTF-16"),
    "utf16_without_bom": Refusal(ROSTER, "roster.csv", GOOD.encode("utf-16-le"), "NUL bytes"),
    "latin1": Refusal(ROSTER, "roster.csv", GOOD.encode("latin-1"), "is not UTF-8: byte 0xEB"),
    "zero_bytes": Refusal(ROSTER, "roster.csv", b"", "is empty (0 bytes)"),
    "temporary_name": Refusal(ROSTER, "roster.csv.part", GOOD.encode(), "transfer still in"),
    "utf16_json_lines": Refusal(
        c.FX_RATES,
        "fx.jsonl",
        (json.dumps({"rate_date": "2026-11-12", "currency": "EUR"}) + "\n").encode("utf-16"),
        "is UTF-16",
    ),
    "parquet_cut_short": Refusal(
        c.BANK_STATEMENT_LINES, "bank.parquet", _parquet_bytes()[:-20], "no footer"
    ),
    "parquet_zero_bytes": Refusal(c.BANK_STATEMENT_LINES, "bank.parquet", b"", "0 bytes"),
}
REFUSED_DAY = {case: REFUSED_FROM + timedelta(days=i) for i, case in enumerate(sorted(REFUSALS))}


def land(root: Path, source: str, day: date, name: str, content: bytes | str) -> Path:
    folder = root / "landing" / source / f"business_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def land_accepted(root: Path) -> dict[str, int]:
    """Write the readable files; return the data rows written per file name."""
    land(root, ROSTER.name, ODD_DAY, "bom.csv", GOOD.encode("utf-8-sig"))
    land(root, ROSTER.name, ODD_DAY, "ordered.csv", roster_csv([person("E3", "Ada")]))
    reversed_header = list(reversed(ROSTER.column_names))
    land(
        root,
        ROSTER.name,
        ODD_DAY,
        "reversed.csv",
        roster_csv([person("E4", "Bob")], reversed_header),
    )
    land(root, ROSTER.name, ODD_DAY, "header_only.csv", roster_csv([]))
    # A row cut short inside the file (a bad concatenation upstream): the file itself is whole.
    cut = roster_csv([person("E5"), person("E6"), person("E7")]).splitlines()
    cut[2] = cut[2][:12]
    land(root, ROSTER.name, ODD_DAY, "row_cut.csv", "\n".join(cut) + "\n")
    land(root, ROSTER.name, EXTRA_DAY, "plain.csv", roster_csv([person("E1")]))
    with_bonus = [*ROSTER.column_names, "bonus"]
    land(
        root, ROSTER.name, EXTRA_DAY, "bonus.csv", roster_csv([person("E2", bonus="5")], with_bonus)
    )
    return {
        "bom.csv": 2,
        "ordered.csv": 1,
        "reversed.csv": 1,
        "header_only.csv": 0,
        "row_cut.csv": 3,
        "plain.csv": 1,
        "bonus.csv": 1,
    }


@pytest.fixture(scope="module")
def door(spark, tmp_path_factory):
    """Bad files landed, the readable ones ingested and conformed, each refused one tried."""
    root = tmp_path_factory.mktemp("door")
    lakehouse = LakehouseResource(root=str(root))
    written = land_accepted(root)
    days = [ODD_DAY, EXTRA_DAY]
    rows, drift = ingest_dates(spark, lakehouse, ROSTER, days)
    silver = conform_dates(spark, lakehouse, ROSTER, days, "door")
    refused = {}
    for case, refusal in REFUSALS.items():
        land(root, refusal.contract.name, REFUSED_DAY[case], refusal.file_name, refusal.content)
        try:
            ingest_dates(spark, lakehouse, refusal.contract, [REFUSED_DAY[case]])
            refused[case] = None
        except LandingRefusedError as error:
            refused[case] = str(error)
    return lakehouse, written, rows, drift, silver, refused


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_file_is_refused_naming_the_file_and_the_problem(spark, door, case):
    lakehouse, *_, refused = door
    refusal, day = REFUSALS[case], REFUSED_DAY[case]
    message = refused[case]
    assert message is not None, f"{case}: the file was read"
    assert refusal.file_name in message and refusal.says in message
    assert f"business_date={day.isoformat()}" in message
    # Refused before anything was written: no bronze rows, no landed-file record for the date.
    bronze = TableRef("bronze", refusal.contract.name)
    if lakehouse.exists(spark, bronze):
        assert lakehouse.read_dates(spark, bronze, [day]).count() == 0
    landed = lakehouse.read(spark, LANDED_FILES).where(F.col("business_date") == F.lit(day))
    assert landed.count() == 0


def test_every_row_of_a_readable_file_lands_in_silver_or_quarantine(spark, door):
    lakehouse, written, rows, _, silver, _ = door
    bronze = lakehouse.read(spark, TableRef("bronze", ROSTER.name))
    per_file = {
        Path(r["_source_file"]).name: r["count"]
        for r in bronze.groupBy("_source_file").count().collect()
    }
    assert per_file == {name: n for name, n in written.items() if n}
    assert rows == {ODD_DAY: 7, EXTRA_DAY: 2}
    for day, d in silver.items():
        assert d.bronze_rows == d.silver_rows + d.quarantine_rows == rows[day]
    assert silver[ODD_DAY].reasons == {"MALFORMED_RECORD": 1}
    [cut] = (
        lakehouse.read(spark, TableRef("silver", "quarantine"))
        .where(F.col("business_date") == F.lit(ODD_DAY))
        .collect()
    )
    assert cut["record_key"] == "E6" and "line does not match" in cut["reason_detail"]
    assert_invariants(spark, lakehouse)


def test_bom_column_order_and_extra_columns_are_read_by_name(spark, door):
    lakehouse, _, _, drift, _, _ = door
    silver = {
        r["employee_id"]: r
        for r in lakehouse.read_dates(spark, TableRef("silver", ROSTER.name), [ODD_DAY]).collect()
    }
    # The byte order mark is not glued to the first column's name: the key is read.
    assert silver["E1"]["name"] == "Zoë Müller" and silver["E2"]["legal_entity"] == "DE01"
    assert not drift[ODD_DAY]["has_drift"]
    # Files of one delivery with their columns in different orders: each read by its header.
    assert [silver[e]["name"] for e in ("E3", "E4")] == ["Ada", "Bob"]
    assert silver["E4"]["status"] == "active"
    # An added column in one file is kept and reported, the other file's rows are untouched.
    bronze = {
        r["employee_id"]: r
        for r in lakehouse.read_dates(spark, TableRef("bronze", ROSTER.name), [EXTRA_DAY]).collect()
    }
    assert json.loads(bronze["E2"]["_extra_columns"]) == {"bonus": "5"}
    assert bronze["E1"]["_corrupt_record"] is None and bronze["E2"]["_corrupt_record"] is None
    assert drift[EXTRA_DAY]["added"] == ["bonus"] and not drift[EXTRA_DAY]["breaking"]


def test_a_refused_file_holds_back_its_run_and_writes_nothing(spark, door):
    lakehouse, *_ = door
    version = lakehouse.version(spark, TableRef("bronze", ROSTER.name))
    with pytest.raises(LandingRefusedError, match="not UTF-8"):
        ingest_dates(spark, lakehouse, ROSTER, [ODD_DAY, REFUSED_DAY["latin1"]])
    assert lakehouse.version(spark, TableRef("bronze", ROSTER.name)) == version


# --- the landing sensor: a file still being written --------------------------------------------


@pytest.fixture
def landed_day(tmp_path, monkeypatch):
    """Every daily source's file landed for yesterday; the sensor's clock at noon today."""
    from datetime import UTC, datetime

    import pipelines.sensors

    noon = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(pipelines.sensors, "utc_now", lambda: noon)
    day = noon.date() - timedelta(days=1)
    for contract in c.CONTRACTS.values():
        if contract.lands_daily:
            land(tmp_path, contract.name, day, f"{contract.name}.{contract.file_format}", "x\n")
    return LakehouseResource(root=str(tmp_path)), day


def _tick(lakehouse):
    from dagster import build_sensor_context

    from pipelines.sensors import landing_zone_sensor

    return landing_zone_sensor(build_sensor_context(resources={"lakehouse": lakehouse}))


def test_sensor_waits_while_a_file_carries_a_temporary_name(landed_day):
    from dagster import SkipReason

    lakehouse, day = landed_day
    partial = land(Path(lakehouse.base), "gl_journal_lines", day, "gl.csv.part", "journal_id\n")
    waiting = _tick(lakehouse)
    assert isinstance(waiting, SkipReason)
    assert "still arriving" in waiting.skip_message and "gl.csv.part" in waiting.skip_message
    partial.rename(partial.with_name("gl.csv"))
    [request] = _tick(lakehouse).run_requests
    assert request.partition_key == day.isoformat()


def test_sensor_waits_until_files_settle_when_configured(landed_day, monkeypatch):
    from dagster import SkipReason

    lakehouse, day = landed_day
    monkeypatch.setenv("LANDING_SETTLE_SECONDS", "60")
    waiting = _tick(lakehouse)
    assert isinstance(waiting, SkipReason) and "modified" in waiting.skip_message
    two_minutes_ago = time.time() - 120
    for path in Path(lakehouse.base, "landing").rglob("*"):
        if path.is_file():
            os.utime(path, (two_minutes_ago, two_minutes_ago))
    [request] = _tick(lakehouse).run_requests
    assert request.partition_key == day.isoformat()
