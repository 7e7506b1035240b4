"""A data engineer's path, in a real browser: backfill two dates from the Dagster UI.

Starts ``dagster dev`` on loopback, drives Debian's Chromium with Playwright to open the asset
lineage, launches a backfill of two business dates from "Materialize all…", waits for gold to hold
both partitions, and saves screenshots under ``artifacts/``.
"""

import os
import shutil
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from sample import close as sample_close
from tests.integration.conftest import PROJECT_ROOT, background, free_port, project_env

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Inside the dialog's default "last 90 days" window, and older than the landing sensor's
# lookback, so only the backfill materializes them.
FIRST = date.today() - timedelta(days=12)
DATES = [FIRST + timedelta(days=i) for i in range(2)]
ARTIFACTS = PROJECT_ROOT / "artifacts"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


def _gold_dates(root: Path) -> set[str]:
    path = root / "gold" / "expense_lines"
    if not (path / "_delta_log").is_dir():
        return set()
    column = DeltaTable(str(path)).to_pyarrow_table(columns=["business_date"]).column(0)
    return {str(d) for d in column.to_pylist()}


def test_backfill_two_dates_from_the_ui(tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("REQUIRE_BROWSER_TEST"):
            pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    root, home = tmp_path / "lakehouse", tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    sample_close.generate_close(
        root, min(DATES), max(DATES), seed=1, gl_lines_per_day=80, employees=20, expense_rows=60
    )
    port = free_port()
    env = project_env(LAKEHOUSE_ROOT=str(root), DAGSTER_HOME=str(home))
    cmd = [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    with background(cmd, env, tmp_path / "dagster-dev.log"):
        _wait_http(f"{base}/server_info", timeout_s=180)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/asset-groups")
            page.get_by_role("button", name="Materialize all…").wait_for(timeout=60_000)
            # A new instance greets the user with a newsletter prompt, a moment after load.
            skip = page.get_by_role("button", name="Skip")
            try:
                skip.wait_for(timeout=15_000)
                skip.click()
            except PlaywrightTimeout:
                pass
            page.get_by_text("gold", exact=True).first.wait_for()
            page.screenshot(path=ARTIFACTS / "ui-asset-graph.png")

            page.get_by_role("button", name="Materialize all…").click()
            dialog = page.get_by_role("dialog")
            selection = dialog.get_by_placeholder("No matching partitions")
            selection.fill(f"[{DATES[0]}...{DATES[-1]}]")
            selection.press("Enter")
            dialog.get_by_text("2 partitions").first.wait_for(timeout=10_000)
            dialog.get_by_text("Launch runs to materialize").click()  # close the suggestions
            page.screenshot(path=ARTIFACTS / "ui-backfill-dialog.png")
            dialog.get_by_role("button", name="Launch backfill").click()
            page.get_by_text("Created backfill").wait_for(timeout=60_000)

            # Two dates of the whole close (every source, the reconciliations) in one ranged run;
            # about 15 minutes on two busy cores.
            deadline = time.monotonic() + 2400
            while _gold_dates(root) != {str(d) for d in DATES} and time.monotonic() < deadline:
                time.sleep(5)
            # The run reports success in the UI once its last step has finished.
            succeeded = False
            while not succeeded and time.monotonic() < deadline:
                page.goto(f"{base}/runs")
                page.wait_for_timeout(3000)
                succeeded = page.get_by_text("Success", exact=True).count() > 0
            page.screenshot(path=ARTIFACTS / "ui-backfill-runs.png")
            browser.close()
    assert succeeded, "the backfill run never showed Success in the UI"
    assert _gold_dates(root) == {str(d) for d in DATES}, (tmp_path / "dagster-dev.log").read_text()[
        -4000:
    ]
