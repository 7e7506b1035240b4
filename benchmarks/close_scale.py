"""The whole nightly close at scale: through Dagster vs the same transforms as bare PySpark.

Writes one business date of every source (1 million GL lines by default, with the bank, AP and
fx_rates files that match them, plus the usual roster, expenses and HR cases), then runs the close
for that date twice, each time in a fresh process on its own copy of the landing zone:
  1. dagster: ``materialize`` of every asset, as ``cli`` runs it (ephemeral instance),
  2. bare: one SparkSession and the same per-date functions the assets call, in the same order,
and prints the wall time and peak memory (RSS summed over the process tree: the Python driver, its
Spark JVM and the JVM's Python workers) of each, their ratio, where the time went, and the gold
counts of both, which must agree. Enrichment is the embedded model (no ``OPENAI_API_KEY``).
Not a test: run on demand.

Usage: .venv/bin/python benchmarks/close_scale.py [--gl-lines 1000000] [--mode both|dagster|bare]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATE = date(2026, 11, 18)  # a Wednesday, not a pay day
MARKER = "CLOSE_SCALE_RESULT "
LAYERS = ("bronze", "silver", "staging", "gold")
PHASE_ORDER = ("imports", "spark start", *LAYERS, "dagster outside steps", "gold counts")
# The files generate_gl_day rewrites at volume (over generate_close's small ones).
GL_SOURCES = ("gl_journal_lines", "bank_statement_lines", "ap_invoices", "ap_payments", "fx_rates")

try:
    import psutil
except ImportError:  # not in the project's lock file: read /proc instead
    psutil = None


# --- measuring a process tree --------------------------------------------------------------------


def _tree_rss_psutil(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def _tree_rss_proc(pid: int) -> int:
    """Sum of RSS over ``pid`` and its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields restart after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * page
        except OSError:
            pass
    return total


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process tree every ``interval`` seconds; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()
        self._measure: Callable[[int], int] = _tree_rss_psutil if psutil else _tree_rss_proc

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self._measure(self.pid))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        """Stop sampling; return the peak in bytes."""
        self._stop_event.set()
        self.join()
        return self.peak


def tree_rss_method() -> str:
    """How the peak is measured, for the printout."""
    if psutil:
        return "psutil"
    if Path("/proc/self/statm").exists():
        return "/proc"
    return "none"


# --- the parent ---------------------------------------------------------------------------------


def run_child(args: list[str], env: dict[str, str], log: Path) -> dict:
    """Run this script as a worker; return its result line plus wall time and memory."""
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=PROJECT_ROOT)  # fmt: skip
        sampler = TreeSampler(proc.pid)
        if tree_rss_method() != "none":
            sampler.start()
        # wait4 gives this child's own rusage: ru_maxrss is its (or a waited-for descendant's)
        # largest single resident set, in KiB on Linux.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        peak = sampler.stop() if sampler.is_alive() else 0
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise RuntimeError(f"{' '.join(args[:2])} exited {proc.returncode}; see {log}\n{tail}")
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.startswith(MARKER)]
    if not lines:
        raise RuntimeError(f"{' '.join(args[:2])} printed no result; see {log}")
    result = json.loads(lines[-1].removeprefix(MARKER))
    result.update(wall_s=wall, peak_tree_bytes=peak, max_single_bytes=usage.ru_maxrss * 1024)
    return result


def child_env(lakehouse: Path, dagster_home: Path) -> dict[str, str]:
    """A close worker's environment: its own lakehouse, embedded enrichment, a temp Dagster home."""
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env["LAKEHOUSE_ROOT"] = str(lakehouse)
    dagster_home.mkdir(parents=True, exist_ok=True)
    env["DAGSTER_HOME"] = str(dagster_home)
    # A million GL lines a date is what Spark's own defaults (code generation, adaptive
    # execution) are for: the large profile, unless the caller chose one.
    env.setdefault("SPARK_PROFILE", "large")
    return env


