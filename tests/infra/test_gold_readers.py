"""Analysts read gold without Spark: delta-rs (``deltalake``) and DuckDB over its Arrow dataset.

DuckDB's own ``delta`` extension is downloaded at first use, which an offline machine cannot do;
DuckDB reads gold through delta-rs's Arrow dataset instead (zero-copy, same SQL).
"""

from datetime import timedelta

import duckdb
import pytest
from deltalake import DeltaTable

from infra.lakehouse import LakehouseResource
from tests.gold_helpers import DAY, GOLD, gate, line


@pytest.fixture
def gold_path(spark, lakehouse_root) -> str:
    gate(spark, [line(i, DAY - timedelta(days=1)) for i in range(3)], DAY - timedelta(days=1))
    gate(spark, [line(i) for i in range(5)])
    return LakehouseResource().path(GOLD.gold)


def test_deltalake_reads_gold_with_its_constraints_and_history(spark, gold_path):
    table = DeltaTable(gold_path)
    assert table.to_pyarrow_table().num_rows == 8
    # Reader protocol stays within what delta-rs supports (no deletion vectors, no v2 checkpoints).
    protocol = table.protocol()
    assert protocol.min_reader_version <= 3
    assert "deletionVectors" not in (protocol.reader_features or [])
    assert "delta.constraints.amount_in_range" in table.metadata().configuration
    # Time travel without Spark: the version before the second publish had only the first date.
    first_publish = DeltaTable(gold_path, version=table.version() - 1)
    assert first_publish.to_pyarrow_table().num_rows == 3


def test_duckdb_queries_gold_through_arrow(spark, gold_path):
    dataset = DeltaTable(gold_path).to_pyarrow_dataset()
    connection = duckdb.connect()
    connection.register("expense_lines", dataset)
    rows = connection.execute(
        "SELECT business_date, count(*) AS n, sum(amount) AS total FROM expense_lines "
        "WHERE enrichment_status = 'ok' GROUP BY business_date ORDER BY business_date"
    ).fetchall()
    assert [(str(r[0]), r[1], float(r[2])) for r in rows] == [
        (str(DAY - timedelta(days=1)), 3, 70.5),
        (str(DAY), 5, 117.5),
    ]
