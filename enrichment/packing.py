"""Packing several records into one request within a token budget, and checking the answer.

Records are JSON-encoded (so no text can break out of its slot) and id-tagged; the response must
return every id exactly once, with a label from the taxonomy.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enrichment.extraction import mean_confidence, parse_extractions, result_item_schema
from enrichment.models import RATIONALE_MAX_WORDS, RecordIn, TaskSpec
from enrichment.prompts import system_prompt
from enrichment.responses import requested_items
from enrichment.tokens import count_tokens


def record_line(record: RecordIn) -> str:
    """One record as it appears in the prompt."""
    return json.dumps({"id": record.id, "text": record.text}, ensure_ascii=False)


def user_message(records: list[RecordIn]) -> str:
    """The delimited block of records sent as the user message."""
    return "<records>\n" + "\n".join(record_line(r) for r in records) + "\n</records>"


def pack(
    records: list[RecordIn], model: str, max_tokens: int, max_records: int
) -> list[list[RecordIn]]:
    """Greedy packs: each within ``max_tokens`` of record lines and ``max_records`` records.

    A record larger than the budget travels alone (the request may still fit the model's window).
    """
    packs: list[list[RecordIn]] = []
    current: list[RecordIn] = []
    used = 0
    for record in records:
        cost = count_tokens(record_line(record), model) + 1
        if current and (used + cost > max_tokens or len(current) >= max_records):
            packs.append(current)
            current, used = [], 0
        current.append(record)
        used += cost
    if current:
        packs.append(current)
    return packs


def response_schema(task: TaskSpec) -> dict[str, Any]:
    """The strict JSON schema of an answer: one item per id, label constrained to the enum (or,
    for an extract task, the document schema of its spec)."""
    item: dict[str, Any] = {"id": {"type": "string"}}
    if task.extraction is not None:
        item = result_item_schema(task.extraction)
    if task.taxonomy is not None:
        if task.taxonomy.multi_label:
            item["labels"] = {
                "type": "array",
                "items": {"type": "string", "enum": task.taxonomy.names},
            }
        else:
            item["label"] = {"type": "string", "enum": task.taxonomy.names}
        item["confidence"] = {"type": "number"}
        if task.rationale:
            item["rationale"] = {"type": "string"}
    if task.summary_max_words is not None:
        item["summary"] = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": item,
                    "required": list(item),
                    "additionalProperties": False,
                },
            }
        },
        "required": ["results"],
        "additionalProperties": False,
    }


@dataclass
class ParsedItem:
    """One validated answer for one record id."""

    label: str | None
    confidence: float | None
    summary: str | None
    labels: list[str] | None = None
    rationale: str | None = None
    extraction: str | None = None


@dataclass
class ParsedResponse:
    """Valid answers by id and a reason for every requested id that has none."""

    answers: dict[str, ParsedItem]
    problems: dict[str, str]


def parse_response(
    task: TaskSpec,
    content: str,
    requested_ids: list[str],
    texts: Mapping[str, str] | None = None,
    model: str = "",
) -> ParsedResponse:
    """Check a model's JSON against the request: ids once each, labels in the taxonomy.

    An extract task's answers are validated against its spec and their quotes located in
    ``texts`` (the records' text as sent, by id); ``model`` names the answers' model.
    """
    if task.extraction is not None:
        spec = task.extraction
        sent = {rid: (texts or {}).get(rid, "") for rid in requested_ids}
        records, reasons = parse_extractions(spec, content, sent, model)
        return ParsedResponse(
            {
                rid: ParsedItem(
                    label=None,
                    confidence=mean_confidence(record, spec),
                    summary=None,
                    extraction=record.model_dump_json(),
                )
                for rid, record in records.items()
            },
            reasons,
        )
    items, problems = requested_items(content, requested_ids)
    answers: dict[str, ParsedItem] = {}
    for rid, item in items.items():
        label = item.get("label")
        labels = None
        confidence = item.get("confidence")
        summary = item.get("summary")
        rationale = item.get("rationale")
        if task.taxonomy is not None and task.taxonomy.multi_label:
            given = item.get("labels")
            if not isinstance(given, list) or not given:
                problems[rid] = "labels missing"
                continue
            outside = [x for x in given if x not in task.taxonomy.names]
            if outside:
                problems[rid] = f"label outside the taxonomy: {str(outside[0])[:60]!r}"
                continue
            labels = list(dict.fromkeys(given))
            label = labels[0]
        elif task.taxonomy is not None and label not in task.taxonomy.names:
            problems[rid] = f"label outside the taxonomy: {str(label)[:60]!r}"
            continue
        elif task.taxonomy is not None:
            labels = [label]
        if task.rationale and not (isinstance(rationale, str) and rationale.strip()):
            problems[rid] = "rationale missing"
            continue
        if task.taxonomy is not None and not isinstance(confidence, int | float):
            problems[rid] = "confidence missing"
            continue
        if task.summary_max_words is not None and not isinstance(summary, str):
            problems[rid] = "summary missing"
            continue
        answers[rid] = ParsedItem(
            label=label,
            confidence=None if confidence is None else min(1.0, max(0.0, float(confidence))),
            summary=summary.strip() if isinstance(summary, str) else None,
            labels=labels,
            rationale=_bounded(rationale) if task.rationale else None,
        )
    return ParsedResponse(answers, problems)


def _bounded(text: str) -> str:
    """A rationale cut to ``RATIONALE_MAX_WORDS`` words."""
    words = text.strip().split()
    if len(words) <= RATIONALE_MAX_WORDS:
        return " ".join(words)
    return " ".join(words[:RATIONALE_MAX_WORDS]) + "…"


def estimate_input_tokens(
    task: TaskSpec, records: list[RecordIn], model: str, max_tokens: int, max_records: int
) -> tuple[int, int]:
    """``(input tokens, requests)`` that sending ``records`` would cost, packed as providers pack.

    Counted with tiktoken before anything is sent: the system prompt once per request plus each
    pack's user message. Retries are not included: the attempt budget bounds them.
    """
    packs = pack(records, model, max_tokens, max_records)
    system = count_tokens(system_prompt(task), model)
    return sum(system + count_tokens(user_message(p), model) for p in packs), len(packs)