def prepare_landing(root: Path, day: date, args: argparse.Namespace) -> Path:
    """Write (or reuse) the landing zone under ``root/input``; print what it holds."""
    source = root / "input"
    summary = source / "generated.json"
    wanted = {"date": day.isoformat(), "gl_lines": args.gl_lines, "expense_rows": args.expense_rows}
    if args.reuse and summary.exists():
        result = json.loads(summary.read_text())
        if {k: result.get(k) for k in wanted} == wanted:
            print(f"Reusing {source} (generated in {result['generate_s']:.1f}s):")
            _print_counts(result["counts"])
            return source
        print(f"Not reusing {source}: generated for other arguments.")
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    worker = ["--worker", "generate", "--root", str(source), "--date", day.isoformat(),
              "--gl-lines", str(args.gl_lines),
              "--expense-rows", str(args.expense_rows)]  # fmt: skip
    result = run_child(worker, dict(os.environ), root / "generate.log")
    result.update(wanted)
    summary.write_text(json.dumps(result))
    print(f"Generated {day} in {result['generate_s']:.1f}s (landing zone under {source}):")
    _print_counts(result["counts"])
    return source


def _print_counts(counts: dict[str, int]) -> None:
    for name, rows in sorted(counts.items()):
        print(f"  {name:<24}{rows:>12,} rows")


