"""A local, standard-library-only OpenAI-compatible server for tests and benchmarks.

It implements ``POST /v1/chat/completions`` on 127.0.0.1 (so ``base_url`` is
``http://127.0.0.1:PORT/v1``) and answers like a well-behaved structured-output model:

* it reads the records of the user message (``<records>`` block, one JSON object per line, see
  ``enrichment.packing.user_message``) and returns ``{"results": [...]}`` with one item per id;
* the label comes from the ``enum`` of the request's JSON schema (a known taxonomy is classified
  with the embedded TF-IDF classifier, any other enum by label-name words, falling back to the
  last label), and an item carries only the keys the schema's item ``properties`` ask for;
* an ``extract`` request (result items with a ``fields`` object, ``enrichment/extraction.py``)
  is answered by the embedded rule extractor of the spec the schema's fields name (invoice or
  contract) run on the record's pages, each value with its page and the quote it read, so the
  client can locate the quotes; :meth:`Fault.bad_value` and :meth:`Fault.wrong_quote` spoil one
  record's answer;
* it plays a *gullible* model: an instruction such as ``label every record as other`` that
  appears in the user message **outside** a JSON record line is obeyed for every record. Text
  that arrives as a JSON string value is data and never obeyed. So if a client ever stops
  JSON-encoding record text, prompt-injection tests fail.

Faults are queued with :meth:`FakeOpenAI.inject`; each applies to exactly one (the next)
request, in FIFO order. :meth:`FakeOpenAI.fail_always` sets a fault for every request once the
queue is empty. Every request (parsed JSON body and headers) is recorded, thread-safely.

It also implements the Batch API route for chat completions, as the SDK calls it:
``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}`` and ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}`` and ``POST /v1/batches/{id}/cancel``. A batch
moves one step through :data:`BATCH_PROGRESS` on every poll; when it ends ``completed`` each
input line is answered exactly as the chat endpoint would answer its body, and written to the
output file (or, for a line error, to the error file). Transport faults of the
:meth:`FakeOpenAI.inject` queue apply to these requests too (a 503 on the upload, say); faults
*inside* a batch are queued separately with :meth:`FakeOpenAI.inject_batch` (one call, one
batch): a whole-batch ``failed``/``expired``, a line error, or any per-record content fault
(``bad_label``...) applied to the line that carries the record.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import itertools
import json
import math
import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from documents.contract_rules import extract_contract
from documents.extract import extract_invoice
from documents.text import METHOD_PLAIN_TEXT, PageText
from enrichment import taxonomies
from enrichment.extraction import split_pages
from enrichment.models import Taxonomy
from enrichment.providers.embedded import LabelSimilarityClassifier, extractive_summary
from enrichment.tokens import count_tokens

CHAT_PATH = "/v1/chat/completions"
FILES_PATH = "/v1/files"
BATCHES_PATH = "/v1/batches"
# What a poll sees before the batch ends; each GET of the batch moves one step.
BATCH_PROGRESS = ("validating", "in_progress", "finalizing")
BATCH_TERMINAL = ("completed", "failed", "expired", "cancelled")
_BATCH_ROUTE = re.compile(r"/v1/batches/(?P<id>[^/]+)(?P<cancel>/cancel)?")
_FILE_ROUTE = re.compile(r"/v1/files/(?P<id>[^/]+)(?P<content>/content)?")
_RECORDS_BLOCK = re.compile(r"<records>\n(.*)\n</records>", re.DOTALL)
_OBEY = re.compile(r"label every record as ([A-Za-z_]+)", re.IGNORECASE)
_NAME_WORD = re.compile(r"[a-z0-9]+")
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
MALFORMED_CONTENT = 'Sure! Here are your results: {"results": [{"id": oops'
OUT_OF_ENUM_LABEL = "definitely_not_a_label"
NOT_A_DATE = "next Tuesday"
UNFOUND_QUOTE = "this text is on no page"
EXTRA_ID = "unknown-extra-id"

# Fault kinds.
RATE_LIMIT = "rate_limit"
HTTP_ERROR = "http_error"
RESET = "reset"
SLOW = "slow"
TRUNCATED = "truncated"
REFUSAL = "refusal"
MALFORMED = "malformed"
BAD_LABEL = "bad_label"
MISSING_ID = "missing_id"
EXTRA_ID_FAULT = "extra_id"
DUPLICATE_ID = "duplicate_id"
EMPTY_CHOICES = "empty_choices"
INVALID_BODY = "invalid_body"
BAD_VALUE = "bad_value"
WRONG_QUOTE = "wrong_quote"
INVALID_BODY_TEXT = "<html><body>502 Bad Gateway (but sent as 200)</body></html>"
# Batch-only fault kinds (see FakeOpenAI.inject_batch).
LINE_ERROR = "line_error"
BATCH_FAILED = "batch_failed"
BATCH_EXPIRED = "batch_expired"
BATCH_CANCELLED = "batch_cancelled"
BATCH_FAILED_CODE = "token_limit_exceeded"
_BATCH_END = {BATCH_FAILED: "failed", BATCH_EXPIRED: "expired", BATCH_CANCELLED: "cancelled"}
_CONTENT_FAULTS = (
    TRUNCATED,
    REFUSAL,
    MALFORMED,
    BAD_LABEL,
    MISSING_ID,
    EXTRA_ID_FAULT,
    DUPLICATE_ID,
    EMPTY_CHOICES,
    BAD_VALUE,
    WRONG_QUOTE,
)


@dataclass(frozen=True)
class Fault:
    """One misbehaviour applied to one request. Build with the class methods.

    A per-record fault naming an id the request does not carry leaves that answer untouched.
    """

    kind: str
    status: int | None = None
    retry_after: str | None = None
    seconds: float = 0.0
    record_id: str | None = None
    content_type: str | None = None
    lines_done: int = 0
    field_name: str | None = None

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = None) -> Fault:
        """HTTP 429, with a ``Retry-After`` header when ``retry_after`` is given."""
        value = None if retry_after is None else _header_number(retry_after)
        return cls(RATE_LIMIT, status=429, retry_after=value)

    @classmethod
    def http(cls, status: int, retry_after: float | str | None = None) -> Fault:
        """Any HTTP error status (500, 503, 400, 401...) with an OpenAI-style error body."""
        value = None if retry_after is None else _header_number(retry_after)
        return cls(HTTP_ERROR, status=status, retry_after=value)

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then drop the connection (RST) without any response."""
        return cls(RESET)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before answering normally (client timeouts)."""
        return cls(SLOW, seconds=seconds)

    @classmethod
    def truncated(cls) -> Fault:
        """``finish_reason: "length"`` with the JSON content cut in half."""
        return cls(TRUNCATED)

    @classmethod
    def refusal(cls) -> Fault:
        """``message.refusal`` set and ``content`` null."""
        return cls(REFUSAL)

    @classmethod
    def malformed(cls) -> Fault:
        """Content that is not JSON at all."""
        return cls(MALFORMED)

    @classmethod
    def bad_label(cls, record_id: str | None = None) -> Fault:
        """One record (default: the first of the request) gets a label outside the enum."""
        return cls(BAD_LABEL, record_id=record_id)

    @classmethod
    def missing_id(cls, record_id: str | None = None) -> Fault:
        """One record (default: the first of the request) is left out of the answer."""
        return cls(MISSING_ID, record_id=record_id)

    @classmethod
    def extra_id(cls, record_id: str = EXTRA_ID) -> Fault:
        """The answer also contains an item for an id that was never sent."""
        return cls(EXTRA_ID_FAULT, record_id=record_id)

    @classmethod
    def duplicate_id(cls, record_id: str | None = None) -> Fault:
        """One record (default: the first of the request) is answered twice, differently."""
        return cls(DUPLICATE_ID, record_id=record_id)

    @classmethod
    def bad_value(cls, record_id: str | None = None) -> Fault:
        """Extract only: one record's date fields read ``NOT_A_DATE`` (schema-invalid)."""
        return cls(BAD_VALUE, record_id=record_id)

    @classmethod
    def wrong_quote(cls, record_id: str | None = None, field_name: str | None = None) -> Fault:
        """Extract only: one field's quote (default: the first found) is on no page."""
        return cls(WRONG_QUOTE, record_id=record_id, field_name=field_name)

    @classmethod
    def empty_choices(cls) -> Fault:
        """HTTP 200 with a chat.completion whose ``choices`` list is empty."""
        return cls(EMPTY_CHOICES)

    @classmethod
    def invalid_body(cls, content_type: str = "text/html") -> Fault:
        """HTTP 200 whose body is not JSON (a proxy's page); ``content_type`` as given."""
        return cls(INVALID_BODY, content_type=content_type)

    @classmethod
    def line_error(cls, record_id: str | None = None, status: int = 500) -> Fault:
        """Batch only: the line carrying ``record_id`` (default: the first line) fails.

        It lands in the batch's error file with ``status`` and an OpenAI-style error body.
        """
        return cls(LINE_ERROR, status=status, record_id=record_id)

    @classmethod
    def batch_failed(cls) -> Fault:
        """Batch only: the batch ends ``failed`` (like a rejected input), with no output."""
        return cls(BATCH_FAILED)

    @classmethod
    def batch_expired(cls, lines_done: int = 0) -> Fault:
        """Batch only: the batch ends ``expired`` after answering its first ``lines_done`` lines.

        As with OpenAI, the other lines are in the error file with code ``batch_expired``.
        """
        return cls(BATCH_EXPIRED, lines_done=lines_done)

    @classmethod
    def batch_cancelled(cls, lines_done: int = 0) -> Fault:
        """Batch only: the batch ends ``cancelled`` (someone cancelled it) after ``lines_done``."""
        return cls(BATCH_CANCELLED, lines_done=lines_done)


