"""What a broken LLM endpoint costs a night: ``cli run --days 1`` against an endpoint that fails.

Starts the tests' local OpenAI-compatible server (``tests/enrichment/fake_openai.py``, on
127.0.0.1, never the internet) with one fault on every request, closes one sample date with
``python -m cli run`` on a fresh lakehouse pointed at it, and prints per fault mode: the requests
the whole night sent, whether the run succeeded (the gate published or refused), and the CLI's
own lines about the LLM (``LLM unavailable: N rows answered by the fallback model``). Then, for
the malformed-JSON mode, the same date again with the endpoint healthy: the requests that re-run
sent (only the rows the fallback answered; none of the others, which the cache holds).

Usage: .venv/bin/python benchmarks/broken_endpoint.py [--modes malformed,500,401] [--rows 300]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.enrichment.fake_openai import FakeOpenAI, Fault  # noqa: E402

MODES = {
    "malformed": lambda: Fault.malformed(),
    "500": lambda: Fault.http(500),
    "401": lambda: Fault.http(401),
}


def close(lakehouse: Path, day: date, base_url: str, rows: int) -> tuple[float, int, str]:
    """``cli run --days 1`` on ``lakehouse`` against ``base_url``: wall s, exit code, output."""
    env = {
        **os.environ,
        "LAKEHOUSE_ROOT": str(lakehouse),
        "PYTHONPATH": str(ROOT),
        "OPENAI_API_KEY": "sk-bench-local",
        "OPENAI_BASE_URL": base_url,
    }
    env.pop("DAGSTER_HOME", None)
    command = [sys.executable, "-m", "cli", "run", "--date", day.isoformat(), "--days", "1"]
    command += ["--rows", str(rows)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode, done.stdout + done.stderr


def llm_lines(output: str) -> list[str]:
    """The CLI's lines about the LLM's availability and who wrote what."""
    keys = ("LLM unavailable", "circuit", "written by", "failed at")
    return [line.strip() for line in output.splitlines() if any(k in line for k in keys)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="malformed,500,401")
    parser.add_argument("--rows", type=int, default=300, help="expense lines on the date")
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 10, 30))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-broken-"))
    report = []
    try:
        for mode in args.modes.split(","):
            with FakeOpenAI() as server:
                server.fail_always(MODES[mode]())
                lakehouse = work / mode
                wall, code, output = close(lakehouse, args.date, server.base_url, args.rows)
                sent = len(server.chat_requests())
                report.append((mode, wall, code, sent, llm_lines(output)))
                if mode == "malformed":
                    server.fail_always(None)
                    server.reset_log()
                    wall2, code2, output2 = close(lakehouse, args.date, server.base_url, args.rows)
                    resent = len(server.chat_requests())
                    report.append(("healthy again", wall2, code2, resent, llm_lines(output2)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| endpoint | wall | run | requests sent |\n|---|---|---|---|")
    for mode, wall, code, sent, _ in report:
        verdict = "succeeded" if code == 0 else f"failed ({code})"
        print(f"| {mode} | {wall:.0f} s | {verdict} | {sent} |")
    for mode, _, _, _, lines in report:
        print(f"\n{mode}:")
        for line in lines:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
