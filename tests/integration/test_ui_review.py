"""An analyst's path, in a real browser: override a queued label, publish, see it in gold.

The smallest lakehouse that has a review queue: one date of gold-shaped expense lines staged and
audited directly (``tests/gold_helpers.py``), one of them unsure; the publish of
``gold_expense_lines`` and the queue's two assets run in-process through Dagster. The review page
runs on loopback (``tests/review/server.py``) and Debian's Chromium, driven by Playwright, signs
in with HTTP Basic, opens the queued value from the queue, overrides its label with a comment;
the next publish of the date puts the reviewer's value in gold. Screenshots go to ``artifacts/``.
"""

import pytest
from dagster import materialize

from assets.expenses import gold_expense_lines
from assets.review_queue import gold_review_queue, staging_review_queue
from infra.lakehouse import LakehouseResource
from infra.review import read_decisions
from infra.settings import Reviewer
from infra.spark import SparkResource
from review.auth import hash_password
from tests.gold_helpers import DAY, GOLD, line, stage_audited
from tests.integration.conftest import ARTIFACTS, BROWSER_ARGS, CHROMIUM, require_chromium
from tests.review.server import review_page

pytestmark = [pytest.mark.slow, pytest.mark.spark]

PASSWORD = "alice-pw"
# Few PBKDF2 rounds: the format and the check are the real ones, the cost is not under test.
REVIEWERS = (Reviewer("alice", hash_password(PASSWORD, iterations=1000), "analyst"),)


def _publish(lakehouse: LakehouseResource, assets: list) -> dict:
    result = materialize(
        assets,
        resources={"spark": SparkResource(), "lakehouse": lakehouse},
        partition_key=DAY.isoformat(),
    )
    assert result.success
    return {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }


def test_an_override_made_in_the_browser_is_published_to_gold(spark, lakehouse_root):
    require_chromium()
    from playwright.sync_api import sync_playwright

    lakehouse = LakehouseResource()
    # ER-0 line 2 is unsure (0.3, below the 0.6 threshold): the one value queued.
    stage_audited(spark, lakehouse, [line(i, confidence=0.3 if i == 1 else 0.9) for i in range(3)])
    _publish(lakehouse, [gold_expense_lines, staging_review_queue, gold_review_queue])
    ARTIFACTS.mkdir(exist_ok=True)

    with review_page(lakehouse, REVIEWERS) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        context = browser.new_context(
            http_credentials={"username": "alice", "password": PASSWORD},
            viewport={"width": 1200, "height": 900},
        )
        page = context.new_page()
        page.goto(base)
        assert page.locator("#open-count").inner_text() == "1"
        page.screenshot(path=ARTIFACTS / "review-queue.png")
        page.locator("#queue tr.item a").click()
        page.wait_for_url("**/item?**")
        assert page.locator("#proposed").inner_text() == "ground_transport"
        assert "Taxi to the client." in page.locator("#record-text").inner_text()
        page.locator('input[name="new_value"][value="meals"]').check()
        page.locator('textarea[name="comment"]').fill("a team dinner, not a taxi")
        page.screenshot(path=ARTIFACTS / "review-item.png")
        page.get_by_role("button", name="Override with the chosen label").click()
        page.get_by_text("Decision recorded.").wait_for(timeout=30_000)
        assert page.locator("#open-count").inner_text() == "0"
        page.screenshot(path=ARTIFACTS / "review-decided.png")
        browser.close()

    [decision] = read_decisions(lakehouse)
    assert (decision["decided_by"], decision["new_value"]) == ("alice", "meals")
    # The next publish of the date: the decision is an input, so the date is not skipped.
    published = _publish(lakehouse, [gold_expense_lines])["gold_expense_lines"]
    assert published["review_decisions_applied"].value == 1
    gold = {
        (r.report_id, r.line_id): r
        for r in lakehouse.read(spark, GOLD.gold).where(f"business_date = '{DAY}'").collect()
    }
    decided = gold[("ER-0", 2)]
    assert (decided.spend_category, decided.source, decided.reviewed_by) == (
        "meals",
        "human",
        "alice",
    )
    assert {r.source for key, r in gold.items() if key != ("ER-0", 2)} == {"model"}
