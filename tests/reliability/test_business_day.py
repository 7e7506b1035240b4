"""Case 6, business-day edges: which business date a record lands in (docs/ARCHITECTURE.md,
"Business dates").

The rule under test: a record's business date is the ``business_date=`` folder it was delivered
in, never a date computed from its timestamps; timestamps are instants (an offset or ``Z`` is
honoured, a timestamp without one is UTC), so 23:59:59 vs 00:00:00, DST changes in the entities'
time zones and month or year ends move no record to another date. Record dates are checked
against the business date only where a rule says so (an FX rate's ``rate_date``).
"""

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import PartitionKeyRange

from assets.partitions import daily_partitions
from assets.sources import ingest_dates
from infra.lakehouse import LakehouseResource, TableRef
from transforms import contracts as c
from transforms.quarantine import quarantined_rows
from transforms.sources import classify_source, silver_source

# EU summer time starts 2026-03-29 01:00 UTC (Berlin 02:00 -> 03:00) and ends 2026-10-25 01:00
# UTC (Berlin 03:00 -> 02:00); New York's starts 2026-03-08 and ends 2026-11-01.
CASES = {
    date(2026, 3, 28): [
        ("last-second", "2026-03-28T23:59:59Z"),
        # 23:30 in New York is 03:30 UTC the next day: the folder, not the UTC date, decides.
        ("new-york-evening", "2026-03-28T23:30:00-04:00"),
    ],
    date(2026, 3, 29): [
        ("first-second", "2026-03-29T00:00:00Z"),
        ("berlin-before-jump", "2026-03-29T01:59:59+01:00"),
        ("berlin-after-jump", "2026-03-29T03:00:00+02:00"),
        # 02:30 does not exist in Berlin that night; without an offset it is 02:30 UTC.
        ("no-offset", "2026-03-29T02:30:00"),
    ],
    date(2026, 10, 25): [
        # Berlin's 02:30 happens twice that night; the offsets tell the two apart.
        ("berlin-first-0230", "2026-10-25T02:30:00+02:00"),
        ("berlin-second-0230", "2026-10-25T02:30:00+01:00"),
    ],
}
UTC_INSTANT = {
    "last-second": datetime(2026, 3, 28, 23, 59, 59),
    "new-york-evening": datetime(2026, 3, 29, 3, 30),
    "first-second": datetime(2026, 3, 29, 0, 0),
    "berlin-before-jump": datetime(2026, 3, 29, 0, 59, 59),
    "berlin-after-jump": datetime(2026, 3, 29, 1, 0),
    "no-offset": datetime(2026, 3, 29, 2, 30),
    "berlin-first-0230": datetime(2026, 10, 25, 0, 30),
    "berlin-second-0230": datetime(2026, 10, 25, 1, 30),
}
# FX rates at month and year end, one of them late: the 31 December rate sent on 1 January.
RATES = {
    date(2026, 11, 30): "2026-11-30",
    date(2026, 12, 1): "2026-12-01",
    date(2026, 12, 31): "2026-12-31",
    date(2027, 1, 1): "2026-12-31",
}


def _land_jsonl(root: Path, source: str, day: date, rows: list[dict]) -> None:
    folder = root / "landing" / source / f"business_date={day.isoformat()}"
    folder.mkdir(parents=True)
    (folder / f"{source}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def landed(spark, tmp_path_factory):
    """HR cases and FX rates landed around DST changes and month and year ends, in bronze."""
    root = tmp_path_factory.mktemp("business_day")
    for day, cases in CASES.items():
        rows = [{"case_id": case, "opened_at": at, "subject": "s"} for case, at in cases]
        _land_jsonl(root, c.HR_CASES.name, day, rows)
    for day, rate_date in RATES.items():
        rate = {"rate_date": rate_date, "currency": "EUR", "rate_to_usd": "1.1", "source": "ECB"}
        _land_jsonl(root, c.FX_RATES.name, day, [rate])
    lakehouse = LakehouseResource(root=str(root))
    ingest_dates(spark, lakehouse, c.HR_CASES, sorted(CASES))
    ingest_dates(spark, lakehouse, c.FX_RATES, sorted(RATES))
    return lakehouse


def _classified(spark, lakehouse, contract, day):
    bronze = lakehouse.read_partition(spark, TableRef("bronze", contract.name), day)
    return bronze.transform(classify_source(contract)).cache()


def test_a_record_lands_in_the_folders_date_whatever_its_timestamp(spark, landed):
    for day, cases in CASES.items():
        classified = _classified(spark, landed, c.HR_CASES, day)
        silver = {
            r["case_id"]: r for r in classified.transform(silver_source(c.HR_CASES)).collect()
        }
        assert classified.transform(quarantined_rows(c.HR_CASES)).count() == 0
        assert sorted(silver) == sorted(case for case, _ in cases)
        for case, row in silver.items():
            assert row["business_date"] == day, case
            # Timestamps are instants in UTC (the session's time zone), offsets honoured.
            assert row["opened_at"] == UTC_INSTANT[case], case


def test_dst_keeps_instants_apart_as_they_happened(spark, landed):
    at = {
        r["case_id"]: r["opened_at"]
        for day in CASES
        for r in _classified(spark, landed, c.HR_CASES, day)
        .transform(silver_source(c.HR_CASES))
        .collect()
    }
    # Berlin's clock jumps from 01:59:59 to 03:00:00: one second apart.
    assert at["berlin-after-jump"] - at["berlin-before-jump"] == timedelta(seconds=1)
    # The repeated 02:30 in October: one hour apart, not the same instant.
    assert at["berlin-second-0230"] - at["berlin-first-0230"] == timedelta(hours=1)


def test_month_and_year_end_rates_belong_to_their_own_date(spark, landed):
    outcome = {}
    for day in RATES:
        classified = _classified(spark, landed, c.FX_RATES, day)
        accepted = classified.transform(silver_source(c.FX_RATES)).collect()
        rejected = classified.transform(quarantined_rows(c.FX_RATES)).collect()
        outcome[day] = (
            [(r["business_date"], r["rate_date"]) for r in accepted],
            [(r["business_date"], r["reason_code"]) for r in rejected],
        )
    for day in (date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 31)):
        assert outcome[day] == ([(day, day)], [])
    # The late 31 December rate sent on 1 January stays on 1 January, rejected: a rate is the
    # rate of its own business date, never filed under another one.
    new_year = date(2027, 1, 1)
    assert outcome[new_year] == ([], [(new_year, "DATE_OUT_OF_RANGE")])


def test_daily_partitions_are_utc_calendar_dates_one_per_day():
    # No DST day is missing or doubled, and the year turns over cleanly.
    for first, last in [
        (date(2026, 3, 7), date(2026, 3, 30)),
        (date(2026, 10, 24), date(2026, 11, 2)),
        (date(2026, 12, 30), date(2027, 1, 2)),
    ]:
        keys = daily_partitions.get_partition_keys_in_range(
            PartitionKeyRange(first.isoformat(), last.isoformat())
        )
        days = (last - first).days + 1
        assert keys == [(first + timedelta(days=i)).isoformat() for i in range(days)]
    assert daily_partitions.timezone == "UTC"
