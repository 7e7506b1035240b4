"""Where the Delta jars are cached and how a missing or mismatched set is reported (no Spark)."""

import json

import pytest

from infra.jars import DeltaJarsError, delta_coordinates, delta_jar_paths, jar_cache_dir
from infra.settings import PROJECT_ROOT


def test_the_default_cache_is_inside_the_project(monkeypatch):
    monkeypatch.delenv("DELTA_JARS_DIR", raising=False)
    assert jar_cache_dir(None, "4.1.4", "4.4.0") == (
        PROJECT_ROOT / ".cache" / "jars" / "spark-4.1.4_delta-4.4.0"
    )


def test_the_environment_moves_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DELTA_JARS_DIR", str(tmp_path))
    assert jar_cache_dir(None, "4.1.4", "4.4.0") == tmp_path / "spark-4.1.4_delta-4.4.0"


def test_coordinates_follow_spark_minor_and_delta_version():
    assert delta_coordinates("4.1.4", "4.4.0") == [
        "io.delta:delta-spark_4.1_2.13:4.4.0",
        "io.delta:delta-storage:4.4.0",
    ]


def test_missing_and_mismatched_jars_say_how_to_fetch(tmp_path):
    with pytest.raises(DeltaJarsError, match="make jars"):
        delta_jar_paths(tmp_path)
    import pyspark

    target = jar_cache_dir(tmp_path, pyspark.__version__, _delta_version())
    target.mkdir(parents=True)
    (target / "manifest.json").write_text(
        json.dumps({"spark": "0.0.0", "delta": "0.0.0", "coordinates": [], "jars": []})
    )
    with pytest.raises(DeltaJarsError, match=r"were fetched for Spark 0\.0\.0"):
        delta_jar_paths(tmp_path)


def _delta_version() -> str:
    from importlib.metadata import version

    return version("delta-spark")


def test_a_manifest_naming_a_deleted_jar_is_reported(tmp_path):
    import pyspark

    target = jar_cache_dir(tmp_path, pyspark.__version__, _delta_version())
    target.mkdir(parents=True)
    (target / "manifest.json").write_text(
        json.dumps(
            {
                "spark": pyspark.__version__,
                "delta": _delta_version(),
                "coordinates": [],
                "jars": ["gone.jar"],
            }
        )
    )
    with pytest.raises(DeltaJarsError, match=r"gone\.jar"):
        delta_jar_paths(tmp_path)
