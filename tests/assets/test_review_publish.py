"""An analyst's decision reaches gold on the next publish, stays on a re-run, and is reported
when its key is gone.

Gold-shaped expense lines are staged and audited directly (``tests/gold_helpers.py``); the
publish and the review queue run through Dagster with a minimal selection.
"""

import pytest
from dagster import AssetCheckSeverity, materialize

from assets.expenses import gold_expense_lines
from assets.review_queue import (
    OPEN_ITEMS_CHECK,
    OVERRIDE_RATE_CHECK,
    QueueMetrics,
    gold_review_queue,
    metric_checks,
    staging_review_queue,
)
from infra.lakehouse import LakehouseResource
from infra.review import assign_item, open_queue, queue_item, read_decisions, record_decision
from infra.settings import REVIEW_ALERTS, review_alerts
from infra.spark import SparkResource
from infra.versions import RECOMPUTE_TAG
from tests.gold_helpers import DAY, GOLD, line, stage_audited


def _run(lakehouse: LakehouseResource, assets: list, **tags: str):
    result = materialize(
        assets,
        resources={"spark": SparkResource(), "lakehouse": lakehouse},
        partition_key=DAY.isoformat(),
        tags=tags,
    )
    assert result.success
    return {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }


def _gold_line(spark, lakehouse: LakehouseResource, report: str, line_id: int):
    return (
        lakehouse.read(spark, GOLD.gold)
        .where(f"report_id = '{report}' AND line_id = {line_id}")
        .first()
    )


def test_a_decision_is_published_kept_on_a_rerun_and_reported_when_its_key_is_gone(
    spark, lakehouse_root
):
    lakehouse = LakehouseResource()
    # ER-0 line 2 is unsure: it queues
    rows = [line(i, confidence=0.3 if i == 1 else 0.9) for i in range(3)]
    stage_audited(spark, lakehouse, rows)
    queue_assets = [staging_review_queue, gold_review_queue]
    first = _run(lakehouse, [gold_expense_lines, *queue_assets])
    assert first["gold_expense_lines"]["review_decisions_applied"].value == 0
    [item] = open_queue(lakehouse, "expense_lines")
    assert (item["reason"], item["proposed_value"], item["status"]) == (
        "LOW_CONFIDENCE",
        "ground_transport",
        "open",
    )
    assert item["record_text"] == "Merchant: Uber\nJustification: Taxi to the client."
    assert first["gold_review_queue"]["open_items"].value == 1

    # Assigned to bob, decided by alice: the queue keeps both.
    assign_item(
        lakehouse,
        table="expense_lines",
        key=item["key"],
        business_date=DAY,
        field="spend_category",
        assignee="bob",
        assigned_by="alice",
        assigner_role="analyst",
        reviewers=["alice", "bob"],
    )
    assert open_queue(lakehouse, assignee="bob") == [{**item, "assignee": "bob"}]
    record_decision(
        lakehouse,
        table="expense_lines",
        key=item["key"],
        business_date=DAY,
        field="spend_category",
        decision="overridden",
        new_value="meals",
        comment="a team dinner",
        decided_by="alice",
        reviewer_role="analyst",
    )
    # The decision is an input of the date: neither the publish nor the queue's date is skipped
    # as unchanged.
    after = _run(lakehouse, [gold_expense_lines, *queue_assets])
    published = after["gold_expense_lines"]
    assert published["dates_computed"].value == 1
    assert published["review_decisions_applied"].value == 1
    decided = _gold_line(spark, lakehouse, "ER-0", 2)
    assert (decided.spend_category, decided.source, decided.model, decided.confidence) == (
        "meals",
        "human",
        "human-review",
        1.0,
    )
    assert (decided.reviewed_by, decided.category_differs_from_claim) == ("alice", True)
    untouched = _gold_line(spark, lakehouse, "ER-0", 1)
    assert (untouched.source, untouched.reviewed_by) == ("model", None)
    # The queue shows the item overridden, and the override rate of the model reviewed.
    now = queue_item(lakehouse, "expense_lines", item["key"], DAY, "spend_category")
    assert (now["status"], now["decided_by"], now["assignee"]) == ("overridden", "alice", "bob")
    assert open_queue(lakehouse) == []
    [rate] = after["gold_review_queue"]["override_rate_by_model"].value
    assert (rate["model"], rate["decisions"], rate["override_rate"]) == ("embedded/test", 1, 1.0)

    # A re-run of the date (recomputed, the model answering as before) keeps the human value.
    _run(lakehouse, [gold_expense_lines], **{RECOMPUTE_TAG: "true"})
    assert _gold_line(spark, lakehouse, "ER-0", 2).source == "human"

    # The date is staged again without ER-0 line 2: the decision is reported, and kept. (Staged
    # here behind the staging step's back, so its recorded version did not move: recompute.)
    stage_audited(spark, lakehouse, [r for i, r in enumerate(rows) if i != 1])
    gone = _run(lakehouse, [gold_expense_lines], **{RECOMPUTE_TAG: "true"})["gold_expense_lines"]
    assert gone["review_decisions_unmatched"].value == 1
    [unmatched] = gone["review_decisions_unmatched_list"].value
    assert (unmatched["key"], unmatched["new_value"]) == (item["key"], "meals")
    assert len(read_decisions(lakehouse)) == 1


def test_the_queue_checks_warn_above_the_configured_limits(monkeypatch):
    monkeypatch.setenv("REVIEW_ALERTS", "max_open_items=2,min_decisions=3")
    alerts = review_alerts()
    assert alerts == {**REVIEW_ALERTS, "max_open_items": 2.0, "min_decisions": 3.0}

    def rate(model, decisions, overridden):
        return {"model": model, "prompt_version": "v1", "decisions": decisions,
                "overridden": overridden, "override_rate": overridden / decisions}  # fmt: skip

    metrics = QueueMetrics(
        {"expense_lines": {"0-1 days": 2}, "hr_cases": {"over 30 days": 1}},
        {},
        # gpt is overridden too often; tiny has too few decisions to say
        [rate("gpt", 4, 2), rate("tiny", 2, 2), rate("good", 10, 1)],
        DAY,
    )
    checks = {c.check_name: c for c in metric_checks(metrics, alerts)}
    assert not checks[OPEN_ITEMS_CHECK].passed
    assert checks[OPEN_ITEMS_CHECK].severity == AssetCheckSeverity.WARN
    assert checks[OPEN_ITEMS_CHECK].metadata["open_items"].value == 3
    assert not checks[OVERRIDE_RATE_CHECK].passed
    assert checks[OVERRIDE_RATE_CHECK].severity == AssetCheckSeverity.WARN
    [noisy] = checks[OVERRIDE_RATE_CHECK].metadata["over_the_limit"].value
    assert noisy["model"] == "gpt"
    quiet = {c.check_name: c.passed for c in metric_checks(metrics, REVIEW_ALERTS)}
    assert quiet == {OPEN_ITEMS_CHECK: True, OVERRIDE_RATE_CHECK: True}
    monkeypatch.setenv("REVIEW_ALERTS", "max_override_rate=1.5")
    with pytest.raises(ValueError, match="max_override_rate"):
        review_alerts()
