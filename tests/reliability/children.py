"""Writers in child processes, for the crash and concurrency cases, and what the tests read back.

A child is ``python -m tests.reliability.children SCENARIO ROOT WORKDIR``: its own process
group (so ``kill -9`` of the group takes its JVM and Python workers too), its own Spark driver and
embedded metastore (``WORKDIR/_warehouse``: Derby admits one driver per metastore folder; the
tables themselves are written by path under ``ROOT``, as every project write is), writing through
the project's own path (``LakehouseResource`` and the gate in ``infra/wap.py``).

It starts writing when the test touches ``WORKDIR/start.go`` (the test prepares the tables while
the child's JVM starts) and stops at deterministic points: a Spark task of a write's second
partition touches ``WORKDIR/<step>.held`` and waits for ``WORKDIR/<step>.go`` (the first
partition's data file is written meanwhile, uncommitted), or the publish's ledger append touches
``ledger.held`` and waits forever (gold has committed, the ledger has not). The test kills it
there, or writes to the same tables and then lets it go. Steps that end print one JSON line each
to stdout.
"""

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

from deltalake import DeltaTable as RustDeltaTable

from infra import wap
from infra.lakehouse import LakehouseResource
from tests.gold_helpers import DAY, GOLD, KEY_UNIQUE, SCHEMA, line
from transforms.frames import local_frame

PROJECT = Path(__file__).resolve().parents[2]
PREVIOUS_DAY = DAY - timedelta(days=1)
# The contents the cases write: what a date held, and what the next run makes of it.
OLD = [line(i) for i in range(3)]
NEW = [line(i, merchant="Lyft") for i in range(6)]
CHILD_NEW = [line(i, merchant="Bolt") for i in range(4)]
BACKFILL = [line(i, PREVIOUS_DAY, merchant="Taxi") for i in range(3)]
# The ``crash`` scenario's three lakehouses (folders of its ROOT): killed inside the staging write
# (before the audit), inside the gold write, and between gold's commit and the ledger's.
STAGE_WRITE, GOLD_WRITE, LEDGER = "stage-write", "gold-write", "ledger"


# Sixteen distinct expense texts (eight requests of two): one names a roster employee.
ROSTER = ("Alice Martin",)
ENRICH_TEXTS = [
    f"Merchant: {m}\nJustification: {why} (trip {i})."
    for i, (m, why) in enumerate(
        [
            ("Marriott", "Two hotel nights for the audit"),
            ("United Airlines", "Return flight to Chicago"),
            ("Staples", "Printer toner for the office"),
            ("Uber", "Taxi from the airport with Alice Martin"),
        ]
        * 4
    )
]
ENRICH_SETTINGS = {"api_key": "sk-test", "max_records_per_request": 2, "max_concurrency": 1}


def enrich_lines(spark, lakehouse: LakehouseResource, base_url: str, run_id: str):
    """Enrich ``ENRICH_TEXTS`` through the project's engine against ``base_url``."""
    from pyspark.sql import functions as F

    from enrichment.prompts import EXPENSE_LINE_TASK
    from infra.enrichment import EnrichmentResource

    resource = EnrichmentResource(base_url=base_url, **ENRICH_SETTINGS)
    rows = local_frame(
        spark, [(f"L{i}", t) for i, t in enumerate(ENRICH_TEXTS)], "line_id string, text string"
    )
    return resource.enrich(
        lakehouse, rows, F.col("text"), EXPENSE_LINE_TASK, DAY, run_id, names=ROSTER
    )


def run_gate(spark, lakehouse: LakehouseResource, rows: list[dict], day, run_id: str, hold=None):
    """Stage, audit and publish ``rows`` as ``day``'s candidate (``hold`` wraps the staged
    DataFrame, or with ``("gold", f)`` the rows on their way to gold); what was published."""
    candidate = local_frame(spark, rows, SCHEMA)
    if hold is not None and hold[0] == "stage":
        candidate = candidate.transform(hold[1])
    staged = wap.stage_dates(lakehouse, candidate, GOLD, [day])
    wap.audit_dates(lakehouse, spark, GOLD, [day], staged, lambda _: KEY_UNIQUE, run_id)
    overlay = hold[1] if hold is not None and hold[0] == "gold" else None
    return wap.publish_dates(lakehouse, spark, GOLD, [day], run_id, overlay)


