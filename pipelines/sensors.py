"""Sensors: start the close for a date when its files land; say so when a source is late."""

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from infra.lakehouse import LakehouseResource
from pipelines.jobs import daily_close_job
from transforms.contracts import CONTRACTS

# Sources the close needs every day, and by when (UTC, the morning after the business date) they
# are due. Sources that land only some days (payroll on pay dates) join the run when present.
EXPECTED_SOURCES = tuple(c.name for c in CONTRACTS.values() if c.lands_daily)
OCCASIONAL_SOURCES = tuple(c.name for c in CONTRACTS.values() if not c.lands_daily)
DUE_BY = time(6, 0)
LOOKBACK_DAYS = 7


def landed_files(lakehouse: LakehouseResource, source: str, day: date) -> list[Path]:
    """The data files that have landed for a source and date (local lakehouses)."""
    folder = Path(lakehouse.landing_path(source, day).removeprefix("file://"))
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))


def landing_fingerprint(files: list[Path]) -> str:
    """Changes when a file is added, replaced or rewritten: a new run key for the date."""
    return ";".join(f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in files)


def utc_now() -> datetime:
    """The sensor's clock (replaced in tests)."""
    return datetime.now(UTC)


@sensor(
    job=daily_close_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description=__doc__,
)
def landing_zone_sensor(context: SensorEvaluationContext, lakehouse: LakehouseResource):
    """Request the close for each recent date whose expected sources have all landed."""
    now = utc_now()
    requests, late = [], []
    for offset in range(1, LOOKBACK_DAYS + 1):
        day = (now - timedelta(days=offset)).date()
        files = {s: landed_files(lakehouse, s, day) for s in EXPECTED_SOURCES}
        missing = [s for s, found in files.items() if not found]
        if missing:
            due = datetime.combine(day + timedelta(days=1), DUE_BY, tzinfo=UTC)
            if offset == 1 and now >= due:
                late.append(f"{', '.join(missing)} for {day} (due {due:%Y-%m-%d %H:%M} UTC)")
            continue
        files.update({s: landed_files(lakehouse, s, day) for s in OCCASIONAL_SOURCES})
        fingerprint = "|".join(landing_fingerprint(f) for f in files.values())
        requests.append(
            RunRequest(
                partition_key=day.isoformat(),
                run_key=f"{day}:{hashlib.sha1(fingerprint.encode()).hexdigest()[:16]}",
            )
        )
    if late:
        context.log.warning("late sources: " + "; ".join(late))
    if not requests:
        return SkipReason("late: " + "; ".join(late) if late else "no complete landing yet")
    return SensorResult(run_requests=requests)
