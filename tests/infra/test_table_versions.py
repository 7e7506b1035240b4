"""A table's Delta version, read off a local log without Spark."""

import pytest

from infra.lakehouse import LakehouseResource, TableRef

LEDGER = TableRef("ops", "ledger_versions")


def _no_spark():
    raise AssertionError("a local table's version is read without a Spark session")


def test_a_never_written_table_has_no_version_and_version_says_so(tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path))
    assert lakehouse.current_version(_no_spark, LEDGER) is None
    with pytest.raises(ValueError, match=r"ops\.ledger_versions has never been written"):
        lakehouse.version(_no_spark, LEDGER)


def test_each_commit_is_the_next_version(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    lakehouse = LakehouseResource(root=str(tmp_path))
    for expected in range(3):
        write_deltalake(
            str(tmp_path / "ops" / "ledger_versions"), pa.table({"n": [expected]}), mode="append"
        )
        assert lakehouse.current_version(_no_spark, LEDGER) == expected
        assert lakehouse.version(_no_spark, LEDGER) == expected
