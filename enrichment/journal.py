"""A durable journal of LLM answers, written as each request is answered.

An enrichment step appends its calls to ``ops.llm_calls`` and merges them into ``ops.llm_cache``
in the Spark job that makes them: a process killed halfway would lose every answer it had paid
for, and the re-run would pay again. So the chat provider also writes each request's successful
answers to a local folder (``ProviderConfig.journal_dir``) as soon as they arrive: one small
JSON-lines file per request, written under a temporary name and renamed, so a file is whole or
absent. The next enrichment of the task merges the folder into the cache before looking up its
misses, and logs what those answers cost in ``ops.llm_calls`` under the run that paid for them
(``infra/enrichment_engine.py``); a step that ends deletes its own files (its answers are in the
cache and its calls in the log by then).
"""

import json
import os
import uuid
from dataclasses import asdict
from pathlib import Path

from enrichment.models import STATUS_OK, RecordOut, TaskSpec

SUFFIX = ".jsonl"


def journal_answers(
    folder: str, run_id: str | None, task: TaskSpec, outcomes: list[RecordOut]
) -> None:
    """Write ``outcomes``' successful answers as one file of ``folder`` (nothing when none)."""
    answered = [o for o in outcomes if o.status == STATUS_OK]
    if not answered:
        return
    lines = []
    for out in answered:
        row = asdict(out)
        lines.append(
            json.dumps(
                {
                    "input_hash": row["id"],
                    "enrichment_status": row["status"],
                    "label": row["label"],
                    "confidence": row["confidence"],
                    "summary": row["summary"],
                    "source": row["source"],
                    "model": row["model"],
                    "prompt_version": task.prompt_version,
                    "tokens_in": row["tokens_in"],
                    "tokens_out": row["tokens_out"],
                    "cost_usd": row["cost_usd"],
                    "attempts": row["attempts"],
                    "error": row["error"],
                    "latency_ms": row["latency_ms"],
                    "labels": row["labels"],
                    "rationale": row["rationale"],
                }
            )
        )
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    name = f"{run_id or 'run'}-{uuid.uuid4().hex}"
    temporary = target / f".{name}.tmp"
    with open(temporary, "w") as out:
        out.write("\n".join(lines) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target / f"{name}{SUFFIX}")


def journal_files(folder: str, run_id: str | None = None) -> list[Path]:
    """The whole files of a journal folder (of one run when ``run_id`` is given)."""
    path = Path(folder)
    if not path.is_dir():
        return []
    prefix = f"{run_id}-" if run_id else ""
    return sorted(p for p in path.glob(f"{prefix}*{SUFFIX}") if not p.name.startswith("."))


def journal_run(path: Path) -> str:
    """The run a journal file's answers were paid by (its name is ``<run_id>-<uuid hex>``)."""
    return path.name.removesuffix(SUFFIX).rpartition("-")[0] or "run"


def read_answers(files: list[Path]) -> list[dict]:
    """The answers the files hold, one dict per line (outcome columns)."""
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
