"""Case 3, concurrent writers: another process writes the same tables while this one does.

The writer of the other process (``tests/reliability/children.py``, scenario ``concurrent``) has
its own Spark driver and metastore and writes by path, as every project write does; it is held
inside each of its writes (its Delta transaction open, its first data file written) while this
process commits to the same table, then let go:

1. a backfill of D - 1 held inside its gold publish while the nightly run publishes D: disjoint
   dates, both commit, neither retries;
2. the same date D, held inside its staging write while this process runs D through the gate:
   the child's commit loses, is retried once (``infra/lakehouse.py::retry_conflicts``), and the
   end state equals the two runs one after the other;
3. the enrichment cache merge of keys k0..k9, held while this process merges k5..k14: one row
   per key.
"""

import pytest
from deltalake import DeltaTable as RustDeltaTable

from infra.enrichment_engine import LLM_CACHE, insert_absent_keys
from infra.lakehouse import LakehouseResource
from tests.reliability.children import (
    BACKFILL,
    CHILD_NEW,
    DAY,
    NEW,
    OLD,
    PREVIOUS_DAY,
    Child,
    gold_rows,
    run_gate,
    table_digests,
)
from tests.reliability.invariants import assert_invariants
from transforms.frames import local_frame

pytestmark = pytest.mark.slow


def _content(rows: list[dict]) -> list[tuple]:
    return sorted((r["report_id"], r["line_id"], r["merchant"]) for r in rows)


def _retries(child: Child, table: str) -> int:
    return sum(
        1
        for line in child.err.read_text().splitlines()
        if f"{table}: " in line and "writing again" in line
    )


def test_two_processes_writing_the_same_tables_end_as_a_serial_run(spark, tmp_path):
    root = tmp_path / "lakehouse"
    lakehouse = LakehouseResource(root=str(root))
    child = Child("concurrent", root, tmp_path / "child")
    # While the child's JVM starts: the tables' first versions, and the two runs of the child
    # one after the other (in the order their commits land below), the serial reference.
    run_gate(spark, lakehouse, OLD, DAY, "first")
    serial = tmp_path / "serial"
    serial_lakehouse = LakehouseResource(root=str(serial))
    run_gate(spark, serial_lakehouse, BACKFILL, PREVIOUS_DAY, "backfill")
    run_gate(spark, serial_lakehouse, CHILD_NEW, DAY, "rerun")
    child.go("start")

    # 1. Nightly D while the backfill of D - 1 is inside its gold commit.
    child.wait_for(lambda: child.held("a"), "the backfill's gold write")
    run_gate(spark, lakehouse, NEW, DAY, "nightly")
    child.go("a")
    child.wait_for(lambda: len(child.reports()) >= 1, "the backfill's end")
    assert child.reports()[0]["published"] == [str(PREVIOUS_DAY)]
    assert gold_rows(root, DAY) == _content(NEW)
    assert gold_rows(root, PREVIOUS_DAY) == _content(BACKFILL)
    assert _retries(child, "gold.expense_lines") == 0

    # 2. The same date: this process stages, audits and publishes D inside the child's staging
    # write of D; the child's commit loses once, and its run then ends as if it ran second.
    child.wait_for(lambda: child.held("b"), "the second run's staging write")
    run_gate(spark, lakehouse, OLD, DAY, "nightly-again")
    assert gold_rows(root, DAY) == _content(OLD)
    child.go("b")
    child.wait_for(lambda: len(child.reports()) >= 2, "the second run's end")
    assert _retries(child, "staging.expense_lines") == 1
    assert gold_rows(root, DAY) == _content(CHILD_NEW)

    # 3. The cache: both merges insert only keys that are absent when they commit.
    child.wait_for(lambda: child.held("c"), "the child's cache merge")
    mine = local_frame(
        spark, [(f"k{i}", "parent") for i in range(5, 15)], "input_hash string, answer string"
    )
    insert_absent_keys(lakehouse, LLM_CACHE, mine)
    child.go("c")
    child.finish()
    assert _retries(child, "ops.llm_cache") >= 1
    cache = RustDeltaTable(lakehouse.path(LLM_CACHE)).to_pyarrow_table().to_pylist()
    assert sorted(r["input_hash"] for r in cache) == sorted(f"k{i}" for i in range(15))
    assert {r["input_hash"]: r["answer"] for r in cache} == {
        **{f"k{i}": "child" for i in range(5)},
        **{f"k{i}": "parent" for i in range(5, 15)},
    }

    # The end state is the serial run's.
    for table in ("gold.expense_lines", "staging.expense_lines"):
        assert table_digests(root)[table] == table_digests(serial)[table], table
    assert_invariants(spark, lakehouse)