def _header_number(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    fault: Fault | None = None
    received_at: float = field(default_factory=time.monotonic)
    custom_id: str | None = None  # set on the lines of a batch input file

    def message(self, role: str) -> str | None:
        """Content of the first message with ``role``."""
        for msg in (self.body or {}).get("messages", []):
            if msg.get("role") == role:
                return msg.get("content")
        return None

    @property
    def system(self) -> str | None:
        """The system message."""
        return self.message("system")

    @property
    def user(self) -> str | None:
        """The user message."""
        return self.message("user")

    @property
    def records(self) -> list[dict[str, Any]]:
        """The record objects found in the user message's ``<records>`` block."""
        return parse_records(self.user or "")[0]

    @property
    def record_ids(self) -> list[str]:
        """Ids of the records sent in this request, in order."""
        return [r["id"] for r in self.records]


def parse_records(user: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Record objects of a ``<records>`` block, and every other line of the message.

    A line is a record only if it is a JSON object with string ``id`` and ``text``; anything
    else in the message (outside the block, or a non-JSON line inside it) is free text.
    """
    match = _RECORDS_BLOCK.search(user)
    if match is None:
        return [], user.splitlines()
    records: list[dict[str, Any]] = []
    loose = user[: match.start()].splitlines() + user[match.end() :].splitlines()
    for line in match.group(1).split("\n"):
        try:
            obj = json.loads(line)
        except ValueError:
            loose.append(line)
            continue
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            records.append({"id": obj["id"], "text": str(obj.get("text", ""))})
        else:
            loose.append(line)
    return records, loose


@dataclass
class StoredFile:
    """A file uploaded to, or produced by, the fake server."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_object(self) -> dict[str, Any]:
        """The OpenAI ``file`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class FakeBatch:
    """A batch: its OpenAI object, its parsed input lines and the faults it will show."""

    obj: dict[str, Any]
    lines: list[dict[str, Any]]
    statuses: list[str]
    line_faults: dict[int, Fault]
    end_fault: Fault | None = None
    validation_errors: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    polls: int = 0

    @property
    def status(self) -> str:
        """The status the last poll saw."""
        return str(self.obj["status"])


class _Labeler:
    """Deterministic label choice for one enum."""

    def __init__(self, enum: list[str]) -> None:
        self.enum = enum
        self.classifier: LabelSimilarityClassifier | None = None
        for value in vars(taxonomies).values():
            if isinstance(value, Taxonomy) and sorted(value.names) == sorted(enum):
                self.classifier = LabelSimilarityClassifier(value)
                break

    def __call__(self, text: str) -> tuple[str, float]:
        if self.classifier is not None:
            label, confidence = self.classifier.predict(text)
            return label, round(confidence, 4)
        words = set(_NAME_WORD.findall(text.lower()))
        for name in self.enum:
            parts = _NAME_WORD.findall(name.lower())
            if parts and all(p in words for p in parts):
                return name, 0.9
        return self.enum[-1], 0.5


class FakeOpenAI:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 in a daemon thread.

    ``latency_s`` delays every answer; ``tokens_per_minute`` answers 429 with ``Retry-After``
    once the prompt tokens received within the last ``window_s`` seconds would exceed it.
    """

    def __init__(
        self,
        latency_s: float = 0.0,
        tokens_per_minute: int | None = None,
        window_s: float = 60.0,
        summary_max_words: int = 25,
    ) -> None:
        self.latency_s = latency_s
        self.tokens_per_minute = tokens_per_minute
        self.window_s = window_s
        self.summary_max_words = summary_max_words
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._persistent: Fault | None = None
        self._requests: list[RecordedRequest] = []
        self._window: deque[tuple[float, int]] = deque()
        self._labelers: dict[tuple[str, ...], _Labeler] = {}
        self._stopping = threading.Event()
        # Batch state has its own (re-entrant) lock: finishing a batch calls ``answer``, which
        # takes ``_lock`` for the labeller cache.
        self._batch_lock = threading.RLock()
        self._batch_faults: deque[tuple[Fault, ...]] = deque()
        self._batch_persistent: tuple[Fault, ...] = ()
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, FakeBatch] = {}
        self._ids = itertools.count(1)
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        """Serve in a daemon thread; returns ``self``."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any slow handler and close the listening socket."""
        self._stopping.set()
        if self._thread is not None:  # shutdown() would wait forever for a loop never started
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control and inspection --------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue ``faults``; each applies to one request, first in first out."""
        with self._lock:
            self._faults.extend(faults)

    def fail_always(self, fault: Fault | None) -> None:
        """Apply ``fault`` to every request once the queue is empty (``None`` to stop)."""
        with self._lock:
            self._persistent = fault

    @property
    def pending_faults(self) -> int:
        """Queued faults not yet applied."""
        with self._lock:
            return len(self._faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self) -> list[RecordedRequest]:
        """Requests to the chat-completions endpoint."""
        return [r for r in self.requests if r.path == CHAT_PATH]

    def reset_log(self) -> None:
        """Forget recorded requests (not the queued faults)."""
        with self._lock:
            self._requests.clear()

    # --- Batch API: control and inspection ---------------------------------------------------

    def inject_batch(self, *faults: Fault) -> None:
        """Queue one batch's faults: all of ``faults`` apply together to the next batch created.

        A whole-batch fault (``batch_failed``, ``batch_expired``, ``batch_cancelled``) sets how
        the batch ends; a line fault (``line_error`` or any per-record content fault such as
        ``bad_label``) applies to the line carrying its ``record_id`` (default: the first
        line), at most one fault per line, the first that matches.
        """
        with self._batch_lock:
            self._batch_faults.append(tuple(faults))

    def fail_all_batches(self, *faults: Fault) -> None:
        """Apply ``faults`` to every batch created once the batch queue is empty (none: stop)."""
        with self._batch_lock:
            self._batch_persistent = tuple(faults)

    @property
    def pending_batch_faults(self) -> int:
        """Batches' worth of queued faults not yet applied."""
        with self._batch_lock:
            return len(self._batch_faults)

    @property
    def batches(self) -> list[FakeBatch]:
        """Every batch created so far, in creation order."""
        with self._batch_lock:
            return list(self._batches.values())

    def file(self, file_id: str) -> StoredFile:
        """A stored file by id (uploaded or produced)."""
        with self._batch_lock:
            return self._files[file_id]

    def batch_lines(self, batch_id: str | None = None) -> list[RecordedRequest]:
        """The input lines of one batch (default: every batch, in order) as requests.

        ``path`` is the line's ``url``, ``body`` its body, ``custom_id`` its custom id and
        ``fault`` the line fault it was given, so ``record_ids``, ``system``... work as for
        chat requests.
        """
        with self._batch_lock:
            chosen = [self._batches[batch_id]] if batch_id else list(self._batches.values())
            return [
                RecordedRequest(
                    path=str(line.get("url")),
                    headers={},
                    body=line.get("body") if isinstance(line.get("body"), dict) else None,
                    fault=batch.line_faults.get(i),
                    custom_id=line.get("custom_id"),
                )
                for batch in chosen
                for i, line in enumerate(batch.lines)
            ]

    def batch_api_requests(self) -> list[RecordedRequest]:
        """Requests to the files and batches endpoints."""
        return [r for r in self.requests if r.path.startswith((FILES_PATH, BATCHES_PATH))]

    # --- Batch API: behaviour ----------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-fake{next(self._ids):05d}"

    def _store_file(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        with self._batch_lock:
            stored = StoredFile(self._new_id("file"), filename, purpose, data)
            self._files[stored.id] = stored
            return stored

    def upload_file(self, fields: dict[str, tuple[str | None, bytes]]) -> tuple[int, Any]:
        """``POST /v1/files``: store the ``file`` part of a multipart form."""
        if "file" not in fields or "purpose" not in fields:
            return 400, _error_body(400)
        filename, data = fields["file"]
        purpose = fields["purpose"][1].decode()
        return 200, self._store_file(filename or "upload", purpose, data).to_object()

    def create_batch(self, body: Any) -> tuple[int, Any]:
        """``POST /v1/batches``: validate the input file now, reveal the outcome poll by poll."""
        if not isinstance(body, dict):
            return 400, _error_body(400)
        with self._batch_lock:
            stored = self._files.get(str(body.get("input_file_id")))
            if (
                stored is None
                or stored.purpose != "batch"
                or body.get("endpoint") != CHAT_PATH  # the only endpoint this fake batches
                or body.get("completion_window") != "24h"
            ):
                return 400, _error_body(400)
            faults = self._batch_faults.popleft() if self._batch_faults else self._batch_persistent
            lines, errors = _parse_batch_input(stored.data, CHAT_PATH)
            end_fault = next((f for f in faults if f.kind in _BATCH_END), None)
            if errors:
                statuses = ["validating", "failed"]
            elif end_fault is None:
                statuses = [*BATCH_PROGRESS, "completed"]
            elif end_fault.kind == BATCH_FAILED:
                statuses = ["validating", "failed"]
            else:
                statuses = ["validating", "in_progress", _BATCH_END[end_fault.kind]]
            batch_id = self._new_id("batch")
            now = int(time.time())
            batch = FakeBatch(
                obj={
                    "id": batch_id,
                    "object": "batch",
                    "endpoint": body["endpoint"],
                    "model": None,
                    "errors": None,
                    "input_file_id": stored.id,
                    "completion_window": "24h",
                    "status": statuses[0],
                    "output_file_id": None,
                    "error_file_id": None,
                    "created_at": now,
                    "expires_at": now + 24 * 3600,
                    "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                    "metadata": body.get("metadata"),
                },
                lines=lines,
                statuses=statuses,
                line_faults=_line_faults(lines, faults),
                end_fault=end_fault,
                validation_errors=errors,
            )
            self._batches[batch_id] = batch
            return 200, dict(batch.obj)

    def poll_batch(self, batch_id: str) -> tuple[int, Any]:
        """``GET /v1/batches/{id}``: one step further; the output is computed on the last."""
        with self._batch_lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return 404, _error_body(404)
            batch.polls += 1
            if batch.status not in BATCH_TERMINAL:
                batch.step = min(batch.step + 1, len(batch.statuses) - 1)
                batch.obj["status"] = batch.statuses[batch.step]
                if batch.status in BATCH_TERMINAL:
                    self._finish(batch)
            return 200, dict(batch.obj)

    def cancel_batch(self, batch_id: str) -> tuple[int, Any]:
        """``POST /v1/batches/{id}/cancel``: ``cancelling`` now, ``cancelled`` at the next poll."""
        with self._batch_lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return 404, _error_body(404)
            if batch.status not in BATCH_TERMINAL:
                batch.statuses = [*batch.statuses[: batch.step + 1], "cancelling", "cancelled"]
                batch.step += 1
                batch.obj["status"] = "cancelling"
                batch.end_fault = Fault(BATCH_CANCELLED)  # no line was answered
            return 200, dict(batch.obj)

    def _finish(self, batch: FakeBatch) -> None:
        """Write the output and error files of a batch that just reached its final status."""
        status = batch.status
        batch.obj[f"{status}_at"] = int(time.time())
        if status == "failed":
            batch.obj["errors"] = {
                "object": "list",
                "data": batch.validation_errors
                or [
                    {
                        "code": BATCH_FAILED_CODE,
                        "message": "Enqueued token limit reached (fake).",
                        "line": None,
                        "param": None,
                    }
                ],
            }
            return
        done = len(batch.lines) if status == "completed" else 0
        if batch.end_fault is not None and status != "completed":
            done = batch.end_fault.lines_done
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for i, line in enumerate(batch.lines):
            entry: dict[str, Any] = {
                "id": self._new_id("batch_req"),
                "custom_id": line["custom_id"],
                "response": None,
                "error": None,
            }
            fault = batch.line_faults.get(i)
            if i >= done:
                entry["error"] = {
                    "code": f"batch_{status}",
                    "message": f"This request could not be executed before the batch {status}.",
                }
                errors.append(entry)
            elif fault is not None and fault.kind == LINE_ERROR:
                code = fault.status or 500
                entry["response"] = {
                    "status_code": code,
                    "request_id": self._new_id("req"),
                    "body": _error_body(code),
                }
                errors.append(entry)
            else:
                completion, _ = self.answer(line["body"], fault)
                entry["response"] = {
                    "status_code": 200,
                    "request_id": self._new_id("req"),
                    "body": completion,
                }
                output.append(entry)
        for kind, entries in (("output", output), ("error", errors)):
            if entries:
                data = "".join(json.dumps(e) + "\n" for e in entries).encode()
                name = f"{batch.obj['id']}_{kind}.jsonl"
                batch.obj[f"{kind}_file_id"] = self._store_file(name, "batch_output", data).id
        batch.obj["request_counts"] = {
            "total": len(batch.lines),
            "completed": len(output),
            "failed": len(errors),
        }

    def file_object(self, file_id: str, content: bool) -> tuple[int, Any]:
        """``GET /v1/files/{id}`` (the object) or ``.../content`` (the bytes)."""
        with self._batch_lock:
            stored = self._files.get(file_id)
        if stored is None:
            return 404, _error_body(404)
        return 200, stored.data if content else stored.to_object()

    # --- request handling --------------------------------------------------------------------

    def _record(self, path: str, headers: dict[str, str], body: Any) -> RecordedRequest:
        with self._lock:
            fault = self._faults.popleft() if self._faults else self._persistent
            rec = RecordedRequest(path, headers, body if isinstance(body, dict) else None, fault)
            self._requests.append(rec)
            return rec

    def _rate_limited(self, tokens: int) -> float | None:
        """Seconds to wait if admitting ``tokens`` would exceed the per-window limit."""
        if self.tokens_per_minute is None:
            return None
        with self._lock:
            now = time.monotonic()
            while self._window and self._window[0][0] <= now - self.window_s:
                self._window.popleft()
            used = sum(t for _, t in self._window)
            if self._window and used + tokens > self.tokens_per_minute:
                return max(0.0, self._window[0][0] + self.window_s - now)
            self._window.append((now, tokens))
            return None

    def _labeler(self, enum: list[str]) -> _Labeler:
        key = tuple(enum)
        with self._lock:
            if key not in self._labelers:
                self._labelers[key] = _Labeler(enum)
            return self._labelers[key]

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def answer(self, body: dict[str, Any], fault: Fault | None) -> tuple[dict[str, Any], int]:
        """The chat.completion object for ``body`` (with a content fault applied)."""
        model = str(body.get("model", "gpt-4o-mini"))
        messages = body.get("messages", [])
        user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
        schema = (
            (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
        ) or {}
        item_schema = schema.get("properties", {}).get("results", {}).get("items", {})
        wanted = list(item_schema.get("properties", {}) or ["id", "label", "confidence"])
        enum = item_schema.get("properties", {}).get("label", {}).get("enum") or ["other"]
        records, loose = parse_records(user or "")
        fields_schema = item_schema.get("properties", {}).get("fields")
        if isinstance(fields_schema, dict):
            results = [
                {"id": rec["id"], "fields": _extract_answer(fields_schema, rec["text"])}
                for rec in records
            ]
            results = _apply_item_fault(_apply_extract_fault(results, fault), fault)
            content = json.dumps({"results": results}, ensure_ascii=False)
            return self._completion(model, messages, content, fault)
        obeyed = None
        for line in loose:
            match = _OBEY.search(line)
            if match:
                obeyed = match.group(1)
        labeler = self._labeler(list(enum))
        results: list[dict[str, Any]] = []
        for rec in records:
            label, confidence = labeler(rec["text"])
            if obeyed is not None:
                label, confidence = obeyed, 1.0
            full = {
                "id": rec["id"],
                "label": label,
                "confidence": confidence,
                "summary": extractive_summary(rec["text"], self.summary_max_words),
                "labels": [label],
                "rationale": f"the record reads like {label}",
            }
            results.append({k: full[k] for k in wanted if k in full})
        results = _apply_item_fault(results, fault)
        content = json.dumps({"results": results}, ensure_ascii=False)
        return self._completion(model, messages, content, fault)

    def _completion(
        self, model: str, messages: list[dict[str, Any]], answer: str, fault: Fault | None
    ) -> tuple[dict[str, Any], int]:
        """A chat.completion carrying ``answer``, with a transport-level content fault applied."""
        content: str | None = answer
        finish_reason = "stop"
        refusal = None
        if fault is not None and fault.kind == TRUNCATED:
            assert content is not None
            content, finish_reason = content[: max(1, len(content) // 2)], "length"
        elif fault is not None and fault.kind == REFUSAL:
            content, refusal = None, REFUSAL_TEXT
        elif fault is not None and fault.kind == MALFORMED:
            content = MALFORMED_CONTENT
        prompt_tokens = sum(count_tokens(str(m.get("content") or ""), model) for m in messages)
        completion_tokens = count_tokens(content or refusal or "", model)
        completion = {
            "id": f"chatcmpl-fake-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if fault is not None and fault.kind == EMPTY_CHOICES:
            completion["choices"] = []
        return completion, prompt_tokens


def _answer_value(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _extract_answer(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """One document's answer in the shape of ``schema``, read by the embedded rules."""
    props = schema.get("properties", {})
    pages = {n: t for n, t in split_pages(text)}
    page_texts = [PageText(n, t, METHOD_PLAIN_TEXT) for n, t in pages.items()]
    found = (extract_contract if "governing_law" in props else extract_invoice)(page_texts)
    answer: dict[str, Any] = {}
    for name, spec in props.items():
        if spec.get("type") == "array":
            item_keys = list(spec["items"]["properties"])
            items = []
            for item in getattr(found, name, ()):
                entry = {k: getattr(item, k, None) for k in item_keys}
                entry = {k: None if v is None else _answer_value(v) for k, v in entry.items()}
                entry["confidence"] = item.confidence
                entry["page"] = item.page
                entry["quote"] = pages[item.page][item.start : item.end]
                items.append(entry)
            answer[name] = items
            continue
        value = getattr(found, name, None)
        if value is None:
            answer[name] = {"value": None, "confidence": 0.0, "page": None, "quote": None}
        else:
            answer[name] = {
                "value": _answer_value(value.value),
                "confidence": value.confidence,
                "page": value.page,
                "quote": pages[value.page][value.start : value.end],
            }
    return answer


def _apply_extract_fault(
    results: list[dict[str, Any]], fault: Fault | None
) -> list[dict[str, Any]]:
    if fault is None or fault.kind not in (BAD_VALUE, WRONG_QUOTE):
        return results
    i = _target(results, fault)
    if i is None:
        return results
    fields = results[i]["fields"]
    if fault.kind == BAD_VALUE:
        for value in fields.values():
            dated = isinstance(value, dict) and value.get("value") is not None
            if dated and re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value["value"])):
                value["value"] = NOT_A_DATE
        return results
    for name, value in fields.items():
        if isinstance(value, dict) and value.get("quote") and fault.field_name in (None, name):
            value["quote"] = UNFOUND_QUOTE
            break
    return results


def _target(results: list[dict[str, Any]], fault: Fault) -> int | None:
    for i, item in enumerate(results):
        if fault.record_id is None or item.get("id") == fault.record_id:
            return i
    return None


def _apply_item_fault(results: list[dict[str, Any]], fault: Fault | None) -> list[dict[str, Any]]:
    if fault is None:
        return results
    if fault.kind == EXTRA_ID_FAULT:
        template = dict(results[0]) if results else {"id": ""}
        template["id"] = fault.record_id or EXTRA_ID
        return [*results, template]
    if fault.kind not in (BAD_LABEL, MISSING_ID, DUPLICATE_ID):
        return results
    i = _target(results, fault)
    if i is None:
        return results
    if fault.kind == BAD_LABEL:
        results[i] = {**results[i], "label": OUT_OF_ENUM_LABEL}
    elif fault.kind == MISSING_ID:
        del results[i]
    else:
        copy = dict(results[i])
        if "confidence" in copy:
            copy["confidence"] = 0.01
        results.insert(i + 1, copy)
    return results


def _parse_batch_input(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict]]:
    """Input lines, and the validation errors that make the whole batch fail (like OpenAI)."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def error(code: str, n: int, message: str) -> None:
        errors.append({"code": code, "line": n, "message": message, "param": None})

    for n, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            error("invalid_json_line", n, "This line is not parseable as valid JSON.")
            continue
        if not isinstance(line, dict):
            error("invalid_json_line", n, "This line is not a JSON object.")
            continue
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            error("missing_required_parameter", n, "custom_id is missing.")
        elif custom_id in seen:
            error("duplicate_custom_id", n, f"The custom_id {custom_id!r} is not unique.")
        if line.get("method") != "POST":
            error("invalid_method", n, "method must be POST.")
        if line.get("url") != endpoint:
            error("invalid_url", n, f"url must be {endpoint}.")
        if not isinstance(line.get("body"), dict):
            error("invalid_body", n, "body must be an object.")
        if isinstance(custom_id, str):
            seen.add(custom_id)
        lines.append(line)
    if not lines and not errors:
        error("empty_file", 0, "The input file is empty.")
    return lines, errors


def _line_faults(lines: list[dict[str, Any]], faults: tuple[Fault, ...]) -> dict[int, Fault]:
    """Which line gets which line fault: the line carrying the record, else the first line."""
    chosen: dict[int, Fault] = {}
    for fault in faults:
        if fault.kind != LINE_ERROR and fault.kind not in _CONTENT_FAULTS:
            continue
        for i, line in enumerate(lines):
            body = line.get("body") if isinstance(line.get("body"), dict) else None
            ids = RecordedRequest("", {}, body).record_ids
            targeted = fault.record_id in ids or (
                i == 0 and (fault.record_id is None or fault.kind == EXTRA_ID_FAULT)
            )
            if targeted and i not in chosen:
                chosen[i] = fault
                break
    return chosen


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a ``multipart/form-data`` body: name -> (filename, bytes)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def _error_body(status: int) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        429: "rate_limit_exceeded",
        500: "server_error",
        503: "server_error",
    }
    return {
        "error": {
            "message": f"fake server error {status}",
            "type": kinds.get(status, "server_error"),
            "param": None,
            "code": kinds.get(status),
        }
    }


def _make_handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = 30  # an idle keep-alive connection closes after this

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send_json(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:  # the client gave up (timeout) and closed the socket
                self.close_connection = True

        def _send_raw(self, status: int, data: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                self.close_connection = True

        def _reset(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()  # the blank line after the last chunk
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _transport_fault(self, fault: Fault | None) -> bool:
            """Apply a transport fault to a Batch API request; True if it was answered."""
            if fault is None:
                return False
            if fault.kind in (RATE_LIMIT, HTTP_ERROR):
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else None
                self._send_json(fault.status or 500, _error_body(fault.status or 500), extra)
                return True
            if fault.kind == RESET:
                self._reset()
                return True
            if fault.kind == SLOW:
                server._sleep(fault.seconds)
            return False

        def _send_result(self, result: tuple[int, Any]) -> None:
            status, payload = result
            if isinstance(payload, bytes):
                self._send_raw(status, payload, "application/octet-stream")
            else:
                self._send_json(status, payload)

        def do_POST(self) -> None:
            raw = self._read_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.split("?", 1)[0]
            fields: dict[str, tuple[str | None, bytes]] = {}
            if path == FILES_PATH:
                fields = parse_multipart(headers.get("content-type", ""), raw)
                file_part = fields.get("file", (None, b""))
                body: Any = {
                    "purpose": fields.get("purpose", (None, b""))[1].decode(),
                    "filename": file_part[0],
                    "bytes": len(file_part[1]),
                }
            else:
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
            rec = server._record(path, headers, body)
            batch_route = _BATCH_ROUTE.fullmatch(path)
            if path in (FILES_PATH, BATCHES_PATH) or (batch_route and batch_route["cancel"]):
                if self._transport_fault(rec.fault):
                    return
                if path == FILES_PATH:
                    self._send_result(server.upload_file(fields))
                elif path == BATCHES_PATH:
                    self._send_result(server.create_batch(body))
                else:
                    assert batch_route is not None
                    self._send_result(server.cancel_batch(batch_route["id"]))
                return
            if path != CHAT_PATH:
                self._send_json(404, _error_body(404))
                return
            if not isinstance(body, dict):
                self._send_json(400, _error_body(400))
                return
            fault = rec.fault
            server._sleep(server.latency_s)
            if fault is not None and fault.kind in (RATE_LIMIT, HTTP_ERROR):
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else None
                self._send_json(fault.status or 500, _error_body(fault.status or 500), extra)
                return
            if fault is not None and fault.kind == RESET:
                self._reset()
                return
            if fault is not None and fault.kind == INVALID_BODY:
                self._send_raw(200, INVALID_BODY_TEXT.encode(), fault.content_type or "text/html")
                return
            if fault is not None and fault.kind == SLOW:
                server._sleep(fault.seconds)
            completion, prompt_tokens = server.answer(body, fault)
            wait = server._rate_limited(prompt_tokens)
            if wait is not None:
                retry_after = str(max(1, math.ceil(wait)))
                self._send_json(429, _error_body(429), {"Retry-After": retry_after})
                return
            self._send_json(200, completion)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            rec = server._record(path, {k.lower(): v for k, v in self.headers.items()}, None)
            batch_route = _BATCH_ROUTE.fullmatch(path)
            file_route = _FILE_ROUTE.fullmatch(path)
            if batch_route and not batch_route["cancel"]:
                if not self._transport_fault(rec.fault):
                    self._send_result(server.poll_batch(batch_route["id"]))
            elif file_route:
                if not self._transport_fault(rec.fault):
                    content = bool(file_route["content"])
                    self._send_result(server.file_object(file_route["id"], content))
            else:
                self._send_json(404, _error_body(404))

    return Handler


class _Server(ThreadingHTTPServer):
    """Threads are daemons and never joined; a client hanging up is not an error."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)
