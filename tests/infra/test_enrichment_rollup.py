"""The step metadata of an enrichment: counts by status and source, spend and latency."""

from dagster import MetadataValue

from infra.enrichment import enrichment_rollup
from transforms.frames import local_frame

SCHEMA = (
    "enrichment_status string, source string, tokens_in int, tokens_out int, cost_usd double, "
    "latency_ms double, injection_suspected boolean, urgency_enrichment_status string, "
    "urgency_source string, urgency_tokens_in int, urgency_tokens_out int, "
    "urgency_cost_usd double, urgency_latency_ms double"
)


def test_counts_spend_and_latency_in_one_rollup_and_the_second_outcome_by_prefix(spark):
    staged = local_frame(
        spark,
        [
            ("ok", "llm", 100, 20, 0.01, 10.0, False, "ok", "rule", 0, 0, 0.0, 0.0),
            ("ok", "cache", 0, 0, 0.0, 0.0, True, "ok", "rule", 0, 0, 0.0, 0.0),
            ("failed", "llm", 50, 0, 0.005, 30.0, None, "failed", "llm", 7, 1, 0.5, 5.0),
        ],
        SCHEMA,
    )
    assert enrichment_rollup(staged) == {
        "rows_by_status": MetadataValue.json({"ok": 2, "failed": 1}),
        "rows_by_source": MetadataValue.json({"llm": 2, "cache": 1}),
        "llm_tokens_in": 150,
        "llm_tokens_out": 20,
        "llm_cost_usd": 0.015,
        "latency_ms_p50": 10.0,
        "latency_ms_p95": 30.0,
        "injection_suspected_rows": 1,
    }
    urgency = enrichment_rollup(staged, "urgency_")
    assert urgency["urgency_rows_by_source"] == MetadataValue.json({"rule": 2, "llm": 1})
    assert urgency["urgency_llm_tokens_in"] == 7
    assert "urgency_injection_suspected_rows" not in urgency
    empty = enrichment_rollup(staged.limit(0))
    assert empty["rows_by_status"] == MetadataValue.json({})
    assert (empty["llm_tokens_in"], empty["latency_ms_p95"], empty["injection_suspected_rows"]) == (
        0,
        0.0,
        0,
    )
