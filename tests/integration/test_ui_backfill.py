"""A data engineer's path, in a real browser: backfill a range of dates from the Dagster UI.

Starts ``dagster dev`` on loopback and drives Debian's Chromium with Playwright: in the asset
lineage, filters to ``silver_fx_rates`` and its parent (the bronze and silver steps of one source:
the UI and the backfill machinery are under test here, not the close, which ``tests/e2e/`` runs),
launches a backfill of two business dates from "Materialize all…", waits (in the instance the UI
serves) for the daemon's run of it to end, and the backfill's page must show that run Success.
The backfill must have run as one ranged run of both dates (the assets'
``BackfillPolicy.multi_run``), and both tables must hold both dates. Screenshots go to
``artifacts/``.
"""

import re
import shutil
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from sample import close as sample_close
from tests.integration.conftest import (
    ARTIFACTS,
    BROWSER_ARGS,
    CHROMIUM,
    PROJECT_ROOT,
    background,
    free_port,
    project_env,
    require_chromium,
)

pytestmark = pytest.mark.slow

# Inside the dialog's default "last 90 days" window, and older than the landing sensor's
# lookback, so only the backfill materializes them.
FIRST = date.today() - timedelta(days=12)
DATES = [FIRST + timedelta(days=i) for i in range(2)]
ASSETS = {"bronze_fx_rates", "silver_fx_rates"}
SELECTION = "+key:silver_fx_rates"  # the lineage filter: silver_fx_rates and its parent


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


def _dates(root: Path, table: str) -> set[str]:
    path = root / table
    if not (path / "_delta_log").is_dir():
        return set()
    column = DeltaTable(str(path)).to_pyarrow_table(columns=["business_date"]).column(0)
    return {str(d) for d in column.to_pylist()}


def _wait_for_backfill_runs(home: Path, backfill_id: str, timeout_s: float) -> list:
    """The backfill's runs once it has launched one and all of them have ended (or the timeout),
    read a second at a time from the instance the UI serves."""
    from dagster import DagsterInstance, RunsFilter

    deadline = time.monotonic() + timeout_s
    with DagsterInstance.from_config(str(home)) as instance:
        while True:
            runs = list(
                instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill_id}))
            )
            if (runs and all(r.is_finished for r in runs)) or time.monotonic() > deadline:
                return runs
            time.sleep(1)


def test_backfill_two_dates_from_the_ui(tmp_path):
    require_chromium()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    root, home = tmp_path / "lakehouse", tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    sample_close.generate_close(
        root,
        min(DATES),
        max(DATES),
        seed=1,
        gl_lines_per_day=80,
        employees=20,
        expense_rows=60,
        with_documents=False,  # the backfill reads fx rates: no invoice or contract documents
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
    log = tmp_path / "dagster-dev.log"
    status = "not seen"
    with background(cmd, env, log):
        _wait_http(f"{base}/server_info", timeout_s=180)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/asset-groups")
            materialize = page.get_by_role("button", name="Materialize all…")
            materialize.wait_for(timeout=60_000)
            # A new instance greets the user with a newsletter prompt, a moment after load.
            skip = page.get_by_role("button", name="Skip")
            try:
                skip.wait_for(timeout=15_000)
                skip.click()
            except PlaywrightTimeout:
                pass
            # The lineage's filter box (a code editor, not an input): the selection, then Enter.
            page.locator(".CodeMirror").first.click()
            page.keyboard.type(SELECTION)
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(r"/asset-groups~"), timeout=10_000)
            page.screenshot(path=ARTIFACTS / "ui-asset-graph.png")

            materialize.click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text(f"Launch runs to materialize {len(ASSETS)} assets").wait_for(
                timeout=10_000
            )
            selection = dialog.get_by_placeholder("No matching partitions")
            selection.fill(f"[{DATES[0]}...{DATES[-1]}]")
            selection.press("Enter")
            dialog.get_by_text(f"{len(DATES)} partitions").first.wait_for(timeout=10_000)
            dialog.get_by_text("Launch runs to materialize").click()  # close the suggestions
            page.screenshot(path=ARTIFACTS / "ui-backfill-dialog.png")
            dialog.get_by_role("button", name="Launch backfill").click()
            created = page.get_by_text(re.compile(r"Created backfill \w+"))
            created.wait_for(timeout=60_000)
            backfill_id = re.search(r"Created backfill (\w+)", created.inner_text()).group(1)

            # Its run ends once its last step is done (two small steps; a few minutes on two busy
            # cores): watched in the instance the UI serves, a second at a time, not by reloading
            # the UI's pages (each reload is seconds of the browser's CPU on two busy cores).
            runs = _wait_for_backfill_runs(home, backfill_id, timeout_s=900)
            # Then the backfill's page, Runs tab, must show how its run ended.
            page.goto(f"{base}/runs/b/{backfill_id}?tab=runs")
            outcome = page.get_by_text(re.compile(r"^(Success|Failure)$"))
            try:
                outcome.first.wait_for(timeout=60_000)
                status = outcome.first.inner_text()
            except PlaywrightTimeout:
                pass
            page.screenshot(path=ARTIFACTS / "ui-backfill-runs.png")
            browser.close()
    tail = log.read_text()[-4000:]
    assert status == "Success", f"the backfill's run showed {status} in the UI\n{tail}"
    # One ranged run of both dates and both assets, not a run per date.
    assert len(runs) == 1, [r.run_id for r in runs]
    (run,) = runs
    assert run.is_success
    assert set(k.to_user_string() for k in run.asset_selection) == ASSETS
    assert run.tags["dagster/asset_partition_range_start"] == str(DATES[0])
    assert run.tags["dagster/asset_partition_range_end"] == str(DATES[-1])
    for table in ("bronze/fx_rates", "silver/fx_rates"):
        assert _dates(root, table) == {str(d) for d in DATES}, table
