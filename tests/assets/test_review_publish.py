"""An analyst's decision reaches gold on the next publish, stays on a re-run, and is reported
when its key is gone.

Gold-shaped expense lines and contract terms are staged and audited directly
(``tests/gold_helpers.py``); the publishes and the review queue run through Dagster with a
minimal selection.
"""

from datetime import date, timedelta

import pytest
from dagster import AssetCheckSeverity, materialize

from assets.close import CONTRACT_TERMS, _published
from assets.documents import gold_contract_terms
from assets.expenses import gold_expense_lines
from assets.review_queue import (
    OPEN_ITEMS_CHECK,
    OVERRIDE_RATE_CHECK,
    QueueMetrics,
    gold_review_queue,
    metric_checks,
    staging_review_queue,
)
from infra.lakehouse import LakehouseResource, TableRef
from infra.review import assign_item, open_queue, queue_item, read_decisions, record_decision
from infra.settings import REVIEW_ALERTS, review_alerts
from infra.spark import SparkResource
from infra.versions import RECOMPUTE_TAG
from tests.gold_helpers import (
    DAY,
    GOLD,
    contract_terms_row,
    line,
    stage_audited,
    stage_audited_contracts,
)
from transforms.frames import local_frame
from transforms.recon.contract_terms import CONTRACT_SCHEMA


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


CONTRACT_TEXT = (
    'Supply agreement between Acme Ltd ("Supplier") and Buyer Corp ("Customer"). '
    "Invoices are payable net 30 days."
)


def _contracts(spark, lakehouse: LakehouseResource) -> dict:
    """gold.contract_terms by file name: one read."""
    rows = lakehouse.read(spark, TableRef("gold", "contract_terms")).collect()
    return {r.file_name: r for r in rows}


