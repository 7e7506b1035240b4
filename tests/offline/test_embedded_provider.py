"""The embedded offline default: meaningful answers, honest provenance, bounded summaries."""

from enrichment.models import RecordIn, TaskSpec
from enrichment.prompts import EXPENSE_LINE_TASK
from enrichment.providers.embedded import (
    EMBEDDED_MODEL_ID,
    EmbeddedProvider,
    extractive_summary,
)
from enrichment.tokens import count_tokens


def _label(text: str) -> tuple[str, float]:
    [out] = EmbeddedProvider().run(EXPENSE_LINE_TASK, [RecordIn("r", text)])
    return out.label, out.confidence


def test_labels_follow_the_text_not_a_constant():
    assert (
        _label("Merchant: Marriott\nJustification: Hotel, 3 nights for the audit.")[0] == "lodging"
    )
    assert _label("Merchant: United Airlines\nJustification: Return flight.")[0] == "travel_air"
    assert _label("Merchant: Staples\nJustification: Printer toner.")[0] == "office_supplies"


def test_confidence_is_high_for_a_clear_case_and_low_for_no_evidence():
    clear = _label("Hotel accommodation room nights lodging")[1]
    nothing = _label("Merchant: ZZZ\nJustification: qwerty")
    assert clear > 0.8
    assert nothing[0] == "other"
    assert nothing[1] < 0.3


def test_outcome_says_it_is_the_embedded_model_not_an_llm():
    [out] = EmbeddedProvider().run(EXPENSE_LINE_TASK, [RecordIn("r", "Taxi to airport")])
    assert (out.status, out.source, out.model) == ("ok", "model", EMBEDDED_MODEL_ID)
    assert out.tokens_in == out.tokens_out == 0 and out.cost_usd == 0.0


def test_summary_is_extractive_and_bounded():
    text = "Merchant: Delta\nJustification: " + " ".join(["word"] * 60) + ". Second sentence."
    summary = extractive_summary(text, 25)
    assert len(summary.split()) == 25
    assert summary.endswith("…")
    assert extractive_summary("Justification: Dinner with the client team.", 25) == (
        "Dinner with the client team."
    )


def test_summarize_only_task_returns_no_label():
    task = TaskSpec("s", "v1", "Summarize.", taxonomy=None, summary_max_words=5)
    [out] = EmbeddedProvider().run(task, [RecordIn("r", "One two three four five six seven.")])
    assert out.label is None and out.summary == "One two three four five…"


def test_tiktoken_counts_offline_with_the_bundled_vocabulary():
    assert count_tokens("hello world", "gpt-4o-mini") == 2
    assert count_tokens("hello world", "gpt-4") == 2
