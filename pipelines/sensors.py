"""Sensors: start the close for a date when its files land; say so when a source is late."""

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import time as wall_clock

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets import documents
from infra.lakehouse import LakehouseResource
from infra.landing import in_progress_files, is_data_file
from infra.settings import landing_settle_seconds
from pipelines.jobs import daily_close_job
from transforms.contracts import CONTRACTS

# Sources the close needs every day, and by when (UTC, the morning after the business date) they
# are due. Sources that land only some days (payroll on pay dates) join the run when present.
EXPECTED_SOURCES = tuple(c.name for c in CONTRACTS.values() if c.lands_daily)
OCCASIONAL_SOURCES = tuple(c.name for c in CONTRACTS.values() if not c.lands_daily)
# Document folders (PDFs and scans) land when vendors send them: never awaited, but a document
# that lands for a date changes its run key (the date is closed again with it), and a document
# still being written holds the date back like any other file.
DOCUMENT_SOURCES = (documents.INVOICES.source, documents.CONTRACTS.source)
# Each landing folder the sensor looks at, with the kind of files it must hold.
FILE_FORMATS = {
    **{name: contract.file_format for name, contract in CONTRACTS.items()},
    **{name: "documents" for name in DOCUMENT_SOURCES},
}
DUE_BY = time(6, 0)
LOOKBACK_DAYS = 7


def _folder(lakehouse: LakehouseResource, source: str, day: date) -> Path:
    return Path(lakehouse.landing_path(source, day).removeprefix("file://"))


def landed_files(lakehouse: LakehouseResource, source: str, day: date) -> list[Path]:
    """The data files that have landed for a source and date (local lakehouses)."""
    folder = _folder(lakehouse, source, day)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if is_data_file(p))


def still_arriving(lakehouse: LakehouseResource, day: date, settle_seconds: float) -> list[str]:
    """Files of a date that are not ready: under a temporary name (not the contract's file
    type: a transfer in progress), or modified less than ``settle_seconds`` ago."""
    waiting = []
    for name, file_format in FILE_FORMATS.items():
        folder = _folder(lakehouse, name, day)
        waiting += [
            f"{name}/{p.name} (temporary name)" for p in in_progress_files(folder, file_format)
        ]
        if settle_seconds > 0:
            waiting += [
                f"{name}/{p.name} (modified {age:.0f} s ago)"
                for p in landed_files(lakehouse, name, day)
                if (age := wall_clock() - p.stat().st_mtime) < settle_seconds
            ]
    return waiting


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
    settle = landing_settle_seconds()
    requests, late, arriving = [], [], []
    for offset in range(1, LOOKBACK_DAYS + 1):
        day = (now - timedelta(days=offset)).date()
        files = {s: landed_files(lakehouse, s, day) for s in EXPECTED_SOURCES}
        missing = [s for s, found in files.items() if not found]
        if missing:
            due = datetime.combine(day + timedelta(days=1), DUE_BY, tzinfo=UTC)
            if offset == 1 and now >= due:
                late.append(f"{', '.join(missing)} for {day} (due {due:%Y-%m-%d %H:%M} UTC)")
            continue
        waiting = still_arriving(lakehouse, day, settle)
        if waiting:
            # A run now would read a half-written file; the next tick looks again.
            arriving.append(f"{day}: {', '.join(waiting)}")
            continue
        files.update(
            {s: landed_files(lakehouse, s, day) for s in (*OCCASIONAL_SOURCES, *DOCUMENT_SOURCES)}
        )
        fingerprint = "|".join(landing_fingerprint(f) for f in files.values())
        requests.append(
            RunRequest(
                partition_key=day.isoformat(),
                run_key=f"{day}:{hashlib.sha1(fingerprint.encode()).hexdigest()[:16]}",
            )
        )
    if late:
        context.log.warning("late sources: " + "; ".join(late))
    if arriving:
        context.log.info("files still arriving: " + "; ".join(arriving))
    if not requests:
        reasons = [f"late: {'; '.join(late)}"] if late else []
        reasons += [f"still arriving: {'; '.join(arriving)}"] if arriving else []
        return SkipReason(" | ".join(reasons) or "no complete landing yet")
    return SensorResult(run_requests=requests)
