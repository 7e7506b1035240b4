"""The project's Spark settings and the operator's overrides (Spark-free: no session is built)."""

import pytest

from infra.spark import spark_conf


def test_spark_conf_from_the_environment_wins_over_the_projects(monkeypatch):
    monkeypatch.setenv("SPARK_CONF", "spark.sql.shuffle.partitions=1  spark.executor.memory=8g\n")
    conf = spark_conf("local[2]", "/tmp/warehouse", {"spark.sql.shuffle.partitions": "4"})
    assert conf["spark.sql.shuffle.partitions"] == "1"
    assert conf["spark.executor.memory"] == "8g"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_without_spark_conf_the_callers_tuning_stands(monkeypatch):
    monkeypatch.delenv("SPARK_CONF", raising=False)
    conf = spark_conf("local[2]", "/tmp/warehouse", {"spark.sql.shuffle.partitions": "4"})
    assert conf["spark.sql.shuffle.partitions"] == "4"


@pytest.mark.parametrize("item", ["shuffle=1", "spark.ui.enabled", "fs.s3a.key=x"])
def test_a_malformed_item_is_refused_by_name(monkeypatch, item):
    monkeypatch.setenv("SPARK_CONF", item)
    with pytest.raises(ValueError, match="SPARK_CONF"):
        spark_conf("local[2]", "/tmp/warehouse")
