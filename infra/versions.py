"""Skip unchanged work: per step and business date, its input version in ``ops.data_versions``.

A step's **input version** for a date is a SHA-256 over

* its **code version**: the source of the asset's module and of every project module it imports,
  transitively (``code_version``), so a changed rule, prompt or suite changes it;
* its **configuration** (the enrichment provider, model and routing, where it enriches);
* the recorded versions of its **upstream** steps on the dates it reads (``Upstream``: the same
  date, a window of earlier dates, or every date up to it), or, for bronze, the fingerprint of
  the landed files (name, size and SHA-256 of each);
* fingerprints of inputs that are no step's output (``external``: the analysts' decisions of the
  date in ``ops.review_decisions``, for the steps that apply them).

After a step has written a date, and the date passed its audit (or was published), it records
that version. A later run finds the date's recorded version equal to the one it computes and
skips the date: nothing is read, enriched, validated or written for it, and no LLM request is
sent. A date that failed its audit is recorded as failed, so it is always recomputed, and the
steps reading it see a change. A run tagged
``lakehouse/recompute=true`` (or ``cli run --recompute``) recomputes every date regardless.

The table is small (one row per step, date and recomputation) and read once per step. Planning
takes a ``SessionSource`` (``SparkResource.get_session``): on a local lakehouse the table, the
landing folders and the decisions are read without Spark, so a step whose dates are all unchanged
decides without building a session; an object store calls the source and reads through Spark.
"""

import ast
import hashlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

from dagster import AssetCheckResult, AssetExecutionContext, MaterializeResult
from pyspark.sql import SparkSession

from infra.lakehouse import LakehouseResource, TableRef
from infra.settings import PROJECT_ROOT
from infra.spark import SessionSource, session_of

DATA_VERSIONS = TableRef("ops", "data_versions")
_SCHEMA = (
    "asset string, business_date date, input_version string, code_version string, "
    "run_id string, at timestamp"
)
RECOMPUTE_TAG = "lakehouse/recompute"
# The project's own packages: a module outside them (Spark, Dagster) is versioned by the lock.
_PACKAGES = ("assets", "documents", "enrichment", "expectations", "infra", "transforms")


def _module_file(module: str) -> Path | None:
    base = PROJECT_ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _imports(module: str, path: Path) -> frozenset[str]:
    """Project modules ``module`` imports (absolute imports of the project's packages); each file
    is parsed once per process, however many steps' code versions include it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] in _PACKAGES and _module_file(name) is not None:
                found.add(name)
    return frozenset(found)


@cache
def code_version(module: str) -> str:
    """A short hash of ``module``'s source and of every project module it imports, transitively."""
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        pending.extend(_imports(name, path) - seen.keys())
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name].read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Upstream:
    """A step whose recorded versions another reads: on which dates, relative to date D.

    ``days_before=0`` is D alone; ``n`` is D - n .. D; ``None`` is every date up to D.
    ``include_today=False`` leaves D itself out (a history of earlier dates).
    """

    asset: str
    days_before: int | None = 0
    include_today: bool = True

    def covers(self, day: date, candidate: date) -> bool:
        """Whether the step's version on ``candidate`` is an input of the date ``day``."""
        if candidate > day or (candidate == day and not self.include_today):
            return False
        return self.days_before is None or candidate >= day - timedelta(days=self.days_before)


@dataclass(frozen=True)
class Step:
    """What a step's input version is made of: its name, code and upstream steps."""

    asset: str
    module: str
    upstream: tuple[Upstream, ...] = ()

    @property
    def code_version(self) -> str:
        """The step's code version (its module and what it imports)."""
        return code_version(self.module)


def landing_fingerprint(folder: Path) -> str:
    """Names, sizes and content hashes of the files landed in ``folder`` (none: empty)."""
    if not folder.is_dir():
        return "none"
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith((".", "_")):
            continue
        content = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                content.update(block)
        digest.update(f"{path.name}:{path.stat().st_size}:{content.hexdigest()};".encode())
    return digest.hexdigest()


