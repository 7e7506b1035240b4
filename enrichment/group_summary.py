"""Summarize a group: many rows into one narrative, past the context window, in stages.

A night's reconciliation exceptions for one legal entity can run to thousands of lines; the
controller wants one paragraph. :func:`summarize_group` does it map-reduce style:

* **stage 1** splits the texts, in order, into chunks whose request (system prompt plus the user
  message carrying the chunk) fits ``max_input_tokens`` counted with tiktoken; each chunk is ONE
  :class:`~enrichment.models.RecordIn` (the texts joined by newlines, id
  ``f"{group_id}/s1/{n}"``) summarized by the provider with a summarize-only task;
* **stage k+1** summarizes the stage-k summaries the same way, until one chunk holds everything
  left: its summary is the narrative. A group that fits one request takes one stage, one call.

Guarantees:

* Nothing is dropped silently. A text that alone does not fit a request is cut to fit (tiktoken
  truncation) and the cut is recorded in ``GroupSummary.flags`` / ``truncated_rows``; blank rows
  are counted and flagged too.
* Bounded: a stage that would need as many chunks as it has inputs (summaries that do not
  shrink), or more than ``max_stages`` stages, fails the group with an explicit error.
* **Failure policy: fail the group, never a partial narrative.** Each chunk is one
  ``provider.run`` call, so the provider applies its own retry budget to it
  (``max_attempts_per_record``, ``Retry-After``, the run's token budget). A chunk still not
  ``ok`` after that (or answered with an empty summary) ends the group ``failed`` with the error
  of that stage and chunk; later chunks and stages are not sent (no money spent on a narrative
  that could not be complete) and ``narrative`` is ``None``. A provider that raises, despite
  its contract, fails the group the same way instead of propagating the exception. Tokens and
  cost of every call made, the failed one included, are still reported.
* Provenance is the provider's own: ``source`` and ``model`` come from each ``RecordOut`` (the
  embedded provider says ``model`` and its extractive method, an LLM says ``llm`` and its model
  name), never from the caller.

:func:`summarize_groups` applies it per group to a pandas frame, so it runs on Spark executors
inside ``groupBy(...).applyInPandas(...)`` with a picklable
:class:`~enrichment.providers.base.ProviderConfig`. :func:`group_cache_params` names what, besides
the texts, changes a group's narrative: the key of its cached answer (``ops.group_summary_cache``,
``infra/enrichment.py``).

Texts are sent as given: when a task has ``redact=True`` the caller must pass already redacted
text (``transforms.enrich.with_redacted_text``), as for ``RecordIn`` everywhere else.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from enrichment.models import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    RecordIn,
    RecordOut,
    TaskSpec,
)
from enrichment.packing import user_message
from enrichment.prompts import CLOSE_NARRATIVE_TASK, system_prompt
from enrichment.providers.base import Provider, ProviderConfig
from enrichment.providers.factory import build_provider
from enrichment.tokens import count_tokens, encoding_for

DEFAULT_MAX_STAGES = 5
# Fewer tokens than this left for text in a request (after the system prompt and the record's
# JSON wrapper) is a configuration error, not something to truncate into.
MIN_TEXT_TOKENS = 16


@dataclass(frozen=True)
class TextCut:
    """One text cut to fit a request: where it was and how many tokens it kept."""

    stage: int
    index: int  # position of the text among the stage's inputs (stage 1: the group's rows)
    tokens_before: int
    tokens_kept: int

    @property
    def flag(self) -> str:
        """How the cut is recorded in ``GroupSummary.flags``."""
        return f"truncated:s{self.stage}:item{self.index}:{self.tokens_before}->{self.tokens_kept}"


@dataclass
class GroupSummary:
    """The narrative of one group, or why there is none, with the provenance of every call."""

    group_id: str
    status: str
    prompt_version: str
    narrative: str | None = None
    error: str | None = None
    # Stages run (a failed stage counts) and how many chunks (= provider calls) each had.
    stages: int = 0
    chunks_per_stage: list[int] = field(default_factory=list)
    input_rows: int = 0
    # Stage-1 rows cut to fit a request; every cut (all stages) is also in ``flags``.
    truncated_rows: int = 0
    flags: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    latency_ms: float = 0.0
    # From the providers' outcomes, distinct values comma-joined in first-seen order (one value
    # in practice); ``None`` when no call was made.
    model: str | None = None
    source: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The summary as one row of :data:`GROUP_SUMMARY_COLUMNS` (without the group key)."""
        return {
            "status": self.status,
            "narrative": self.narrative,
            "error": self.error,
            "stages": self.stages,
            "chunks_per_stage": list(self.chunks_per_stage),
            "input_rows": self.input_rows,
            "truncated_rows": self.truncated_rows,
            "flags": list(self.flags),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": float(self.cost_usd),
            "attempts": self.attempts,
            "latency_ms": float(self.latency_ms),
            "model": self.model,
            "source": self.source,
            "prompt_version": self.prompt_version,
        }


