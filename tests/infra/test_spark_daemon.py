"""A local driver's Python workers fork from infra/spark_daemon.py: the installed, compiled
pyspark, no archive on their import path, the UDFs' modules already imported."""

import pandas as pd

from infra.spark import spark_conf


def _worker_state(batches):
    import sys

    import pyspark

    for _ in batches:
        yield pd.DataFrame(
            {
                "pyspark": [pyspark.__file__],
                "archives": [
                    [p for p in sys.path if p.endswith((".zip", ".jar")) and "spark" in p]
                ],
                "preloaded": [
                    [
                        m
                        for m in ("transforms.enrich", "enrichment.group_summary")
                        if m in sys.modules
                    ]
                ],
            }
        )


def test_python_workers_start_from_the_projects_daemon(spark):
    [state] = (
        spark.range(1)
        .mapInPandas(
            _worker_state, "pyspark string, archives array<string>, preloaded array<string>"
        )
        .collect()
    )
    assert "/site-packages/pyspark/" in state["pyspark"] and ".zip" not in state["pyspark"]
    assert state["archives"] == []
    assert state["preloaded"] == ["transforms.enrich", "enrichment.group_summary"]


def test_only_a_local_driver_names_the_daemon():
    assert spark_conf("local[2]", "/tmp/w")["spark.python.daemon.module"] == "infra.spark_daemon"
    assert "spark.python.daemon.module" not in spark_conf("spark://host:7077", "/tmp/w")
