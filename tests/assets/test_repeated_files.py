"""A file that repeats an earlier delivery is quarantined whole; a repeated snapshot is not."""

import shutil
from datetime import date, timedelta

from pyspark.sql import functions as F

from assets.sources import (
    LANDED_FILES,
    QUARANTINE,
    conform_dates,
    conform_day,
    ingest_dates,
    ingest_day,
)
from infra.lakehouse import LakehouseResource
from sample import close as sample_close
from transforms import contracts as c

D1 = date(2026, 11, 19)
D2 = D1 + timedelta(days=1)


def _folder(root, source: str, day: date):
    return root / "landing" / source / f"business_date={day.isoformat()}"


def _resend(root, source: str) -> str:
    """Replace D2's files of ``source`` with D1's file, renamed as a D2 export would be."""
    [original] = [p for p in _folder(root, source, D1).iterdir() if not p.name.startswith(".")]
    target = _folder(root, source, D2)
    shutil.rmtree(target)
    target.mkdir()
    copy = target / f"resent_{original.name}"
    shutil.copy(original, copy)
    return original.name


def test_yesterdays_file_resent_today_is_quarantined_whole_and_a_quiet_roster_is_not(
    spark, lakehouse_root
):
    sample_close.generate_close(
        lakehouse_root, D1, D2, gl_lines_per_day=40, employees=12, with_documents=False
    )
    gl_name = _resend(lakehouse_root, c.GL_JOURNAL_LINES.name)
    _resend(lakehouse_root, c.HRIS_ROSTER.name)  # nobody joined or left: the same snapshot
    lakehouse = LakehouseResource()
    done = {}
    # Both dates in one ranged run, as a backfill runs them: the repeat is found inside the run.
    for contract in (c.FX_RATES, c.GL_JOURNAL_LINES, c.HRIS_ROSTER):
        ingest_dates(spark, lakehouse, contract, [D1, D2])
        for day, silver in conform_dates(spark, lakehouse, contract, [D1, D2], "run").items():
            done[(contract.name, day)] = silver

    first, resent = done[("gl_journal_lines", D1)], done[("gl_journal_lines", D2)]
    assert first.bronze_rows == resent.bronze_rows > 0
    assert "DUPLICATE_FILE" not in first.reasons
    # Every line of the re-sent file is quarantined, none reaches silver, nothing is lost.
    assert resent.silver_rows == 0
    assert resent.reasons == {"DUPLICATE_FILE": resent.bronze_rows}
    detail = (
        lakehouse.read_partition(spark, QUARANTINE, D2)
        .where(F.col("source") == "gl_journal_lines")
        .select("reason_detail")
        .distinct()
        .collect()
    )
    assert [r[0] for r in detail] == [
        f"the file repeats the content of file:{_folder(lakehouse_root, 'gl_journal_lines', D1)}"
        f"/{gl_name} (landed for {D1.isoformat()})"
    ]
    # The roster is a snapshot: the same content on two dates is allowed.
    roster = done[("hris_roster", D2)]
    assert "DUPLICATE_FILE" not in roster.reasons and roster.silver_rows > 0
    # Every landed file is on record with its rows and fingerprint.
    files = lakehouse.read(spark, LANDED_FILES).where(F.col("source") == "gl_journal_lines")
    prints = {r["business_date"]: (r["rows"], r["fingerprint"]) for r in files.collect()}
    assert prints[D1] == prints[D2] and prints[D1][0] == first.bronze_rows

    # Re-running the first date alone changes nothing: it is still the original.
    ingest_day(spark, lakehouse, c.GL_JOURNAL_LINES, D1)
    again = conform_day(spark, lakehouse, c.GL_JOURNAL_LINES, D1, "run-2")
    assert again.silver_rows == first.silver_rows and "DUPLICATE_FILE" not in again.reasons