@pytest.mark.slow  # Dagster materialize() of the publishes and the queue
def test_a_decision_is_published_kept_on_a_rerun_and_reported_when_its_key_is_gone(
    spark, lakehouse_root
):
    lakehouse = LakehouseResource()
    # ER-0 line 2 is unsure: it queues; so do acme.pdf's payment terms and initech.pdf's
    # effective date, a required term it does not state (globex.pdf is sure)
    rows = [line(i, confidence=0.3 if i == 1 else 0.9) for i in range(3)]
    stage_audited(spark, lakehouse, rows)
    contracts = [
        contract_terms_row("acme.pdf", payment_confidence=0.4),
        contract_terms_row("globex.pdf"),
        contract_terms_row("initech.pdf", effective_date=None),
    ]
    stage_audited_contracts(spark, lakehouse, contracts)
    lakehouse.write_dates(
        local_frame(
            spark,
            [(DAY, "acme.pdf", 1, CONTRACT_TEXT, "text", None)],
            "business_date date, file_name string, page int, text string, method string, "
            "ocr_confidence double",
        ),
        TableRef("silver", "contract_document_pages"),
        [DAY],
    )
    published = [gold_expense_lines, gold_contract_terms]
    queue_assets = [staging_review_queue, gold_review_queue]
    first = _run(lakehouse, [*published, *queue_assets])
    assert first["gold_expense_lines"]["review_decisions_applied"].value == 0
    assert first["gold_contract_terms"]["review_decisions_applied"].value == 0
    [item] = open_queue(lakehouse, "expense_lines")
    assert (item["reason"], item["proposed_value"], item["status"]) == (
        "LOW_CONFIDENCE",
        "ground_transport",
        "open",
    )
    assert item["record_text"] == "Merchant: Uber\nJustification: Taxi to the client."
    term, missing = open_queue(lakehouse, "contract_terms")
    assert (term["key"], term["field"], term["proposed_value"], term["confidence"]) == (
        '{"file_name":"acme.pdf"}',
        "payment_terms",
        "net 30 days",
        0.4,
    )
    assert (term["reason"], term["threshold"], term["model"]) == (
        "LOW_CONFIDENCE",
        0.6,
        "embedded/contract-rules-v1",
    )
    assert term["record_text"] == f"<<page 1>>\n{CONTRACT_TEXT}"
    assert (missing["key"], missing["field"], missing["proposed_value"], missing["reason"]) == (
        '{"file_name":"initech.pdf"}',
        "effective_date",
        None,
        "LOW_CONFIDENCE",
    )
    assert first["gold_review_queue"]["open_items"].value == 3
    # Gold carries the review columns before any decision, empty.
    assert {n: r.reviewed_fields for n, r in _contracts(spark, lakehouse).items()} == {
        "acme.pdf": [],
        "globex.pdf": [],
        "initech.pdf": [],
    }

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
    for table, key, field, value, comment in (
        ("expense_lines", item["key"], "spend_category", "meals", "a team dinner"),
        ("contract_terms", term["key"], "payment_terms", "net 45 days", "clause 7.2 says 45"),
        ("contract_terms", missing["key"], "effective_date", "2026-02-01", "signature page"),
    ):
        record_decision(
            lakehouse,
            table=table,
            key=key,
            business_date=DAY,
            field=field,
            decision="overridden",
            new_value=value,
            comment=comment,
            decided_by="alice",
            reviewer_role="analyst",
        )
    # The decision is an input of the date: neither the publishes nor the queue's date is
    # skipped as unchanged.
    after = _run(lakehouse, [*published, *queue_assets])
    assert after["gold_expense_lines"]["dates_computed"].value == 1
    assert after["gold_expense_lines"]["review_decisions_applied"].value == 1
    assert after["gold_contract_terms"]["dates_computed"].value == 1
    assert after["gold_contract_terms"]["review_decisions_applied"].value == 2
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
    # The contract's payment terms are the person's, and so are the days the close reads.
    contracts_now = _contracts(spark, lakehouse)
    acme = contracts_now["acme.pdf"]
    assert (acme.payment_terms, acme.payment_days) == ("net 45 days", 45)
    terms = [(f.value, f.source, f.confidence) for f in acme.fields if f.field == "payment_terms"]
    assert terms == [("net 45 days", "human", 1.0)]
    assert [(r.field, r.reviewed_by) for r in acme.reviewed_fields] == [("payment_terms", "alice")]
    assert contracts_now["globex.pdf"].reviewed_fields == []
    initech = contracts_now["initech.pdf"]
    assert (initech.effective_date, initech.payment_days) == (date(2026, 2, 1), 30)
    read_by_close = {
        r.file_name: (r.payment_terms, r.payment_days)
        for r in _published(lakehouse, spark, CONTRACT_TERMS, CONTRACT_SCHEMA).collect()
    }
    assert read_by_close == {
        "acme.pdf": ("net 45 days", 45),
        "globex.pdf": ("net 30 days", 30),
        "initech.pdf": ("net 30 days", 30),
    }
    # The queue shows the items overridden, and the override rate of each model reviewed.
    now = queue_item(lakehouse, "expense_lines", item["key"], DAY, "spend_category")
    assert (now["status"], now["decided_by"], now["assignee"]) == ("overridden", "alice", "bob")
    now = queue_item(lakehouse, "contract_terms", term["key"], DAY, "payment_terms")
    assert (now["status"], now["decided_by"], now["proposed_value"]) == (
        "overridden",
        "alice",
        "net 30 days",
    )
    assert open_queue(lakehouse) == []
    rates = after["gold_review_queue"]["override_rate_by_model"].value
    assert sorted((r["table_name"], r["field"], r["model"], r["decisions"]) for r in rates) == [
        ("contract_terms", "effective_date", "embedded/contract-rules-v1", 1),
        ("contract_terms", "payment_terms", "embedded/contract-rules-v1", 1),
        ("expense_lines", "spend_category", "embedded/test", 1),
    ]
    assert {r["override_rate"] for r in rates} == {1.0}

    # A re-run of the date (recomputed, the model answering as before) keeps the human value.
    _run(lakehouse, [gold_expense_lines], **{RECOMPUTE_TAG: "true"})
    assert _gold_line(spark, lakehouse, "ER-0", 2).source == "human"

    # The date is staged again without ER-0 line 2 and initech.pdf, acme.pdf read as before:
    # the decisions on the keys gone are reported, and kept; acme's is applied again. (Staged
    # here behind the staging steps' back, so their recorded versions did not move: recompute.)
    stage_audited(spark, lakehouse, [r for i, r in enumerate(rows) if i != 1])
    stage_audited_contracts(spark, lakehouse, contracts[:2])
    gone = _run(lakehouse, published, **{RECOMPUTE_TAG: "true"})
    for name, key, value in (
        ("gold_expense_lines", item["key"], "meals"),
        ("gold_contract_terms", missing["key"], "2026-02-01"),
    ):
        assert gone[name]["review_decisions_unmatched"].value == 1
        [unmatched] = gone[name]["review_decisions_unmatched_list"].value
        assert (unmatched["key"], unmatched["new_value"]) == (key, value)
    assert gone["gold_contract_terms"]["review_decisions_applied"].value == 1
    acme = _contracts(spark, lakehouse)["acme.pdf"]
    assert (acme.payment_terms, acme.payment_days, acme.reviewed_fields[0].reviewed_by) == (
        "net 45 days",
        45,
        "alice",
    )
    assert len(read_decisions(lakehouse)) == 3


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


