"""Group summaries in stages (map-reduce) with the embedded provider and the fake OpenAI server.

Backoff is observed, never waited: the OpenAI provider's ``sleep`` only records the delay.
"""

import json
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from enrichment.group_summary import (
    CLOSE_NARRATIVE_TASK,
    GROUP_SUMMARY_COLUMNS,
    GroupSummary,
    group_cache_params,
    group_summarizer,
    group_summary_schema,
    summarize_group,
    summarize_groups,
)
from enrichment.models import (
    SOURCE_LLM,
    SOURCE_MODEL,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    RecordIn,
    RecordOut,
    TaskSpec,
)
from enrichment.prompts import EXPENSE_LINE_TASK, system_prompt
from enrichment.providers.base import ProviderConfig
from enrichment.providers.common import cost_usd
from enrichment.providers.embedded import EMBEDDED_MODEL_ID, EmbeddedProvider
from enrichment.providers.openai_chat import OpenAIChatProvider
from enrichment.tokens import count_tokens
from tests.enrichment.fake_openai import FakeOpenAI, Fault, RecordedRequest
from transforms.frames import local_frame

TASK = CLOSE_NARRATIVE_TASK
MODEL = "gpt-4o-mini"
# System prompt (~280 tokens) plus room for about six exception lines per request.
SMALL_BUDGET = 600
LARGE_BUDGET = 6000
KINDS = ("unmatched bank line", "duplicate invoice", "missing FX rate", "intercompany mismatch")


def exception_text(i: int, entity: str = "DE01") -> str:
    """One reconciliation exception; ``EX-{i:04d}`` makes every text unique and no substring."""
    return (
        f"EX-{i:04d} {entity} {KINDS[i % len(KINDS)]}: EUR {1000 + 37 * i:,}.{i % 100:02d} "
        f"booked 2026-03-{1 + i % 28:02d} in account {1200 + i % 7} has no matching entry, "
        f"open {3 + i % 40} days."
    )


def exceptions(n: int, entity: str = "DE01") -> list[str]:
    return [exception_text(i, entity) for i in range(n)]


@pytest.fixture
def sleeps() -> list[float]:
    return []


def openai_config(server: FakeOpenAI, **overrides: Any) -> ProviderConfig:
    settings: dict[str, Any] = {
        "kind": "openai",
        "base_url": server.base_url,
        "api_key": "test-key",
        "request_timeout_s": 5.0,
        "max_attempts_per_record": 2,
        **overrides,
    }
    return ProviderConfig(**settings)


def openai_provider(config: ProviderConfig, sleeps: list[float]) -> OpenAIChatProvider:
    return OpenAIChatProvider(config, sleep=sleeps.append)


def prompt_tokens(request: RecordedRequest) -> int:
    """The request's prompt as the budget counts it: system plus user message."""
    return count_tokens(request.system or "", MODEL) + count_tokens(request.user or "", MODEL)


def stage_requests(server: FakeOpenAI, group_id: str, stage: int) -> list[RecordedRequest]:
    prefix = f"{group_id}/s{stage}/"
    return [r for r in server.chat_requests() if r.record_ids[0].startswith(prefix)]


# --- one stage ---------------------------------------------------------------------------------


def test_small_group_fits_one_stage_one_call(fake_openai: FakeOpenAI, sleeps: list[float]) -> None:
    texts = exceptions(4)
    provider = openai_provider(openai_config(fake_openai), sleeps)
    result = summarize_group(provider, TASK, "DE01", texts, max_input_tokens=LARGE_BUDGET)

    assert result.status == STATUS_OK, result.error
    assert (result.stages, result.chunks_per_stage, result.input_rows) == (1, [1], 4)
    (request,) = fake_openai.chat_requests()
    assert request.record_ids == ["DE01/s1/0"]
    assert request.records[0]["text"] == "\n".join(texts)
    assert request.system == system_prompt(TASK)
    assert "at most 120 words" in request.system  # the task's own bound reached the prompt
    assert result.narrative and result.narrative in request.records[0]["text"]
    assert (result.source, result.model) == (SOURCE_LLM, MODEL)
    assert result.prompt_version == "close-narrative-v1"
    assert result.attempts == 1 and result.flags == [] and result.truncated_rows == 0
    assert sleeps == []