def hold_second_partition(workdir: Path, step: str) -> Callable:
    """A transform that spreads rows over two partitions and holds the second one's task until
    ``WORKDIR/<step>.go`` exists (after touching ``<step>.held``)."""
    held, go = str(workdir / f"{step}.held"), str(workdir / f"{step}.go")

    def hold(batches: Iterator) -> Iterator:
        from pyspark import TaskContext

        if TaskContext.get().partitionId() == 1:
            Path(held).touch()
            while not os.path.exists(go):
                time.sleep(0.05)
        yield from batches

    return lambda df: df.repartition(2).mapInPandas(hold, df.schema)


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.05)


def _or_exit(step: Callable, *args) -> None:
    """Run ``step`` in a thread of its own; if it fails, the process exits (the test sees its
    stderr at once instead of waiting for a point the step never reaches)."""
    try:
        step(*args)
    except BaseException:
        logging.exception("the child's thread failed")
        os._exit(1)


def _ledger_that_dies(workdir: Path, base: str) -> Callable:
    """``wap._ledger`` that stops for good before appending a ``published`` event to the
    lakehouse at ``base``."""
    original = wap._ledger

    def ledger(lakehouse, spark, table, rows):
        if lakehouse.base == base and any(r["event"] == "published" for r in rows):
            (workdir / "ledger.held").touch()
            time.sleep(3600)
        return original(lakehouse, spark, table, rows)

    return ledger


def _report(**fields) -> None:
    print(json.dumps(fields, default=str), flush=True)


def main(scenario: str, root: str, workdir: str) -> None:
    """Run one scenario (see the module docstring) against the lakehouse at ``root``."""
    from infra.enrichment_engine import LLM_CACHE, insert_absent_keys
    from infra.spark import SMALL_DATA_CONF, build_spark_session

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    work = Path(workdir)
    spark = build_spark_session(
        "local[2]",
        str(work / "_warehouse"),
        app_name=f"child-{scenario}",
        extra_conf={**SMALL_DATA_CONF, "spark.driver.memory": "1g"},
    )
    spark.sparkContext.setLogLevel("ERROR")
    lakehouse = LakehouseResource(root=root)
    if scenario == "crash-enrich":
        _wait_for(work / "start.go")
        enrich_lines(spark, lakehouse, os.environ["FAKE_OPENAI_URL"], "crashed")
    elif scenario == "crash":
        # ROOT's three lakehouses hold the date as the previous run left it (the test copies them
        # there meanwhile); the run that republishes it is killed in each, by one kill of this
        # process: first the publish to LEDGER stops for good between gold's commit and the
        # ledger's, then the staging write to STAGE_WRITE inside its write (each in a thread of
        # its own), then the one to GOLD_WRITE inside its gold write. The two held Spark tasks
        # take local[2]'s two slots; each write's first partition is written before (in order).
        _wait_for(work / "start.go")
        at_ledger = LakehouseResource(root=str(Path(root) / LEDGER))
        wap._ledger = _ledger_that_dies(work, at_ledger.base)
        threading.Thread(
            target=_or_exit, args=(run_gate, spark, at_ledger, NEW, DAY, "crashed"), daemon=True
        ).start()
        _wait_for(work / "ledger.held")
        at_stage = LakehouseResource(root=str(Path(root) / STAGE_WRITE))
        hold_stage = ("stage", hold_second_partition(work, "s"))
        threading.Thread(
            target=_or_exit,
            args=(run_gate, spark, at_stage, NEW, DAY, "crashed", hold_stage),
            daemon=True,
        ).start()
        _wait_for(work / "s.held")
        at_gold = LakehouseResource(root=str(Path(root) / GOLD_WRITE))
        run_gate(spark, at_gold, NEW, DAY, "crashed", ("gold", hold_second_partition(work, "g")))
    elif scenario == "concurrent":
        # The test writes the tables' first versions meanwhile.
        _wait_for(work / "start.go")
        # The backfill of D - 1, held inside its gold commit while the test publishes D.
        done = run_gate(
            spark,
            lakehouse,
            BACKFILL,
            PREVIOUS_DAY,
            "backfill",
            ("gold", hold_second_partition(work, "a")),
        )
        _report(step="backfill", published=done.published_dates, gold_version=done.gold_version)
        # The same date D, held inside its staging write while the test runs D through the gate.
        done = run_gate(
            spark, lakehouse, CHILD_NEW, DAY, "rerun", ("stage", hold_second_partition(work, "b"))
        )
        _report(step="same-date", published=done.published_dates, gold_version=done.gold_version)
        # The enrichment cache: keys k0..k9, held inside the merge while the test adds k5..k14.
        rows = local_frame(
            spark, [(f"k{i}", "child") for i in range(10)], "input_hash string, answer string"
        )
        insert_absent_keys(lakehouse, LLM_CACHE, rows.transform(hold_second_partition(work, "c")))
        _report(step="cache")
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