def landed_fingerprints(
    spark: SparkSession | SessionSource,
    lakehouse: LakehouseResource,
    source: str,
    days: Iterable[date],
) -> dict[date, str]:
    """Each date's landing fingerprint of ``source``.

    Local lakehouses hash the files' contents; on an object store the listing (name, size,
    modification time) stands in, read through Hadoop's file system without a Spark job (the
    session is built for it there only).
    """
    out = {}
    for day in days:
        location = lakehouse.landing_path(source, day)
        if "://" not in location or location.startswith("file:"):
            out[day] = landing_fingerprint(Path(location.removeprefix("file://")))
            continue
        session = session_of(spark)
        jvm = session.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(location)
        fs = path.getFileSystem(session.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(path):
            out[day] = "none"
            continue
        listing = sorted(
            f"{s.getPath().getName()}:{s.getLen()}:{s.getModificationTime()}"
            for s in fs.listStatus(path)
            if s.isFile() and not s.getPath().getName().startswith((".", "_"))
        )
        out[day] = hashlib.sha256(";".join(listing).encode()).hexdigest()
    return out


@dataclass
class VersionPlan:
    """Which of a run's dates a step computes and which it skips as unchanged."""

    step: Step
    days: list[date]
    input_versions: dict[date, str]
    skipped: list[date] = field(default_factory=list)
    forced: bool = False

    @property
    def to_run(self) -> list[date]:
        """The dates to compute, oldest first."""
        return [d for d in self.days if d not in self.skipped]

    def metadata(self) -> dict:
        """What a step reports of its plan."""
        return {
            "dates_computed": len(self.to_run),
            "dates_skipped_unchanged": ", ".join(d.isoformat() for d in self.skipped) or "none",
            "code_version": self.step.code_version,
        }

    def unchanged_results(self, context: AssetExecutionContext) -> Iterator:
        """Every selected asset and check of a step whose dates were all unchanged.

        The partitions hold what an earlier run wrote from the same inputs and code; the checks
        report that earlier verdict (only dates that passed their audit are ever skipped).
        """
        skipped = ", ".join(d.isoformat() for d in self.skipped)
        note = f"inputs and code unchanged since they were last computed: skipped {skipped}"
        for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
            yield MaterializeResult(asset_key=key, metadata={**self.metadata(), "unchanged": note})
        for check in sorted(
            context.selected_asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)
        ):
            yield AssetCheckResult(
                asset_key=check.asset_key,
                check_name=check.name,
                passed=True,
                metadata={"unchanged": note + " (these dates passed when computed)"},
            )


def _recorded(
    spark: SparkSession | SessionSource,
    lakehouse: LakehouseResource,
    assets: Iterable[str],
    last: date,
) -> dict[str, list[tuple[date, str]]]:
    """Per asset, the latest recorded input version of each date up to ``last``, by date.

    A local lakehouse reads the table with delta-rs (milliseconds, no Spark job); an object
    store through Spark.
    """
    rows = lakehouse.read_rows(
        spark,
        DATA_VERSIONS,
        ["asset", "business_date", "input_version", "at"],
        within={"asset": sorted(set(assets))},
        at_most={"business_date": last},
    )
    latest: dict[tuple[str, date], tuple[datetime, str]] = {}
    for row in rows:
        key = (row["asset"], row["business_date"])
        if key not in latest or row["at"] >= latest[key][0]:
            latest[key] = (row["at"], row["input_version"])
    by_asset: dict[str, list[tuple[date, str]]] = {}
    for (asset, day), (_, version) in sorted(latest.items()):
        by_asset.setdefault(asset, []).append((day, version))
    return by_asset


def input_version(
    step: Step,
    day: date,
    recorded: dict[str, list[tuple[date, str]]],
    config: str = "",
    landing: str | None = None,
    external: str | None = None,
) -> str:
    """The input version of ``step`` on ``day`` from its upstream steps' recorded versions."""
    digest = hashlib.sha256(f"{step.asset}|{step.code_version}|{config}|".encode())
    if landing is not None:
        digest.update(f"landing:{landing}|".encode())
    if external is not None:
        digest.update(f"external:{external}|".encode())
    for upstream in step.upstream:
        inputs = [(d, v) for d, v in recorded.get(upstream.asset, ()) if upstream.covers(day, d)]
        digest.update(f"{upstream.asset}:{inputs!r}|".encode())
    return digest.hexdigest()


def run_dates(context: AssetExecutionContext) -> list[date]:
    """The business dates of a Dagster run, oldest first."""
    return sorted(date.fromisoformat(key) for key in context.partition_keys)


def recompute_requested(context: AssetExecutionContext) -> bool:
    """Whether the run asks for every date to be recomputed (``lakehouse/recompute`` tag)."""
    tag = (context.run.tags.get(RECOMPUTE_TAG) or "").strip().lower()
    return tag in ("1", "true", "yes", "all")


