"""What a date costs: one date, N dates in one ranged run, an unchanged re-run, ranged = one by one.

Every figure is measured on fresh lakehouses under a temporary folder, with the CLI a new user runs
(``python -m cli run``), each run in its own process so Spark's start is included:

1. ``--days 1`` wall time (cold);
2. ``--days N`` in one ranged run, divided by (1);
3. the same N dates again with nothing changed, divided by (2);
4. the last 3 of those dates run one by one on a second lakehouse with the same landing zone:
   the content digest of every gold table must equal the ranged run's for those dates (each
   table's verdict is printed, and which differ);
5. against a local OpenAI-compatible server (the tests' fake, on loopback): 3 dates cold, then
   again unchanged: the LLM requests each run sent (the re-run must send none).

    .venv/bin/python benchmarks/backfill_cost.py --dates 30   # make bench-backfill
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLD_TABLES = (
    "expense_lines",
    "hr_cases",
    "recon_matches",
    "recon_exceptions",
    "close_summary",
    "close_narrative",
    "recon_exception_notes",
    "invoice_documents",
    "contract_terms",
    "review_queue",
)
# What differs between two runs of the same data: when and by whom, not what.
RUN_COLUMNS = {
    "_ingested_at",
    "source",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "attempts",
    "latency_ms",
    "urgency_source",
    "urgency_tokens_in",
    "urgency_tokens_out",
    "urgency_cost_usd",
    "urgency_attempts",
    "urgency_latency_ms",
}


def close(
    lakehouse: Path, last: date, days: int, args: argparse.Namespace, llm: str | None = None
) -> float:
    """Run ``python -m cli run`` in a new process on ``lakehouse``; its wall time in seconds.

    ``llm``: the base URL of an OpenAI-compatible server to enrich with (else the offline model).
    """
    env = {
        **os.environ,
        "LAKEHOUSE_ROOT": str(lakehouse),
        "DAGSTER_HOME": str(lakehouse / "_dagster_home"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("OPENAI_API_KEY", None)
    if llm:
        env.update(OPENAI_API_KEY="sk-bench-local", OPENAI_BASE_URL=llm)
    (lakehouse / "_dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", lakehouse / "_dagster_home" / "dagster.yaml")
    command = [sys.executable, "-m", "cli", "run", "--date", last.isoformat(), "--days", str(days)]
    command += ["--gl-lines", str(args.gl_lines), "--rows", str(args.rows)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    print(f"{lakehouse.name}: --days {days} to {last}: {elapsed:.0f} s", file=sys.stderr)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def digests(lakehouse: Path, days: list[date]) -> dict[str, str]:
    """A content digest per gold table over ``days``: sorted rows, run-specific columns left out.

    Lineage columns name landed files by their full path (``_source_file``), which holds the
    lakehouse's root: the root is replaced by ``<root>`` so two lakehouses with the same landing
    zone can agree (the file names still count).
    """
    from deltalake import DeltaTable

    out = {}
    for name in GOLD_TABLES:
        table = DeltaTable(str(lakehouse / "gold" / name)).to_pandas()
        table = table[table["business_date"].astype(str).isin([d.isoformat() for d in days])]
        columns = sorted(c for c in table.columns if c not in RUN_COLUMNS)
        rows = sorted(
            "|".join(str(v).replace(str(lakehouse), "<root>") for v in row)
            for row in table[columns].itertuples(index=False)
        )
        out[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
    return out


def compare_digests(ranged: dict[str, str], single: dict[str, str]) -> dict[str, str]:
    """Per gold table: ``equal``, or ``DIFFERS`` with both digests."""
    return {
        name: "equal"
        if ranged[name] == single[name]
        else f"DIFFERS (ranged {ranged[name]}, one by one {single[name]})"
        for name in GOLD_TABLES
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=30, help="dates of the ranged run")
    parser.add_argument("--gl-lines", type=int, default=600)
    parser.add_argument("--rows", type=int, default=300, help="expense lines per day")
    parser.add_argument("--last", type=date.fromisoformat, default=date(2026, 10, 30))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.machine import describe

    machine = describe()  # before the runs: the machine idle
    work = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    try:
        one = close(work / "one", args.last, 1, args)
        ranged = close(work / "ranged", args.last, args.dates, args)
        again = close(work / "ranged", args.last, args.dates, args)
        # The same landing zone, closed date by date (the first dates first: carry-forward).
        tail = [args.last - timedelta(days=i) for i in reversed(range(min(3, args.dates)))]
        shutil.copytree(work / "ranged" / "landing", work / "single" / "landing")
        first = args.last - timedelta(days=args.dates - 1)
        head = (tail[0] - first).days
        if head:
            close(work / "single", tail[0] - timedelta(days=1), head, args)
        for day in tail:
            close(work / "single", day, 1, args)
        verdicts = compare_digests(digests(work / "ranged", tail), digests(work / "single", tail))
        same = all(v == "equal" for v in verdicts.values())
        from tests.enrichment.fake_openai import FakeOpenAI

        with FakeOpenAI() as server:
            llm_cold_s = close(work / "llm", args.last, 3, args, server.base_url)
            cold_requests = len(server.chat_requests())
            llm_again_s = close(work / "llm", args.last, 3, args, server.base_url)
            again_requests = len(server.chat_requests()) - cold_requests
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| figure | value |\n|---|---|")
    print(machine)
    print(f"| `--days 1` wall, cold, Spark start included | {one:.0f} s |")
    n = args.dates
    print(f"| `--days {n}` in one ranged run | {ranged:.0f} s ({ranged / one:.2f}x one date) |")
    print(f"| unchanged re-run of the {n} dates | {again:.0f} s ({again / ranged:.2f}x cold) |")
    differ = [name for name, verdict in verdicts.items() if verdict != "equal"]
    print(
        f"| ranged = one by one, last {len(tail)} dates, every gold table | "
        f"{'equal' if same else 'differ: ' + ', '.join(differ)} |"
    )
    for name, verdict in verdicts.items():
        print(f"| ranged = one by one: gold.{name} | {verdict} |")
    print(
        f"| 3 dates against a local OpenAI-compatible server: cold | {llm_cold_s:.0f} s, "
        f"{cold_requests} requests |"
    )
    print(
        f"| the same 3 dates again, unchanged | {llm_again_s:.0f} s "
        f"({llm_again_s / llm_cold_s:.2f}x cold), {again_requests} requests |"
    )
    return 0 if same and again_requests == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