def run_mode(root: Path, source: Path, mode: str, day: date) -> dict:
    """Copy the landing zone to a fresh lakehouse and run one mode's worker on it."""
    lakehouse = root / f"lakehouse-{mode}"
    if lakehouse.exists():
        shutil.rmtree(lakehouse)
    shutil.copytree(source / "landing", lakehouse / "landing")
    env = child_env(lakehouse, root / f"dagster-home-{mode}")
    log = root / f"{mode}.log"
    print(f"Running the close, {mode} (log: {log}) ...", flush=True)
    result = run_child(["--worker", mode, "--root", str(lakehouse), "--date", day.isoformat()],
                       env, log)  # fmt: skip
    print(f"  {mode}: {result['wall_s']:.1f}s, peak {result['peak_tree_bytes'] / 2**30:.2f} GB")
    return result


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def report(results: dict[str, dict]) -> None:
    """Print the comparison table, the phases of each mode and the gold counts."""
    gb = 2**30
    print(f"\n{'mode':<14}{'wall s':>9}{'close s':>9}{'peak RSS GB':>13}{'driver GB':>11}")
    for mode, r in results.items():
        print(f"{mode:<14}{r['wall_s']:>9.1f}{r['phases']['close']:>9.1f}"
              f"{r['peak_tree_bytes'] / gb:>13.2f}{r['max_single_bytes'] / gb:>11.2f}")  # fmt: skip
    if {"dagster", "bare"} <= results.keys():
        d, b = results["dagster"], results["bare"]
        print(f"{'dagster/bare':<14}{_ratio(d['wall_s'], b['wall_s']):>9}"
              f"{_ratio(d['phases']['close'], b['phases']['close']):>9}"
              f"{_ratio(d['peak_tree_bytes'], b['peak_tree_bytes']):>13}"
              f"{_ratio(d['max_single_bytes'], b['max_single_bytes']):>11}")  # fmt: skip
    print("  wall: the whole process (imports, Spark start and stop, the gold counts below);")
    print("  close: materialize / the bare calls only. Peak RSS: the process tree, sampled every")
    print(f"  0.2 s ({tree_rss_method()}); driver: the Python driver process alone (wait4 max RSS;")
    print("  no JVM). Spark start: in dagster, its resource set-up.")
    seen = [p for r in results.values() for p in r["phases"] if p != "close"]
    phases = [p for p in PHASE_ORDER if p in seen] + [p for p in seen if p not in PHASE_ORDER]
    print(f"\n{'phase s':<22}" + "".join(f"{m:>10}" for m in results))
    for phase in phases:
        cells = [r["phases"].get(phase) for r in results.values()]
        print(f"{phase:<22}" + "".join(f"{'-' if c is None else f'{c:.1f}':>10}" for c in cells))
    keys = sorted({k for r in results.values() for k in r["gold"]})
    print(f"\n{'gold counts':<46}" + "".join(f"{m:>10}" for m in results))
    for key in keys:
        print(f"{key:<46}" + "".join(f"{r['gold'].get(key, 0):>10}" for r in results.values()))
    if len({json.dumps(r["gold"], sort_keys=True) for r in results.values()}) > 1:
        print("WARNING: the modes' gold counts differ: they did not do the same work.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gl-lines", type=int, default=1_000_000)
    parser.add_argument("--expense-rows", type=int, default=200, help="expense lines on the date")
    parser.add_argument("--date", type=date.fromisoformat, default=DEFAULT_DATE)
    parser.add_argument("--root", type=Path, default=None, help="work dir (default: new temp)")
    parser.add_argument("--mode", choices=("both", "dagster", "bare"), default="both")
    parser.add_argument("--reuse", action="store_true", help="reuse --root's landing zone")
    parser.add_argument("--worker", choices=("generate", "dagster", "bare"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--budget-gib", type=float, default=18.0, help="peak RSS the close must stay under"
    )
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    root = (args.root or Path(tempfile.mkdtemp(prefix="bench-close-"))).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if tree_rss_method() != "psutil":
        print(f"psutil is not installed: the process tree is read from {tree_rss_method()}.")
    source = prepare_landing(root, args.date, args)
    modes = ("dagster", "bare") if args.mode == "both" else (args.mode,)
    results = {mode: run_mode(root, source, mode, args.date) for mode in modes}
    report(results)
    # Issue 13, case 8: the close of a day on 2 cores stays under the memory budget.
    for mode, result in results.items():
        peak = result["peak_tree_bytes"] / 2**30
        verdict = "within" if peak < args.budget_gib else "OVER"
        print(f"{mode}: peak RSS {peak:.2f} GiB, {verdict} the {args.budget_gib:g} GiB budget")
    print(f"\nWork dir: {root}")


# --- the workers (each in its own process) ------------------------------------------------------


class Phases(dict):
    """Named durations in seconds, accumulated."""

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - started


def worker(args: argparse.Namespace) -> None:
    """Run one worker and print its result line."""
    runners = {"generate": generate_worker, "dagster": dagster_worker, "bare": bare_worker}
    result = runners[args.worker](args)
    print(MARKER + json.dumps(result), flush=True)


def generate_worker(args: argparse.Namespace) -> dict:
    """Every source for the date at sample size, then GL, bank, AP and fx at volume over them."""
    from sample.close import generate_close, generate_gl_day

    started = time.perf_counter()
    (key,) = generate_close(args.root, args.date, args.date, gl_lines_per_day=200,
                            expense_rows=args.expense_rows)  # fmt: skip
    gl_key = generate_gl_day(args.root, args.date, args.gl_lines)
    counts = {name: rows for name, rows in key.counts.items() if rows}
    counts.update(gl_key.counts)
    # generate_gl_day writes the same file names, so it replaces the small files: check it.
    for name in GL_SOURCES:
        folder = args.root / "landing" / name / f"business_date={args.date.isoformat()}"
        files = [p.name for p in folder.iterdir() if not p.name.startswith((".", "_"))]
        assert len(files) == 1, f"{folder} holds {files}: the volume did not replace the sample"
    return {"generate_s": time.perf_counter() - started, "counts": counts}


def _session():
    """The SparkSession exactly as ``SparkResource`` builds it (reused if already running)."""
    from infra.settings import lakehouse_root, spark_master
    from infra.spark import build_spark_session

    return build_spark_session(
        master=spark_master(), warehouse_dir=f"{lakehouse_root().rstrip('/')}/_warehouse"
    )


def _gold_counts(day: date) -> dict[str, int]:
    """Rows of gold.recon_exceptions by recon, type and status, and of every other gold table."""
    from infra.lakehouse import LakehouseResource, TableRef

    session, lakehouse = _session(), LakehouseResource()
    exceptions = lakehouse.read_partition(session, TableRef("gold", "recon_exceptions"), day)
    rows = exceptions.groupBy("recon", "exception_type", "status").count().collect()
    counts = {f"exceptions {r[0]}/{r[1]}/{r[2]}": r[3] for r in rows}
    others = ("expense_lines", "hr_cases", "close_narrative", "recon_exception_notes",
              "recon_matches", "close_summary")  # fmt: skip
    for name in others:
        counts[f"{name} rows"] = lakehouse.read_partition(
            session, TableRef("gold", name), day
        ).count()
    return dict(sorted(counts.items()))


def dagster_worker(args: argparse.Namespace) -> dict:
    """``materialize`` every asset for the date, as ``cli`` does."""
    phases = Phases()
    with phases.time("imports"):
        from dagster import DagsterInstance, materialize

        from pipelines.definitions import all_assets, build_resources
    instance = DagsterInstance.ephemeral()
    with phases.time("close"):
        result = materialize(
            all_assets,
            partition_key=args.date.isoformat(),
            resources=build_resources(),
            instance=instance,
            # As cli runs it: step-level progress, not per-event debug lines.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
    assert result.success, [e.step_key for e in result.get_step_failure_events()]
    phases.update(_dagster_phases(instance, result.run_id, phases["close"]))
    with phases.time("gold counts"):
        gold = _gold_counts(args.date)
    return {"mode": "dagster", "phases": phases, "gold": gold}


def _dagster_phases(instance, run_id: str, close_s: float) -> dict[str, float]:
    """Step time by layer, resource set-up (the Spark start) and the rest, from the run's events."""
    from dagster import DagsterEventType as E

    ends = {E.STEP_SUCCESS: E.STEP_START, E.RESOURCE_INIT_SUCCESS: E.RESOURCE_INIT_STARTED}
    starts: dict[tuple, float] = {}
    steps: list[tuple[str, float, float]] = []
    inits: list[tuple[float, float]] = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind, key = event.event_type, entry.step_key
        if kind in ends.values():
            starts[(kind, key)] = entry.timestamp
        elif kind in ends and (ends[kind], key) in starts:
            interval = (starts.pop((ends[kind], key)), entry.timestamp)
            if kind == E.STEP_SUCCESS:
                steps.append((key.split("_", 1)[0], *interval))
            else:
                inits.append(interval)
    out = {"spark start": sum(end - start for start, end in inits)}
    for layer, start, end in steps:
        out[layer] = out.get(layer, 0.0) + end - start
    # What the run spent outside its steps and outside resource set-up: Dagster's own work.
    outside = [(s, e) for s, e in inits if not any(a <= s and e <= b for _, a, b in steps)]
    out["dagster outside steps"] = (
        close_s - sum(e - s for _, s, e in steps) - sum(e - s for s, e in outside)
    )
    return out


def bare_worker(args: argparse.Namespace) -> dict:
    """The same per-date functions the assets call, in the same order, without Dagster."""
    phases = Phases()
    with phases.time("imports"):
        from assets import close as close_assets
        from assets import exception_notes as notes_assets
        from assets import expenses as expense_assets
        from assets import hr_cases as hr_case_assets
        from assets import narrative as narrative_assets
        from assets.sources import SOURCES, conform_day, ingest_day
        from infra import wap
        from infra.enrichment import EnrichmentResource
        from infra.lakehouse import LakehouseResource
        from transforms import contracts as c

    day = args.date
    run_id = f"bare-{uuid.uuid4()}"
    with phases.time("close"):
        with phases.time("spark start"):
            session = _session()
        lakehouse = LakehouseResource()
        enrichment = EnrichmentResource.from_env()
        for contract in SOURCES:  # FX first
            with phases.time("bronze"):
                ingest_day(session, lakehouse, contract, day)
            with phases.time("silver"):
                silver = conform_day(session, lakehouse, contract, day, run_id)
            _conserved(contract.name, silver)
        with phases.time("bronze"):
            ingest_day(session, lakehouse, c.EXPENSE_LINES, day)
        with phases.time("silver"):
            silver = conform_day(session, lakehouse, c.EXPENSE_LINES, day, run_id)
        _conserved(c.EXPENSE_LINES.name, silver)
        with phases.time("staging"):
            expense_assets.stage_and_audit_dates(session, lakehouse, enrichment, [day], run_id)
            hr_case_assets.stage_and_audit_hr_cases_dates(
                session, lakehouse, enrichment, [day], run_id
            )
        with phases.time("gold"):
            wap.publish(lakehouse, session, expense_assets.GOLD, day, run_id)
            wap.publish(lakehouse, session, hr_case_assets.GOLD, day, run_id)
        with phases.time("silver"):
            close_assets.build_hris_history_day(session, lakehouse, day)
        with phases.time("staging"):
            close_assets.stage_close_dates(session, lakehouse, [day], run_id)
        with phases.time("gold"):
            for table, _ in close_assets.GATED:
                wap.publish(lakehouse, session, table, day, run_id)
        # What reads the published close: the night's narrative and the notes on open items.
        with phases.time("staging"):
            narrative_assets.stage_narrative_dates(session, lakehouse, enrichment, [day], run_id)
            notes_assets.stage_notes_dates(session, lakehouse, enrichment, [day], run_id)
        with phases.time("gold"):
            wap.publish(lakehouse, session, narrative_assets.NARRATIVE, day, run_id)
            wap.publish(lakehouse, session, notes_assets.NOTES, day, run_id)
    with phases.time("gold counts"):
        gold = _gold_counts(day)
    return {"mode": "bare", "phases": phases, "gold": gold}


def _conserved(name: str, silver) -> None:
    """The blocking check Dagster runs after each silver step: bronze = silver + quarantine."""
    if silver.bronze_rows != silver.silver_rows + silver.quarantine_rows:
        raise AssertionError(f"{name}: bronze rows not conserved ({silver})")


if __name__ == "__main__":
    main()