class _GroupFailedError(Exception):
    """A chunk or stage that ends the group ``failed``; the message is the group's error."""


class _Chunker:
    """Greedy, order-preserving chunks of texts, each request within the token budget."""

    def __init__(self, task: TaskSpec, max_input_tokens: int, tokenizer_model: str) -> None:
        self.budget = max_input_tokens
        self.model = tokenizer_model
        self.encoding = encoding_for(tokenizer_model)
        self.system_tokens = count_tokens(system_prompt(task), tokenizer_model)

    def request_tokens(self, record: RecordIn) -> int:
        """Prompt tokens of the request carrying ``record`` alone: system + user message."""
        return self.system_tokens + count_tokens(user_message([record]), self.model)

    def line_tokens(self, text: str) -> int:
        """Estimated cost of one more line in a chunk: its JSON-escaped text and separator."""
        return count_tokens(json.dumps(text, ensure_ascii=False)[1:-1], self.model) + 1

    def room(self, record_id: str) -> int:
        """Tokens left for text in a request whose record has ``record_id``."""
        return self.budget - self.request_tokens(RecordIn(record_id, ""))

    def cut(self, record_id: str, text: str) -> tuple[str, int, int]:
        """``text`` cut (at a token boundary) so a request carrying it alone fits the budget.

        Returns the kept text, the tokens before and the tokens kept (tokenizer's count).
        """
        tokens = self.encoding.encode(text, disallowed_special=())
        keep = min(len(tokens), max(1, self.room(record_id)))
        while True:
            kept = self.encoding.decode(tokens[:keep]).rstrip("\ufffd")  # no half character
            excess = self.request_tokens(RecordIn(record_id, kept)) - self.budget
            if excess <= 0 or keep <= 1:
                return kept, len(tokens), keep
            keep = max(1, keep - excess)  # JSON escaping costs more than the raw tokens

    def chunks(
        self, texts: list[str], group_id: str, stage: int
    ) -> tuple[list[RecordIn], list[TextCut]]:
        """Consecutive texts joined into records ``{group_id}/s{stage}/{n}`` that each fit."""
        pending: deque[tuple[int, str, int]] = deque(
            (i, t, self.line_tokens(t)) for i, t in enumerate(texts)
        )
        records: list[RecordIn] = []
        cuts: list[TextCut] = []
        while pending:
            record_id = f"{group_id}/s{stage}/{len(records)}"
            taken: list[tuple[int, str, int]] = []
            estimate = self.budget - self.room(record_id)
            while pending and (not taken or estimate + pending[0][2] <= self.budget):
                item = pending.popleft()
                taken.append(item)
                estimate += item[2]
            # The estimate adds per-line counts; check the real request and give back lines.
            while (
                len(taken) > 1
                and self.request_tokens(RecordIn(record_id, "\n".join(t for _, t, _ in taken)))
                > self.budget
            ):
                pending.appendleft(taken.pop())
            text = "\n".join(t for _, t, _ in taken)
            if len(taken) == 1 and self.request_tokens(RecordIn(record_id, text)) > self.budget:
                index = taken[0][0]
                text, before, kept = self.cut(record_id, text)
                cuts.append(TextCut(stage, index, before, kept))
            records.append(RecordIn(record_id, text))
        return records, cuts


class _Tally:
    """Provenance summed over every provider outcome of a group."""

    def __init__(self, result: GroupSummary) -> None:
        self.result = result
        self.models: list[str] = []
        self.sources: list[str] = []

    def add(self, out: RecordOut) -> None:
        r = self.result
        r.tokens_in += out.tokens_in
        r.tokens_out += out.tokens_out
        r.cost_usd += out.cost_usd
        r.attempts += out.attempts
        r.latency_ms += out.latency_ms
        if out.model and out.model not in self.models:
            self.models.append(out.model)
        if out.source and out.source not in self.sources:
            self.sources.append(out.source)
        r.model = ",".join(self.models) or None
        r.source = ",".join(self.sources) or None


def _summarize_chunk(provider: Provider, task: TaskSpec, record: RecordIn, tally: _Tally) -> str:
    """One chunk, one ``provider.run``: its summary, or :class:`_GroupFailedError`."""
    started = time.perf_counter()
    try:
        outcomes = provider.run(task, [record])
    except Exception as exc:  # the protocol says never; a group must still end with a status
        raise _GroupFailedError(
            f"{record.id}: provider raised {type(exc).__name__}: {exc}"
        ) from exc
    out = next((o for o in outcomes if o.id == record.id), None)
    if out is None:
        tally.result.latency_ms += (time.perf_counter() - started) * 1000
        raise _GroupFailedError(f"{record.id}: the provider returned no outcome for the chunk")
    tally.add(out)
    if out.status != STATUS_OK:
        raise _GroupFailedError(f"{record.id}: {out.status}: {out.error or 'no error given'}")
    if not out.summary or not out.summary.strip():
        raise _GroupFailedError(f"{record.id}: the provider returned an empty summary")
    return out.summary.strip()


