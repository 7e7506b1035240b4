"""The Spark driver's class archive: which drivers are told to map it, and that the tests' driver
really does (scripts/build_class_archive.py, built by `make setup`)."""

import os
from pathlib import Path

import pytest

import infra.spark
from infra.spark import class_archive_path, spark_conf

FLAG = "-XX:SharedArchiveFile="


def _archive_options(conf: dict[str, str]) -> list[str]:
    return [o for o in conf["spark.driver.extraJavaOptions"].split() if o.startswith(FLAG)]


def test_a_driver_maps_the_archive_when_it_exists_and_only_then(monkeypatch, tmp_path):
    monkeypatch.delenv("SPARK_CONF", raising=False)
    archive = tmp_path / "driver-classes.jsa"
    monkeypatch.setattr(infra.spark, "class_archive_path", lambda: archive)
    assert _archive_options(spark_conf("local[2]", "/tmp/warehouse")) == []
    archive.write_bytes(b"archive")
    for long_lived in (False, True):
        conf = spark_conf("local[2]", "/tmp/warehouse", long_lived=long_lived)
        assert _archive_options(conf) == [f"{FLAG}{archive}"]
    # The driver that writes the archive must not map one.
    assert _archive_options(spark_conf("local[2]", "/tmp/warehouse", use_class_archive=False)) == []


def test_one_archive_per_java_installation(monkeypatch, tmp_path):
    first = tmp_path / "jdk-a"
    second = tmp_path / "jdk-b"
    monkeypatch.setenv("JAVA_HOME", str(first))
    a = class_archive_path()
    monkeypatch.setenv("JAVA_HOME", str(second))
    b = class_archive_path()
    assert a != b and a.parent == b.parent
    assert a.name.startswith("driver-classes-") and a.suffix == ".jsa"


def _mapped_files(spark) -> set[str]:
    """The files the driver JVM has mapped into memory (Linux: ``/proc/<pid>/maps``)."""
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    maps = Path(f"/proc/{pid}/maps")
    if not maps.exists():
        pytest.skip("no /proc here to read the driver's mappings from")
    return {line.split()[-1] for line in maps.read_text().splitlines() if len(line.split()) >= 6}


def test_the_tests_driver_maps_the_archive_make_setup_built(spark):
    archive: Path = class_archive_path()
    if not archive.is_file():
        if os.environ.get("REQUIRE_CLASS_ARCHIVE"):
            pytest.fail(f"no class archive at {archive}: make setup did not build one")
        pytest.skip(f"no class archive at {archive} (make setup builds it)")
    # A JVM that refused the archive (another build, another class path) would not map it.
    assert str(archive) in _mapped_files(spark)