class Child:
    """A child writer process in its own process group; stdout and stderr go to WORKDIR."""

    def __init__(
        self, scenario: str, root: Path, workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.out = workdir / "stdout"
        self.err = workdir / "stderr"
        env = {**os.environ, "PYTHONPATH": str(PROJECT), **(env or {})}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.children", scenario, root, workdir],
                cwd=PROJECT,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 300) -> None:
        """Wait until ``check()`` holds; fail (with the child's stderr) if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not check():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"child exited {self.process.returncode} before {what}:\n"
                    + self.err.read_text()[-4000:]
                )
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"child did not reach {what} in {timeout} s")
            time.sleep(0.05)

    def held(self, step: str) -> bool:
        """Whether the child stopped at ``step`` (it touched ``<step>.held``)."""
        return (self.workdir / f"{step}.held").exists()

    def go(self, step: str) -> None:
        """Let the held ``step`` go on."""
        (self.workdir / f"{step}.go").touch()

    def reports(self) -> list[dict]:
        """The JSON lines the child printed so far."""
        return [json.loads(x) for x in self.out.read_text().splitlines() if x.startswith("{")]

    def kill(self) -> None:
        """``kill -9`` the whole process group; return when no process of it is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise AssertionError(f"process group {self.process.pid} outlived SIGKILL")

    def finish(self, timeout: float = 180) -> None:
        """Wait for a clean exit (or fail with its stderr)."""
        code = self.process.wait(timeout=timeout)
        assert code == 0, f"child exited {code}:\n" + self.err.read_text()[-4000:]


def uncommitted_files(table_path: str) -> set[str]:
    """Parquet files in a table's folder that its current version does not reference."""
    folder = Path(table_path)
    on_disk = {str(p) for p in folder.rglob("*.parquet")}
    if not (folder / "_delta_log").is_dir():
        return on_disk
    committed = {
        str(Path(unquote(uri.removeprefix("file://"))))
        for uri in RustDeltaTable(table_path).file_uris()
    }
    return on_disk - committed


def table_digests(root: Path) -> dict[str, str]:
    """Every Delta table under ``root``: a SHA-256 of its current rows (sorted; read with delta-rs,
    which fails on a table whose log or referenced files are broken)."""
    digests = {}
    for log in sorted(root.glob("*/*/_delta_log")):
        rows = RustDeltaTable(str(log.parent)).to_pyarrow_table().to_pylist()
        text = "\n".join(sorted(json.dumps(r, sort_keys=True, default=str) for r in rows))
        digests[f"{log.parent.parent.name}.{log.parent.name}"] = hashlib.sha256(
            text.encode()
        ).hexdigest()
    return digests


def gold_rows(root: Path, day=DAY) -> list[tuple]:
    """``(report_id, line_id, merchant)`` of a date's current gold rows (delta-rs)."""
    table = RustDeltaTable(str(root / "gold" / GOLD.name)).to_pyarrow_table(
        columns=["report_id", "line_id", "merchant"], filters=[("business_date", "=", day)]
    )
    return sorted(tuple(r.values()) for r in table.to_pylist())


if __name__ == "__main__":
    main(*sys.argv[1:4])