def summarize_group(
    provider: Provider,
    task: TaskSpec,
    group_id: str,
    texts: list[str | None],
    *,
    max_input_tokens: int,
    max_words: int | None = None,
    tokenizer_model: str | None = None,
    max_stages: int = DEFAULT_MAX_STAGES,
) -> GroupSummary:
    """Summarize ``texts`` (one group's rows, in order) into one narrative, in stages.

    Args:
        provider: Answers the summarize-only ``task``; one ``run`` call per chunk.
        task: A summarize-only task (e.g. :data:`CLOSE_NARRATIVE_TASK`); no taxonomy.
        group_id: Names the group; chunk record ids are ``f"{group_id}/s{stage}/{n}"``.
        texts: The rows' texts. ``None`` or blank rows are counted, flagged and not sent.
        max_input_tokens: Budget of the prompt of one request: system prompt plus the user
            message carrying one chunk, counted with tiktoken for ``tokenizer_model``. (An API
            adds a few tokens of message framing on top; leave that headroom to the window.)
        max_words: Word bound of every summary (each stage's and the narrative); default the
            task's ``summary_max_words``.
        tokenizer_model: Whose tokenizer counts the budget; default ``provider.model_id``
            (models tiktoken does not know, like the embedded one, count with o200k_base).
        max_stages: Stages allowed before the group fails as not converging.

    Returns:
        A :class:`GroupSummary`; a provider fault or a non-converging group is a ``failed``
        status with its error (see the module's failure policy), never an exception. An empty
        group is ``skipped``.

    Raises:
        ValueError: For a misconfiguration: a task that classifies or has no word bound, or a
            budget that leaves no room for text after the system prompt.
    """
    if task.classifies:
        raise ValueError(
            f"task {task.name!r} classifies; group summaries need a summarize-only task"
        )
    words = max_words if max_words is not None else task.summary_max_words
    if words is None or words < 1:
        raise ValueError(f"max_words must be a positive word bound (task {task.name!r})")
    if max_stages < 1:
        raise ValueError("max_stages must be at least 1")
    task = replace(task, summary_max_words=words)
    chunker = _Chunker(task, max_input_tokens, tokenizer_model or provider.model_id)
    room = chunker.room(f"{group_id}/s1/0")
    if room < MIN_TEXT_TOKENS:
        raise ValueError(
            f"max_input_tokens={max_input_tokens} leaves {room} tokens for text: the system "
            f"prompt and record wrapper alone take {max_input_tokens - room}; "
            f"at least {MIN_TEXT_TOKENS} must remain"
        )

    result = GroupSummary(
        group_id=group_id,
        status=STATUS_OK,
        prompt_version=task.prompt_version,
        input_rows=len(texts),
    )
    items = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(items) < len(texts):
        result.flags.append(f"blank_rows:{len(texts) - len(items)}")
    if not items:
        result.status, result.error = STATUS_SKIPPED, "no text to summarize"
        return result

    tally = _Tally(result)
    try:
        stage = 1
        while True:
            records, cuts = chunker.chunks(items, group_id, stage)
            if stage > 1 and len(records) >= len(items):
                raise _GroupFailedError(
                    f"stage {stage}: summaries do not shrink: {len(items)} stage-{stage - 1} "
                    f"summaries still need {len(records)} requests of {max_input_tokens} tokens "
                    f"(raise max_input_tokens or lower max_words)"
                )
            if stage > max_stages:
                raise _GroupFailedError(
                    f"no single summary after max_stages={max_stages} stages "
                    f"({len(items)} summaries left)"
                )
            result.stages = stage
            result.chunks_per_stage.append(len(records))
            result.flags.extend(cut.flag for cut in cuts)
            if stage == 1:
                result.truncated_rows = len(cuts)
            summaries = []
            for record in records:
                try:
                    summaries.append(_summarize_chunk(provider, task, record, tally))
                except _GroupFailedError as exc:
                    raise _GroupFailedError(f"stage {stage} chunk {exc}") from exc
            if len(summaries) == 1:
                result.narrative = summaries[0]
                return result
            items = summaries
            stage += 1
    except _GroupFailedError as exc:
        result.status, result.error, result.narrative = STATUS_FAILED, str(exc)[:1000], None
        return result


