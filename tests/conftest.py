"""One Delta-enabled SparkSession for the whole test session, tuned for speed, never stopped."""

import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from infra.spark import SMALL_DATA_CONF

# Session-scoped lakehouses that several tests read, and the one file holding those tests.
SHARED_LAKEHOUSES = {
    "closed_lakehouse": ("test_close.py",),
    "local_lakehouse": ("test_published_lakehouse.py",),
}
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# The files that cost minutes on CI's two cores (a shared lakehouse, servers in subprocesses, the
# browser), costliest first. ``make test`` runs with ``--no-loadscope-reorder``, so xdist hands
# files to its workers in collection order: these start first and the short files fill in around
# them (longest first). xdist's own order (most tests first) left a 280 s file of two tests for
# the end, with the other worker idle.
COSTLIEST_FIRST = (
    "e2e/test_close.py",
    "integration/test_published_lakehouse.py",
    "integration/test_ui_backfill.py",
    "e2e/test_pipeline.py",
    "e2e/test_hr_cases.py",
    "integration/test_ui_review.py",
    "infra/test_wap.py",
    # Child Spark processes killed or raced (issue 13).
    "reliability/test_crash.py",
    "reliability/test_concurrent_writers.py",
    "reliability/test_crash_enrichment.py",
)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from infra.spark import build_spark_session

    warehouse = tempfile.mkdtemp(prefix="spark-warehouse-")
    session = build_spark_session(
        master="local[2]",
        warehouse_dir=warehouse,
        app_name="tests",
        # The small profile's JVM (C1 only, the parallel collector: infra/spark.py), though this one
        # serves a worker for the whole suite: C2's compiler threads took 94 s of the JVM's 199 s
        # of CPU on five Spark test files (C1: 9 s of 130 s, the same wall time alone), and with
        # two workers on two cores that CPU is the other worker's. The suite: 1,090 s against
        # 1,138 s (2026-12-07, one run each, idle machine).
        long_lived=False,
        extra_conf={
            # The small-data profile (also the local default), whatever SPARK_PROFILE says.
            **SMALL_DATA_CONF,
            "spark.default.parallelism": "2",
            # One JVM serves the whole suite; the reconciliation plans (as of D and D - 1) are
            # large, and the default 1 GB driver heap ran out late in a full run.
            "spark.driver.memory": "3g",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session


@pytest.fixture
def lakehouse_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``LAKEHOUSE_ROOT`` for one test."""
    root = tmp_path / "lakehouse"
    root.mkdir()
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return root


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``, or a clean skip where it is absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public sample data not found at {SHARED_DATA}")
    return SHARED_DATA


def _cost_rank(item: pytest.Item) -> int:
    path = Path(item.path).as_posix()
    ranks = [i for i, name in enumerate(COSTLIEST_FIRST) if path.endswith(f"tests/{name}")]
    return ranks[0] if ranks else len(COSTLIEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the costliest files first (``COSTLIEST_FIRST``; the rest keep their order) and mark
    every test that needs the Spark session ``spark``: the layers run alone.

    ``-m "not spark and not slow"`` is the Spark-free unit layer, ``-m "spark and not slow"`` the
    Spark layer, ``-m slow`` the end-to-end Dagster runs and integration tests.
    """
    items.sort(key=_cost_rank)  # stable: each file's tests stay together, in their order
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "spark" in names:
            item.add_marker(pytest.mark.spark)
        # ``make test`` runs the suite on two workers, a file at a time (pytest-xdist,
        # ``--dist loadfile``; its ``loadgroup`` marks are not honoured under pytest 9): the tests
        # that read one session-scoped lakehouse must be in one file, so it is built once.
        shared = [s for s in SHARED_LAKEHOUSES if s in names]
        if shared and Path(item.path).name not in SHARED_LAKEHOUSES[shared[0]]:
            raise pytest.UsageError(
                f"{item.nodeid} reads the session's {shared[0]}: move it to "
                f"{' or '.join(SHARED_LAKEHOUSES[shared[0]])}, or it is built on a second worker"
            )


# Seconds (setup, call and teardown) per test file and per xdist worker, reported with the
# session's summary: where the suite's time goes, and whether the two workers ended together.
_FILE_SECONDS: dict[str, float] = defaultdict(float)
_WORKER_SECONDS: dict[str, float] = defaultdict(float)
_LAYER_SECONDS: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _FILE_SECONDS[report.nodeid.split("::")[0]] += report.duration
    marks = report.keywords
    _LAYER_SECONDS["slow" if "slow" in marks else "spark" if "spark" in marks else "unit"] += (
        report.duration
    )
    node = getattr(report, "node", None)  # the xdist worker that ran it, on the controller
    _WORKER_SECONDS[node.gateway.id if node is not None else "main"] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not _FILE_SECONDS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("seconds per test file (setup + call + teardown), costliest 30")
    for path, seconds in sorted(_FILE_SECONDS.items(), key=lambda item: -item[1])[:30]:
        write(f"{seconds:8.1f} s  {path}")
    write(f"{sum(_FILE_SECONDS.values()):8.1f} s  all {len(_FILE_SECONDS)} files")
    layers = sorted(_LAYER_SECONDS.items())
    write("per layer: " + ", ".join(f"{layer} {seconds:.0f} s" for layer, seconds in layers))
    write(
        "per worker: "
        + ", ".join(
            f"{worker} {seconds:.0f} s" for worker, seconds in sorted(_WORKER_SECONDS.items())
        )
    )