def plan(
    spark: SparkSession | SessionSource,
    lakehouse: LakehouseResource,
    step: Step,
    days: Sequence[date],
    config: str = "",
    landing: dict[date, str] | None = None,
    force: bool = False,
    external: dict[date, str] | None = None,
) -> VersionPlan:
    """Compare each date's input version with the one recorded: unchanged dates are skipped."""
    days = sorted(set(days))
    assets = [step.asset, *(u.asset for u in step.upstream)]
    recorded = _recorded(spark, lakehouse, assets, max(days))
    versions = {
        day: input_version(
            step, day, recorded, config, (landing or {}).get(day), (external or {}).get(day)
        )
        for day in days
    }
    mine = dict(recorded.get(step.asset, ()))
    skipped = [] if force else [day for day in days if mine.get(day) == versions[day]]
    return VersionPlan(step, days, versions, skipped, force)


def plan_run(
    context: AssetExecutionContext,
    spark: SparkSession | SessionSource,
    lakehouse: LakehouseResource,
    step: Step,
    config: str = "",
    landing: dict[date, str] | None = None,
    external: dict[date, str] | None = None,
) -> VersionPlan:
    """``plan`` for the dates of a Dagster run, honouring the recompute tag; logged."""
    days = sorted(run_dates(context))
    done = plan(
        spark, lakehouse, step, days, config, landing, recompute_requested(context), external
    )
    if done.skipped:
        context.log.info(
            f"{step.asset}: {len(done.skipped)} of {len(days)} date(s) unchanged, skipped: "
            + ", ".join(d.isoformat() for d in done.skipped)
        )
    return done


def plan_landed_run(
    context: AssetExecutionContext,
    spark: SparkSession | SessionSource,
    lakehouse: LakehouseResource,
    step: Step,
    source: str,
) -> VersionPlan:
    """``plan_run`` for a bronze step: its input is ``source``'s landing folder of each date of
    the run (``landed_fingerprints``)."""
    landing = landed_fingerprints(spark, lakehouse, source, sorted(run_dates(context)))
    return plan_run(context, spark, lakehouse, step, landing=landing)


def record(
    spark: SparkSession,
    lakehouse: LakehouseResource,
    versions: VersionPlan,
    days: Iterable[date],
    run_id: str,
    failed: Iterable[date] = (),
    retry: Iterable[date] = (),
) -> None:
    """Record the input version of each date the step wrote and that passed, in one commit.

    A ``failed`` date (its audit failed) is recorded as failed in this run: it never matches an
    input version, so the step recomputes it next time, and what reads it sees a change (a
    publish step then refuses the date instead of skipping it as unchanged). A ``retry`` date
    passed but is recorded as done by this run only, so the next run computes it again.
    """
    at = datetime.now(UTC).replace(tzinfo=None)
    marks = {day: versions.input_versions[day] for day in days}
    marks.update({day: f"failed:{run_id}" for day in failed})
    # Passed, but to be computed again by the next run (record_audited: fallback answers).
    marks.update({day: f"fallback:{run_id}" for day in retry})
    rows = [
        {
            "asset": versions.step.asset,
            "business_date": day,
            "input_version": version,
            "code_version": versions.step.code_version,
            "run_id": run_id,
            "at": at,
        }
        for day, version in sorted(marks.items())
    ]
    if rows:
        lakehouse.write_rows(spark, rows, _SCHEMA, DATA_VERSIONS)


def record_audited(
    spark: SparkSession,
    lakehouse: LakehouseResource,
    versions: VersionPlan,
    reports: dict,
    run_id: str,
    fell_back: Collection[date] = (),
) -> None:
    """``record`` the staged dates of a run by their audit: passed, or failed.

    A date in ``fell_back`` passed, but some of its rows hold the offline fallback's answer
    because the LLM did not answer them: it is recorded as done by this run only
    (``fallback:<run_id>``, which no input version matches), so the next run computes it again
    and asks the LLM for exactly those rows (the others come from the cache). Its downstream
    publishes it meanwhile, like any passed date.
    """
    passed = [day for day, report in reports.items() if report.passed and day not in fell_back]
    failed = [day for day, report in reports.items() if not report.passed]
    retry = [day for day, report in reports.items() if report.passed and day in fell_back]
    record(spark, lakehouse, versions, passed, run_id, failed, retry)