def group_cache_params(
    task: TaskSpec, model_id: str, *, max_input_tokens: int, max_words: int | None = None
) -> str:
    """What changes a group's narrative besides its texts, as a stable string for the cache key.

    The key is ``sha256(params, the group's texts in order)``: a new prompt version, model, word
    bound or request budget (which changes the chunks, hence the stages) gives a new key.
    """
    words = max_words if max_words is not None else task.summary_max_words
    return json.dumps(
        {
            "task": task.name,
            "prompt_version": task.prompt_version,
            "model": model_id,
            "summary_max_words": words,
            "max_input_tokens": max_input_tokens,
        },
        sort_keys=True,
    )


# Columns of :func:`summarize_groups` after the group column, as Spark DDL.
GROUP_SUMMARY_FIELDS = (
    "status string, narrative string, error string, stages int, chunks_per_stage array<int>, "
    "input_rows int, truncated_rows int, flags array<string>, tokens_in int, tokens_out int, "
    "cost_usd double, attempts int, latency_ms double, model string, source string, "
    "prompt_version string"
)
GROUP_SUMMARY_COLUMNS = [c.strip().split(" ")[0] for c in GROUP_SUMMARY_FIELDS.split(", ")]


def group_summary_schema(group_col: str, group_type: str = "string") -> str:
    """The ``applyInPandas`` schema of :func:`summarize_groups`: the group column, then the rest."""
    return f"{group_col} {group_type}, {GROUP_SUMMARY_FIELDS}"


def summarize_groups(
    pdf: pd.DataFrame,
    *,
    config: ProviderConfig,
    task: TaskSpec = CLOSE_NARRATIVE_TASK,
    group_col: str,
    text_col: str,
    order_col: str | None = None,
    label_col: str | None = None,
    max_input_tokens: int | None = None,
    max_words: int | None = None,
    tokenizer_model: str | None = None,
    max_stages: int = DEFAULT_MAX_STAGES,
) -> pd.DataFrame:
    """One :class:`GroupSummary` row per distinct ``group_col`` value of ``pdf``.

    Pure pandas, for ``groupBy(group_col).applyInPandas(partial(summarize_groups, ...),
    group_summary_schema(group_col, <its type>))``: Spark hands each call one group. The
    provider is built here, from the picklable ``config``, with a fresh token budget per call.
    Rows are summarized in ``order_col`` order when given (Spark does not keep row order within
    a group), else in frame order. The group is named in chunk record ids by its first
    ``label_col`` value (default: the group key itself). ``max_input_tokens`` defaults to the
    config's ``max_input_tokens_per_request``; the other arguments are those of
    :func:`summarize_group`.
    """
    columns = [group_col, *GROUP_SUMMARY_COLUMNS]
    if pdf.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    provider = build_provider(config)
    budget = (
        max_input_tokens if max_input_tokens is not None else config.max_input_tokens_per_request
    )
    if order_col is not None:
        pdf = pdf.sort_values(order_col, kind="stable")
    rows = []
    for key, group in pdf.groupby(group_col, sort=False, dropna=False):
        texts = [t if isinstance(t, str) else None for t in group[text_col].tolist()]
        label = key if label_col is None else group[label_col].iloc[0]
        summary = summarize_group(
            provider,
            task,
            str(label),
            texts,
            max_input_tokens=budget,
            max_words=max_words,
            tokenizer_model=tokenizer_model,
            max_stages=max_stages,
        )
        rows.append({group_col: key, **summary.as_row()})
    return pd.DataFrame(rows, columns=columns)


def group_summarizer(
    *,
    config: ProviderConfig,
    group_col: str,
    text_col: str,
    task: TaskSpec = CLOSE_NARRATIVE_TASK,
    order_col: str | None = None,
    label_col: str | None = None,
    max_input_tokens: int | None = None,
    max_words: int | None = None,
    tokenizer_model: str | None = None,
    max_stages: int = DEFAULT_MAX_STAGES,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """:func:`summarize_groups` bound to its arguments, ready for ``applyInPandas``.

    A plain function (not a ``functools.partial``, whose missing type hints make Spark warn)::

        df.groupBy("legal_entity").applyInPandas(
            group_summarizer(config=config, group_col="legal_entity", text_col="description",
                             order_col="exception_id"),
            group_summary_schema("legal_entity"),
        )
    """

    def summarize(pdf: pd.DataFrame) -> pd.DataFrame:
        return summarize_groups(
            pdf,
            config=config,
            task=task,
            group_col=group_col,
            text_col=text_col,
            order_col=order_col,
            label_col=label_col,
            max_input_tokens=max_input_tokens,
            max_words=max_words,
            tokenizer_model=tokenizer_model,
            max_stages=max_stages,
        )

    return summarize