def test_embedded_provider_is_reported_as_a_model_not_an_llm() -> None:
    texts = exceptions(5)
    result = summarize_group(
        EmbeddedProvider(), TASK, "DE01", texts, max_input_tokens=LARGE_BUDGET, max_words=20
    )
    assert result.status == STATUS_OK, result.error
    assert (result.stages, result.chunks_per_stage) == (1, [1])
    assert result.source == SOURCE_MODEL
    assert result.model == EMBEDDED_MODEL_ID
    assert result.narrative and len(result.narrative.split()) <= 20
    assert (result.tokens_in, result.tokens_out, result.cost_usd) == (0, 0, 0.0)


# --- several stages ----------------------------------------------------------------------------


def test_large_group_takes_stages_and_covers_every_text_once(
    fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    texts = exceptions(40)
    config = openai_config(fake_openai)
    result = summarize_group(
        openai_provider(config, sleeps), TASK, "DE01", texts, max_input_tokens=SMALL_BUDGET
    )
    assert result.status == STATUS_OK, result.error
    assert result.stages >= 2
    assert result.chunks_per_stage[0] > 1 and result.chunks_per_stage[-1] == 1
    assert result.chunks_per_stage == sorted(result.chunks_per_stage, reverse=True)

    requests = fake_openai.chat_requests()
    assert len(requests) == sum(result.chunks_per_stage) == result.attempts
    for request in requests:
        assert len(request.record_ids) == 1  # one chunk per request
        assert prompt_tokens(request) <= SMALL_BUDGET

    stage1 = stage_requests(fake_openai, "DE01", 1)
    assert [r.record_ids[0] for r in stage1] == [
        f"DE01/s1/{n}" for n in range(result.chunks_per_stage[0])
    ]
    chunk_texts = [r.records[0]["text"] for r in stage1]
    joined = "\n".join(chunk_texts)
    assert joined == "\n".join(texts)  # in order, nothing added or cut
    for text in texts:
        assert sum(chunk.count(text) for chunk in chunk_texts) == 1, text

    # Stage 2 summarizes exactly the stage-1 summaries, in order.
    stage1_summaries = [
        fake_openai.answer(r.body, None)[0]["choices"][0]["message"]["content"] for r in stage1
    ]
    stage2_text = "\n".join(r.records[0]["text"] for r in stage_requests(fake_openai, "DE01", 2))
    assert stage2_text == "\n".join(
        json.loads(content)["results"][0]["summary"] for content in stage1_summaries
    )
    last = requests[-1]
    assert last.record_ids == [f"DE01/s{result.stages}/0"]
    assert (
        result.narrative
        == json.loads(fake_openai.answer(last.body, None)[0]["choices"][0]["message"]["content"])[
            "results"
        ][0]["summary"]
    )


def test_provenance_sums_tokens_and_cost_over_all_calls(
    fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    config = openai_config(fake_openai)
    result = summarize_group(
        openai_provider(config, sleeps),
        TASK,
        "FR02",
        exceptions(30, "FR02"),
        max_input_tokens=SMALL_BUDGET,
    )
    assert result.status == STATUS_OK, result.error
    requests = fake_openai.chat_requests()
    assert len(requests) >= 3
    usages = [fake_openai.answer(r.body, None)[0]["usage"] for r in requests]
    tokens_in = sum(u["prompt_tokens"] for u in usages)
    tokens_out = sum(u["completion_tokens"] for u in usages)
    assert tokens_in == sum(prompt_tokens(r) for r in requests)
    assert (result.tokens_in, result.tokens_out) == (tokens_in, tokens_out)
    expected_cost = sum(
        cost_usd(config, u["prompt_tokens"], u["completion_tokens"]) for u in usages
    )
    assert result.cost_usd == pytest.approx(expected_cost)
    assert result.latency_ms > 0


def test_embedded_multi_stage_group() -> None:
    texts = exceptions(40)
    result = summarize_group(
        EmbeddedProvider(), TASK, "DE01", texts, max_input_tokens=SMALL_BUDGET, max_words=25
    )
    assert result.status == STATUS_OK, result.error
    assert result.stages >= 2 and result.chunks_per_stage[-1] == 1
    assert (result.source, result.model) == (SOURCE_MODEL, EMBEDDED_MODEL_ID)
    assert result.attempts == sum(result.chunks_per_stage)


# --- truncation --------------------------------------------------------------------------------


def test_oversize_single_text_is_cut_and_flagged(
    fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    huge = " ".join(exception_text(i) for i in range(100, 140))  # ~1800 tokens, one row
    texts = [exception_text(1), huge, exception_text(2)]
    assert count_tokens(huge, MODEL) > SMALL_BUDGET
    result = summarize_group(
        openai_provider(openai_config(fake_openai), sleeps),
        TASK,
        "DE01",
        texts,
        max_input_tokens=SMALL_BUDGET,
    )
    assert result.status == STATUS_OK, result.error
    assert result.truncated_rows == 1
    (flag,) = [f for f in result.flags if f.startswith("truncated:s1:item1:")]
    before, kept = (int(n) for n in flag.rsplit(":", 1)[1].split("->"))
    assert before == count_tokens(huge, MODEL) and 0 < kept < before

    stage1 = stage_requests(fake_openai, "DE01", 1)
    sent = [r.records[0]["text"] for r in stage1]
    cut = next(t for t in sent if t.startswith("EX-0100"))
    assert huge.startswith(cut) and len(cut) < len(huge)
    assert count_tokens(cut, MODEL) in (kept, kept - 1)  # decode may drop a half character
    assert exception_text(1) in "\n".join(sent) and exception_text(2) in "\n".join(sent)
    for request in fake_openai.chat_requests():
        assert prompt_tokens(request) <= SMALL_BUDGET


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error_part", "billed"),
    [
        (Fault.http(500), "InternalServerError", False),
        (Fault.malformed(), "malformed JSON", True),
    ],
)
def test_persistent_server_fault_fails_the_group_with_its_error(
    fake_openai: FakeOpenAI, sleeps: list[float], fault: Fault, error_part: str, billed: bool
) -> None:
    fake_openai.fail_always(fault)
    provider = openai_provider(openai_config(fake_openai, max_attempts_per_record=2), sleeps)
    result = summarize_group(provider, TASK, "DE01", exceptions(40), max_input_tokens=SMALL_BUDGET)

    assert result.status == STATUS_FAILED
    assert result.narrative is None
    assert result.error is not None
    assert result.error.startswith("stage 1 chunk DE01/s1/0: failed:")
    assert error_part in result.error
    # The provider's own retry budget was spent on the first chunk; later chunks never went.
    requests = fake_openai.chat_requests()
    assert [r.record_ids for r in requests] == [["DE01/s1/0"]] * 2
    assert result.attempts == 2
    assert (result.stages, result.chunks_per_stage) == (1, [result.chunks_per_stage[0]])
    assert (result.source, result.model) == (SOURCE_LLM, MODEL)
    assert (result.tokens_in > 0) is billed


def test_a_later_stage_failure_is_reported_with_its_stage(
    fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    texts = exceptions(40)
    provider = openai_provider(openai_config(fake_openai, max_attempts_per_record=1), sleeps)
    # A clean run first, to know how many stage-1 chunks the group has.
    result_ok = summarize_group(provider, TASK, "DE01", texts, max_input_tokens=SMALL_BUDGET)
    assert result_ok.status == STATUS_OK and result_ok.stages >= 2
    fake_openai.reset_log()

    class FailAfter:
        """Delegates to the OpenAI provider; turns the fake faulty after ``n`` calls."""

        def __init__(self, n: int) -> None:
            self.model_id = provider.model_id
            self.left = n

        def run(self, task: TaskSpec, records: list[RecordIn]) -> list[RecordOut]:
            if self.left == 0:
                fake_openai.fail_always(Fault.http(503))
            self.left -= 1
            return provider.run(task, records)

    stage1_chunks = result_ok.chunks_per_stage[0]
    result = summarize_group(
        FailAfter(stage1_chunks), TASK, "DE01", texts, max_input_tokens=SMALL_BUDGET
    )
    assert result.status == STATUS_FAILED
    assert result.stages == 2 and result.chunks_per_stage[0] == stage1_chunks
    assert result.error is not None and result.error.startswith("stage 2 chunk DE01/s2/0: failed:")
    assert result.tokens_in > 0  # stage 1 was billed and is still reported


def test_summaries_that_do_not_shrink_fail_the_group() -> None:
    class Echo:
        """A 'summary' as long as its input: the stages can never converge."""

        model_id = "echo"

        def run(self, task: TaskSpec, records: list[RecordIn]) -> list[RecordOut]:
            return [
                RecordOut(r.id, STATUS_OK, SOURCE_MODEL, self.model_id, summary=r.text, attempts=1)
                for r in records
            ]

    result = summarize_group(Echo(), TASK, "DE01", exceptions(40), max_input_tokens=SMALL_BUDGET)
    assert result.status == STATUS_FAILED
    assert result.error is not None and "do not shrink" in result.error
    assert result.stages == 1  # stage 2 was refused before any call
    assert result.attempts == result.chunks_per_stage[0]


def test_max_stages_bounds_the_group() -> None:
    result = summarize_group(
        EmbeddedProvider(),
        TASK,
        "DE01",
        exceptions(40),
        max_input_tokens=SMALL_BUDGET,
        max_stages=1,
    )
    assert result.status == STATUS_FAILED
    assert result.error is not None and "max_stages=1" in result.error
    assert result.stages == 1 and result.narrative is None


def test_a_provider_that_raises_fails_the_group_not_the_caller() -> None:
    class Broken:
        model_id = "broken"

        def run(self, task: TaskSpec, records: list[RecordIn]) -> list[RecordOut]:
            raise RuntimeError("boom")

    result = summarize_group(Broken(), TASK, "X", exceptions(3), max_input_tokens=LARGE_BUDGET)
    assert result.status == STATUS_FAILED
    assert result.error == "stage 1 chunk X/s1/0: provider raised RuntimeError: boom"


def test_blank_group_is_skipped_and_blank_rows_are_flagged() -> None:
    result = summarize_group(
        EmbeddedProvider(), TASK, "X", [None, "  "], max_input_tokens=LARGE_BUDGET
    )
    assert (result.status, result.error, result.stages) == (
        STATUS_SKIPPED,
        "no text to summarize",
        0,
    )
    assert result.flags == ["blank_rows:2"] and result.input_rows == 2
    assert result.model is None and result.source is None

    some = summarize_group(
        EmbeddedProvider(), TASK, "X", [exception_text(1), None], max_input_tokens=LARGE_BUDGET
    )
    assert some.status == STATUS_OK and some.flags == ["blank_rows:1"] and some.input_rows == 2


def test_misconfiguration_raises() -> None:
    with pytest.raises(ValueError, match="leaves"):
        summarize_group(EmbeddedProvider(), TASK, "X", exceptions(2), max_input_tokens=200)
    with pytest.raises(ValueError, match="summarize-only"):
        summarize_group(
            EmbeddedProvider(), EXPENSE_LINE_TASK, "X", exceptions(2), max_input_tokens=6000
        )


# --- pandas and Spark --------------------------------------------------------------------------


def group_frame() -> pd.DataFrame:
    rows = []
    for entity, n in (("DE01", 40), ("FR02", 3), ("US03", 1)):
        rows += [(entity, i, exception_text(i, entity)) for i in range(n)]
    frame = pd.DataFrame(rows, columns=["entity", "seq", "text"])
    return frame.sample(frac=1.0, random_state=7)  # order must come from ``seq``


def test_summarize_groups_in_pandas() -> None:
    out = summarize_groups(
        group_frame(),
        config=ProviderConfig(),
        group_col="entity",
        text_col="text",
        order_col="seq",
        max_input_tokens=SMALL_BUDGET,
        max_words=25,
    )
    assert list(out.columns) == ["entity", *GROUP_SUMMARY_COLUMNS]
    rows = {r["entity"]: r for r in out.to_dict("records")}
    assert set(rows) == {"DE01", "FR02", "US03"}
    assert {r["status"] for r in rows.values()} == {STATUS_OK}
    assert rows["DE01"]["stages"] >= 2 and rows["US03"]["stages"] == 1
    assert rows["US03"]["chunks_per_stage"] == [1]
    assert [rows[e]["input_rows"] for e in ("DE01", "FR02", "US03")] == [40, 3, 1]
    # Same answer as a direct call on the ordered texts.
    direct: GroupSummary = summarize_group(
        EmbeddedProvider(),
        TASK,
        "FR02",
        exceptions(3, "FR02"),
        max_input_tokens=SMALL_BUDGET,
        max_words=25,
    )
    assert rows["FR02"]["narrative"] == direct.narrative


def test_apply_in_pandas_on_spark(spark) -> None:
    df = local_frame(spark, group_frame(), "entity string, seq int, text string")
    summarize = group_summarizer(
        config=ProviderConfig(),
        group_col="entity",
        text_col="text",
        order_col="seq",
        max_input_tokens=SMALL_BUDGET,
        max_words=25,
    )
    out = df.groupBy("entity").applyInPandas(summarize, group_summary_schema("entity"))
    rows = {r["entity"]: r for r in out.collect()}
    assert set(rows) == {"DE01", "FR02", "US03"}
    for entity, n in (("DE01", 40), ("FR02", 3), ("US03", 1)):
        row = rows[entity]
        assert row["status"] == STATUS_OK, row["error"]
        assert row["input_rows"] == n
        assert row["source"] == SOURCE_MODEL and row["model"] == EMBEDDED_MODEL_ID
        assert row["prompt_version"] == TASK.prompt_version
        assert row["narrative"]
        assert list(row["chunks_per_stage"])[-1] == 1
    assert rows["DE01"]["stages"] >= 2
    assert rows["FR02"]["stages"] == 1 and list(rows["FR02"]["chunks_per_stage"]) == [1]


# --- the cache key -----------------------------------------------------------------------------


def test_cache_params_change_with_what_changes_the_narrative() -> None:
    base = group_cache_params(TASK, MODEL, max_input_tokens=LARGE_BUDGET)
    assert base == group_cache_params(TASK, MODEL, max_input_tokens=LARGE_BUDGET)
    assert base == group_cache_params(
        TASK, MODEL, max_input_tokens=LARGE_BUDGET, max_words=TASK.summary_max_words
    )
    changed = [
        group_cache_params(replace(TASK, name="other"), MODEL, max_input_tokens=LARGE_BUDGET),
        group_cache_params(
            replace(TASK, prompt_version="close-narrative-v2"), MODEL, max_input_tokens=LARGE_BUDGET
        ),
        group_cache_params(TASK, "gpt-4o", max_input_tokens=LARGE_BUDGET),
        group_cache_params(TASK, MODEL, max_input_tokens=LARGE_BUDGET, max_words=40),
        group_cache_params(TASK, MODEL, max_input_tokens=SMALL_BUDGET),
    ]
    assert len({base, *changed}) == 6


def test_label_col_names_the_group_in_requests(fake_openai: FakeOpenAI) -> None:
    frame = pd.DataFrame(
        {"key": ["k1", "k1"], "entity": ["DE01", "DE01"], "seq": [2, 1], "text": ["b", "a"]}
    )
    out = summarize_groups(
        frame,
        config=openai_config(fake_openai),
        group_col="key",
        text_col="text",
        order_col="seq",
        label_col="entity",
    )
    assert list(out["key"]) == ["k1"] and list(out["status"]) == [STATUS_OK]
    (request,) = fake_openai.chat_requests()
    assert request.record_ids == ["DE01/s1/0"] and request.records[0]["text"] == "a\nb"