class _Spark:
    """A stand-in ``SparkResource`` that counts how often a step asked for a session."""

    def __init__(self) -> None:
        self.asked = 0

    def get_session(self) -> object:
        self.asked += 1
        return self

    @property
    def session(self) -> object:
        return self.get_session()


def _append(lakehouse: LakehouseResource, table: TableRef, **row) -> None:
    """One commit to ``table`` (the measure reads only tables' Delta versions)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(lakehouse.path(table), pa.Table.from_pylist([row]), mode="append")


def test_the_queue_measure_is_reused_until_what_it_reads_changes(monkeypatch, lakehouse_root):
    from datetime import UTC, datetime
    from types import SimpleNamespace

    import assets.review_queue as rq
    from infra import review, versions

    lakehouse = LakehouseResource()
    # The measurement's ledger is written with delta-rs here; the catalog entry needs Spark.
    monkeypatch.setattr(LakehouseResource, "register", lambda self, spark, table: None)
    computed = []

    def queue_metrics(session, lakehouse, days, as_of):
        computed.append(list(days))
        # Figures that trip both warnings, so the reused checks must carry them.
        rate = {"table_name": "expense_lines", "field": "spend_category", "model": "m",
                "prompt_version": "v1", "decisions": 50, "overridden": 40,
                "override_rate": 0.8}  # fmt: skip
        return QueueMetrics({"expense_lines": {"0-1 days": 10**6}}, {}, [rate], as_of)

    monkeypatch.setattr(rq, "queue_metrics", queue_metrics)
    _append(lakehouse, rq.QUEUE.gold, key="a")
    _append(lakehouse, review.REVIEWED_TABLES["expense_lines"].gold, key="a")
    step = versions.Step("gold_review_queue", "assets.review_queue")
    plan = versions.VersionPlan(step, [DAY], {})

    def measure(run_id: str, days=(DAY,)) -> tuple:
        spark = _Spark()
        plan.days = list(days)
        done = rq.measure_queue(SimpleNamespace(run_id=run_id), spark, lakehouse, plan)
        return done, spark.asked

    first, asked = measure("run-1")
    assert len(computed) == 1 and first.metadata["metrics_reused"] == "no: measured now"
    again, asked = measure("run-2")
    assert len(computed) == 1 and asked == 0  # reused: no session asked for at all
    assert "run-1" in again.metadata["metrics_reused"]
    assert again.metadata["metrics_measured_at"] == first.metadata["metrics_measured_at"]
    assert again.metadata["open_items"] == first.metadata["open_items"] == 10**6
    # The two warnings report from the reused figures.
    assert [(c.check_name, c.passed) for c in again.checks] == [
        (c.check_name, c.passed) for c in first.checks
    ]
    assert [c.passed for c in again.checks] == [False, False]

    # A new decision, a new publish of the queue, another run's dates: measured again.
    _append(lakehouse, review.REVIEW_DECISIONS, decision_id="d1")
    assert measure("run-3")[0].metadata["metrics_reused"] == "no: measured now"
    assert len(computed) == 2 and measure("run-4")[1] == 0
    _append(lakehouse, rq.QUEUE.gold, key="b")
    measure("run-5")
    assert len(computed) == 3
    measure("run-6", days=(DAY, DAY - timedelta(days=1)))
    assert len(computed) == 4 and computed[-1] == [DAY, DAY - timedelta(days=1)]
    # Another as-of day (items age): another key, so measured again.
    today = datetime.now(UTC).date()
    key = rq.measurement_key(_Spark().get_session, lakehouse, [DAY], today)
    assert key != rq.measurement_key(
        _Spark().get_session, lakehouse, [DAY], today + timedelta(days=1)
    )
