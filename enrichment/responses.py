"""The envelope of a packed answer: ``{"results": [{"id": …, …}, …]}``, one item per record sent.

Every task reads it the same way (classify, summarize, extract): the items of the requested ids,
each at most once, and a reason for every requested id that has no usable item. What an item must
hold is the task's own check (``enrichment/packing.py``, ``enrichment/extraction.py``).
"""

import json
from collections.abc import Iterable
from typing import Any

MALFORMED = "malformed JSON"
DUPLICATE_ID = "id returned more than once"
MISSING_ID = "id missing from the response"


def requested_items(
    content: str, requested_ids: Iterable[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``(items by id, reasons by id)`` for the ids of one request.

    An id returned once gets its item; an id returned more than once, or not at all, gets a
    reason instead, and so does every id when the content is not the envelope. Items without a
    string id, and ids nobody asked for, are ignored (they are not an answer to this request).
    """
    wanted = list(dict.fromkeys(requested_ids))
    try:
        payload = json.loads(content)
        results = payload["results"]
        if not isinstance(results, list):
            raise TypeError("results is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        return {}, dict.fromkeys(wanted, f"{MALFORMED}: {type(exc).__name__}")
    seen: dict[str, int] = {}
    items: dict[str, dict[str, Any]] = {}
    for item in results:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        seen[item["id"]] = seen.get(item["id"], 0) + 1
        items.setdefault(item["id"], item)
    found: dict[str, dict[str, Any]] = {}
    reasons: dict[str, str] = {}
    for rid in wanted:
        count = seen.get(rid, 0)
        if count == 1:
            found[rid] = items[rid]
        else:
            reasons[rid] = DUPLICATE_ID if count > 1 else MISSING_ID
    return found, reasons
