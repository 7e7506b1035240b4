"""Case 1, kill -9 mid-write: a writer process killed inside a gold publish.

Each child (``tests/reliability/children.py``) publishes a date with 3 lines, then republishes it
with 6 other lines, through the gate, and is killed with SIGKILL to its whole process group:
inside the gold write (its first data file is on disk, the commit is not), or after gold's commit
and before the ledger's. Both children start at once (their JVMs start side by side), then the
uninterrupted reference is computed here while they start.
"""

from pathlib import Path

import pytest

from infra import wap
from infra.lakehouse import LakehouseResource
from tests.reliability.children import (
    NEW,
    OLD,
    Child,
    gold_rows,
    run_gate,
    table_digests,
    uncommitted_files,
)
from tests.reliability.invariants import assert_invariants, violations

pytestmark = pytest.mark.slow
SCENARIOS = ("crash-gold-write", "crash-ledger")


def _content(rows: list[dict]) -> list[tuple]:
    return sorted((r["report_id"], r["line_id"], r["merchant"]) for r in rows)


def _converged(root: Path) -> dict[str, str]:
    return {k: v for k, v in table_digests(root).items() if not k.startswith("ops.")}


@pytest.fixture(scope="module")
def crashes(spark, tmp_path_factory):
    """Per scenario: (lakehouse root, its child), which publishes OLD, then NEW and dies."""
    started = {}
    for scenario in SCENARIOS:
        root = tmp_path_factory.mktemp(scenario)
        started[scenario] = (root, Child(scenario, root, root.parent / f"{root.name}-work"))
    yield started
    for _, child in started.values():
        child.kill()


@pytest.fixture(scope="module")
def reference(spark, tmp_path_factory, crashes):
    """Gold and staging of the same two runs, uninterrupted."""
    root = tmp_path_factory.mktemp("uninterrupted")
    lakehouse = LakehouseResource(root=str(root))
    run_gate(spark, lakehouse, OLD, OLD[0]["business_date"], "first")
    run_gate(spark, lakehouse, NEW, NEW[0]["business_date"], "second")
    return _converged(root)


def test_kill_9_inside_a_gold_write_leaves_the_old_date_and_a_rerun_converges(
    spark, crashes, reference
):
    root, child = crashes["crash-gold-write"]
    gold_path = str(root / "gold" / wap.GoldTable("expense_lines").name)
    child.wait_for(
        lambda: child.held("g") and bool(uncommitted_files(gold_path)),
        "a data file of the gold write",
    )
    child.kill()
    lakehouse = LakehouseResource(root=str(root))

    # The killed write left its data file, referenced by no version; every table reads.
    assert uncommitted_files(gold_path)
    table_digests(root)
    assert gold_rows(root) == _content(OLD)
    assert_invariants(spark, lakehouse)

    run_gate(spark, lakehouse, NEW, NEW[0]["business_date"], "rerun")
    assert gold_rows(root) == _content(NEW)
    assert _converged(root) == reference
    assert_invariants(spark, lakehouse)


def test_kill_9_between_the_gold_commit_and_its_ledger_row_is_recorded_by_the_rerun(
    spark, crashes, reference
):
    root, child = crashes["crash-ledger"]
    child.wait_for(lambda: child.held("ledger"), "the ledger append of the publish")
    child.kill()
    lakehouse = LakehouseResource(root=str(root))
    gold_version = lakehouse.version(spark, wap.GoldTable("expense_lines").gold)

    # Gold committed the new content whole; only the ledger's record of it is missing.
    table_digests(root)
    assert gold_rows(root) == _content(NEW)
    assert violations(spark, lakehouse) == [
        f"gold.expense_lines version {gold_version} (WRITE) was not published through "
        "write-audit-publish"
    ]

    run_gate(spark, lakehouse, NEW, NEW[0]["business_date"], "rerun")
    recovered = lakehouse.read_rows(
        spark,
        wap.WAP_LEDGER,
        ["run_id", "staged_version"],
        equals={"event": "published", "gold_version": gold_version},
    )
    assert [r["run_id"] for r in recovered] == ["crashed"]
    assert _converged(root) == reference
    assert_invariants(spark, lakehouse)
