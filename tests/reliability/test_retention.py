"""Case 7, retention: time travel works inside the audit window, and VACUUM cannot cut into it.

The window is ``LAKEHOUSE_TIME_TRAVEL_DAYS`` (30 by default), set on every table the lakehouse
creates (``infra/spark.py``). A date is published twice, so the first publish's files are no
longer in gold's current version: exactly the files a VACUUM would remove.
"""

import pytest

from infra import wap
from infra.lakehouse import LakehouseResource
from infra.settings import time_travel_days
from infra.spark import spark_conf
from tests.gold_helpers import DAY, GOLD, KEY_UNIQUE, SCHEMA, line
from tests.reliability.invariants import assert_invariants
from transforms.frames import local_frame

WINDOW = f"interval {time_travel_days()} days"


def publish(spark, lakehouse: LakehouseResource, rows: list[dict], run_id: str) -> int:
    """Stage, audit and publish ``rows`` for DAY; the gold version."""
    staged = wap.stage(lakehouse, local_frame(spark, rows, SCHEMA), GOLD, DAY)
    assert wap.audit(lakehouse, spark, GOLD, DAY, staged, KEY_UNIQUE, run_id).passed
    return wap.publish(lakehouse, spark, GOLD, DAY, run_id)[1]


def _rows(spark, version: int | None = None) -> list[tuple]:
    df = LakehouseResource().read(spark, GOLD.gold, version)
    return sorted((r["report_id"], r["line_id"], r["merchant"]) for r in df.collect())


@pytest.fixture(scope="module")
def republished(spark, tmp_path_factory):
    """A date published with 3 lines, then republished with 6 other ones."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_ROOT", str(tmp_path_factory.mktemp("retention")))
        lakehouse = LakehouseResource()
        first_version = publish(spark, lakehouse, [line(i) for i in range(3)], "first")
        first = _rows(spark)
        publish(spark, lakehouse, [line(i, merchant="Lyft") for i in range(6)], "second")
        yield lakehouse, first_version, first


def test_every_table_keeps_the_audit_window(spark, republished):
    lakehouse, *_ = republished
    assert time_travel_days() == 30
    for table in (GOLD.gold, GOLD.staging, wap.WAP_LEDGER, wap.VALIDATION_RESULTS):
        properties = spark.sql(f"DESCRIBE DETAIL delta.`{lakehouse.path(table)}`").first()[
            "properties"
        ]
        assert properties["delta.logRetentionDuration"] == WINDOW, table
        assert properties["delta.deletedFileRetentionDuration"] == WINDOW, table


def test_vacuum_as_configured_keeps_every_version_inside_the_window(spark, republished):
    lakehouse, first_version, first = republished
    spark.sql(f"VACUUM {GOLD.gold.qualified}")
    assert _rows(spark, first_version) == first
    assert len(_rows(spark)) == 6
    # The ledger's every published version and the staged version it came from still read.
    assert_invariants(spark, lakehouse)


def test_vacuum_retain_0_hours_is_refused(spark, republished):
    # Delta's safety check stays on: the project never disables it, nor does the session.
    _, first_version, first = republished
    conf = spark_conf("local[1]", "/tmp/warehouse")
    assert conf.get("spark.databricks.delta.retentionDurationCheck.enabled", "true") == "true"
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled") == "true"
    with pytest.raises(Exception, match=r"RETENTION_PERIOD_TOO_SHORT(.|\n)*at least 720 hours"):
        spark.sql(f"VACUUM {GOLD.gold.qualified} RETAIN 0 HOURS")
    assert _rows(spark, first_version) == first
