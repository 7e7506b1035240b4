"""The run's Spark session is built on first use, once; planning a skip never builds it.

Spark-free: the session is a stand-in object, and the versions ledger of a local lakehouse is
written with delta-rs, as the pipeline's own ledger writes are.
"""

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from infra import versions
from infra.lakehouse import LakehouseResource
from infra.spark import SparkResource
from infra.versions import Step, Upstream

D = date(2026, 3, 31)


class Built:
    """What the patched ``SparkResource._build`` returns: one object per build, counted."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self) -> object:
        with self.lock:
            self.count += 1
        time.sleep(0.2)  # a slow build: every other thread asks meanwhile
        return object()


def _resource(monkeypatch: pytest.MonkeyPatch) -> tuple[SparkResource, Built]:
    built = Built()
    monkeypatch.setattr(SparkResource, "_build", lambda self: built())
    resource = SparkResource()
    resource.setup_for_execution(None)
    return resource, built


def test_the_session_is_built_once_under_concurrent_first_use(monkeypatch):
    resource, built = _resource(monkeypatch)
    assert not resource.built and built.count == 0  # the run started: nothing built yet
    got: list[object] = []
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        got.append(resource.session)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built.count == 1 and resource.builds == 1 and resource.built
    assert len(got) == 8 and all(s is got[0] for s in got)
    assert resource.get_session() is got[0] and built.count == 1


def test_outside_a_run_the_resource_refuses_to_build():
    with pytest.raises(RuntimeError, match="outside a Dagster run"):
        SparkResource().get_session()


def _record(lakehouse: LakehouseResource, step: Step, plan: versions.VersionPlan) -> None:
    """``versions.record`` of every date of ``plan``, written with delta-rs (no Spark)."""
    rows = [
        {
            "asset": step.asset,
            "business_date": day,
            "input_version": plan.input_versions[day],
            "code_version": step.code_version,
            "run_id": "run-1",
            "at": datetime.now(UTC),
        }
        for day in plan.days
    ]
    schema = pa.schema(
        [
            ("asset", pa.string()),
            ("business_date", pa.date32()),
            ("input_version", pa.string()),
            ("code_version", pa.string()),
            ("run_id", pa.string()),
            ("at", pa.timestamp("us", tz="UTC")),
        ]
    )
    write_deltalake(
        lakehouse.path(versions.DATA_VERSIONS),
        pa.Table.from_pylist(rows, schema=schema),
        mode="append",
        partition_by=["business_date"],
    )


def test_planning_unchanged_dates_never_builds_the_session(monkeypatch, tmp_path):
    resource, built = _resource(monkeypatch)
    lakehouse = LakehouseResource(root=str(tmp_path / "lh"))
    bronze = Step("bronze_a", "assets.sources")
    silver = Step("silver_a", "assets.sources", (Upstream("bronze_a"),))
    days = [D - timedelta(days=1), D]
    for day in days:
        folder = tmp_path / "lh" / "landing" / "a" / f"business_date={day.isoformat()}"
        folder.mkdir(parents=True)
        (folder / "a.csv").write_text(f"id,amount\n1,{day.day}.00\n")

    landing = versions.landed_fingerprints(resource.get_session, lakehouse, "a", days)
    first = versions.plan(resource.get_session, lakehouse, bronze, days, landing=landing)
    assert first.to_run == days
    _record(lakehouse, bronze, first)
    _record(lakehouse, silver, versions.plan(resource.get_session, lakehouse, silver, days))

    again = versions.landed_fingerprints(resource.get_session, lakehouse, "a", days)
    assert again == landing
    assert versions.plan(resource.get_session, lakehouse, bronze, days, landing=again).skipped == (
        days
    )
    assert versions.plan(resource.get_session, lakehouse, silver, days).to_run == []
    # Everything above read the ledger and the landing folders without Spark.
    assert built.count == 0 and not resource.built
    # A file re-sent for one date: that date is to be computed (the step then asks for Spark).
    (tmp_path / "lh" / "landing" / "a" / f"business_date={D.isoformat()}" / "b.csv").write_text(
        "id,amount\n2,1.00\n"
    )
    changed = versions.landed_fingerprints(resource.get_session, lakehouse, "a", days)
    assert versions.plan(resource.get_session, lakehouse, bronze, days, landing=changed).to_run == [
        D
    ]
    assert built.count == 0
