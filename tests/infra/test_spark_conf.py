"""The project's Spark settings and the operator's overrides (Spark-free: no session is built)."""

import pytest

from infra.spark import SMALL_DATA_JAVA_OPTIONS, spark_conf


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


@pytest.mark.parametrize(
    ("master", "profile", "codegen", "partitions"),
    [
        ("local[*]", None, "false", "1"),  # a local master defaults to the small-data profile
        ("spark://127.0.0.1:7077", None, None, "4"),  # a cluster to Spark's own defaults
        ("local[*]", "large", None, "4"),
        ("yarn", "small", "false", "1"),
    ],
)
def test_the_profile_follows_the_master_unless_chosen(
    monkeypatch, master, profile, codegen, partitions
):
    monkeypatch.delenv("SPARK_CONF", raising=False)
    if profile is None:
        monkeypatch.delenv("SPARK_PROFILE", raising=False)
    else:
        monkeypatch.setenv("SPARK_PROFILE", profile)
    conf = spark_conf(master, "/tmp/warehouse")
    assert conf.get("spark.sql.codegen.wholeStage") == codegen
    assert conf["spark.sql.shuffle.partitions"] == partitions
    # The small profile's JVM compiles with C1 only; the large keeps the JVM's defaults. The
    # project's own driver options (logging, the metastore's home) stay either way.
    java = conf["spark.driver.extraJavaOptions"].split()
    assert ("-XX:TieredStopAtLevel=1" in java) == (codegen == "false")
    assert any(o.startswith("-Dlog4j.configurationFile=") for o in java)


def test_an_unknown_profile_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("SPARK_PROFILE", "tiny")
    with pytest.raises(ValueError, match="SPARK_PROFILE"):
        spark_conf("local[2]", "/tmp/warehouse")


def test_spark_conf_wins_over_the_profile(monkeypatch):
    monkeypatch.setenv("SPARK_PROFILE", "small")
    monkeypatch.setenv("SPARK_CONF", "spark.sql.adaptive.enabled=true")
    assert spark_conf("local[2]", "/tmp/warehouse")["spark.sql.adaptive.enabled"] == "true"


def test_a_long_lived_driver_keeps_the_jvms_own_compiler(monkeypatch):
    monkeypatch.delenv("SPARK_CONF", raising=False)
    monkeypatch.setenv("SPARK_PROFILE", "small")
    key = "spark.driver.extraJavaOptions"
    short = spark_conf("local[2]", "/tmp/warehouse")[key]
    long = spark_conf("local[2]", "/tmp/warehouse", long_lived=True)[key]
    assert "-XX:TieredStopAtLevel=1" in short.split()
    assert "-XX:TieredStopAtLevel=1" not in long.split()
    assert long.split() == [o for o in short.split() if o not in SMALL_DATA_JAVA_OPTIONS]
