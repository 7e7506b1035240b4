"""Case 1, kill -9 mid-write: a writer process killed inside the write-audit-publish gate.

A date is published with 3 lines through the gate (here, while the child's JVM starts) and the
lakehouse copied three times; the child (``tests/reliability/children.py``, scenario ``crash``)
republishes the date with 6 other lines in each copy, through the gate, and is killed with SIGKILL
to its whole process group once the three republishes stopped: one after gold's commit and before
the ledger's, one inside the staging write (before the audit: its first data file is on disk, the
commit is not), the last inside the gold write (likewise). The uninterrupted reference (the same
two runs) is computed here meanwhile.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import wap
from infra.lakehouse import LakehouseResource
from tests.reliability.children import (
    DAY,
    GOLD_WRITE,
    LEDGER,
    NEW,
    OLD,
    STAGE_WRITE,
    Child,
    gold_rows,
    run_gate,
    table_digests,
    uncommitted_files,
)
from tests.reliability.invariants import assert_invariants, violations

pytestmark = pytest.mark.slow


def _content(rows: list[dict]) -> list[tuple]:
    return sorted((r["report_id"], r["line_id"], r["merchant"]) for r in rows)


def _converged(root: Path) -> dict[str, str]:
    return {k: v for k, v in table_digests(root).items() if not k.startswith("ops.")}


@dataclass(frozen=True)
class Crashed:
    """The killed child's three lakehouses, and the uninterrupted runs' tables (``_converged``)."""

    stage_write: Path
    gold_write: Path
    ledger: Path
    reference: dict[str, str]


@pytest.fixture(scope="module")
def crashed(spark, tmp_path_factory) -> Crashed:
    """The three republishes of the date, each stopped where its test says, then ``kill -9``."""
    base = tmp_path_factory.mktemp("crash")
    child = Child("crash", base, base.parent / f"{base.name}-work")
    try:
        uninterrupted = tmp_path_factory.mktemp("uninterrupted")
        lakehouse = LakehouseResource(root=str(uninterrupted))
        # The date as the previous run left it, in the child's three lakehouses too.
        run_gate(spark, lakehouse, OLD, DAY, "first")
        for name in (STAGE_WRITE, GOLD_WRITE, LEDGER):
            shutil.copytree(uninterrupted, base / name)
        child.go("start")
        run_gate(spark, lakehouse, NEW, DAY, "second")
        reference = _converged(uninterrupted)
        child.wait_for(lambda: child.held("ledger"), "the ledger append of the publish")
        staging_path = str(base / STAGE_WRITE / "staging" / wap.GoldTable("expense_lines").name)
        child.wait_for(
            lambda: child.held("s") and bool(uncommitted_files(staging_path)),
            "a data file of the staging write",
        )
        gold_path = str(base / GOLD_WRITE / "gold" / wap.GoldTable("expense_lines").name)
        child.wait_for(
            lambda: child.held("g") and bool(uncommitted_files(gold_path)),
            "a data file of the gold write",
        )
    finally:
        child.kill()
    return Crashed(base / STAGE_WRITE, base / GOLD_WRITE, base / LEDGER, reference)


def test_kill_9_inside_a_staging_write_publishes_nothing_and_a_rerun_converges(spark, crashed):
    root = crashed.stage_write
    table = wap.GoldTable("expense_lines")
    lakehouse = LakehouseResource(root=str(root))
    staged_before = lakehouse.version(spark, table.staging)

    # The killed staging write left its data file, referenced by no version: staging is still at
    # the first run's version, never audited again; gold holds the old date, the ledger nothing
    # new. Every table reads.
    assert uncommitted_files(str(root / "staging" / table.name))
    table_digests(root)
    assert gold_rows(root) == _content(OLD)
    ledger = lakehouse.read_rows(spark, wap.WAP_LEDGER, ["event", "staged_version", "run_id"])
    assert sorted((r["event"], r["run_id"]) for r in ledger) == [
        ("audited", "first"),
        ("published", "first"),
    ]
    assert {r["staged_version"] for r in ledger} == {staged_before}
    assert_invariants(spark, lakehouse)

    run_gate(spark, lakehouse, NEW, NEW[0]["business_date"], "rerun")
    assert gold_rows(root) == _content(NEW)
    assert _converged(root) == crashed.reference
    assert_invariants(spark, lakehouse)


def test_kill_9_inside_a_gold_write_leaves_the_old_date_and_a_rerun_converges(spark, crashed):
    root = crashed.gold_write
    gold_path = str(root / "gold" / wap.GoldTable("expense_lines").name)
    lakehouse = LakehouseResource(root=str(root))

    # The killed write left its data file, referenced by no version; every table reads.
    assert uncommitted_files(gold_path)
    table_digests(root)
    assert gold_rows(root) == _content(OLD)
    assert_invariants(spark, lakehouse)

    run_gate(spark, lakehouse, NEW, NEW[0]["business_date"], "rerun")
    assert gold_rows(root) == _content(NEW)
    assert _converged(root) == crashed.reference
    assert_invariants(spark, lakehouse)


def test_kill_9_between_the_gold_commit_and_its_ledger_row_is_recorded_by_the_rerun(spark, crashed):
    root = crashed.ledger
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
    assert _converged(root) == crashed.reference
    assert_invariants(spark, lakehouse)
