"""The content-addressed key of an enrichment answer, one definition for Spark and for Python.

``input_hash = sha256(cache parameters + U+001F + the text sent)``: the task, its prompt version,
the model and whatever else changes an answer (labels, word bounds, an extract task's field spec).
Change any of them and every affected input gets a new key; nothing else changes. Spark computes
the same hash with ``F.sha2`` (``transforms/enrich.with_enrichment_input``) for ``ops.llm_cache``;
documents use :func:`input_hash` (``documents/engine.py``).
"""

import hashlib
import json

from enrichment.models import TaskSpec
from enrichment.providers.base import ProviderConfig

KEY_SEPARATOR = "\u001f"


def cache_params(task: TaskSpec, config: ProviderConfig) -> str:
    """The parameters that change an answer, as a stable string for the cache key."""
    params: dict = {
        "task": task.name,
        "prompt_version": task.prompt_version,
        "model": config.model_id,
        "labels": task.taxonomy.names if task.taxonomy else None,
        "summary_max_words": task.summary_max_words,
    }
    # Only when set, so the keys of tasks without them (and their cached answers) do not change.
    if task.taxonomy is not None and task.taxonomy.multi_label:
        params["multi_label"] = True
    if task.rationale:
        params["rationale"] = True
    if task.extraction is not None:
        spec = task.extraction
        params["extraction"] = {
            "spec": spec.name,
            "version": spec.prompt_version,
            "fields": [[f.name, f.kind] for f in spec.fields],
            spec.items_field: [[f.name, f.kind] for f in spec.line_item_fields],
        }
    return json.dumps(params, sort_keys=True)


def input_hash(params: str, text: str) -> str:
    """The cache key of ``text`` sent with ``params`` (what Spark's ``sha2(concat(...))`` gives)."""
    return hashlib.sha256((params + KEY_SEPARATOR + text).encode("utf-8")).hexdigest()
