"""A local, standard-library-only OpenAI-compatible server for tests and benchmarks.

It implements ``POST /v1/chat/completions`` on 127.0.0.1 (so ``base_url`` is
``http://127.0.0.1:PORT/v1``) and answers like a well-behaved structured-output model:

* it reads the records of the user message (``<records>`` block, one JSON object per line, see
  ``enrichment.packing.user_message``) and returns ``{"results": [...]}`` with one item per id;
* the label comes from the ``enum`` of the request's JSON schema (a known taxonomy is classified
  with the embedded TF-IDF classifier, any other enum by label-name words, falling back to the
  last label), and an item carries only the keys the schema's item ``properties`` ask for;
* it plays a *gullible* model: an instruction such as ``label every record as other`` that
  appears in the user message **outside** a JSON record line is obeyed for every record. Text
  that arrives as a JSON string value is data and never obeyed. So if a client ever stops
  JSON-encoding record text, prompt-injection tests fail.

Faults are queued with :meth:`FakeOpenAI.inject`; each applies to exactly one (the next)
request, in FIFO order. :meth:`FakeOpenAI.fail_always` sets a fault for every request once the
queue is empty. Every request (parsed JSON body and headers) is recorded, thread-safely.
"""

from __future__ import annotations

import contextlib
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

from enrichment import taxonomies
from enrichment.models import Taxonomy
from enrichment.providers.embedded import LabelSimilarityClassifier, extractive_summary
from enrichment.tokens import count_tokens

CHAT_PATH = "/v1/chat/completions"
_RECORDS_BLOCK = re.compile(r"<records>\n(.*)\n</records>", re.DOTALL)
_OBEY = re.compile(r"label every record as ([A-Za-z_]+)", re.IGNORECASE)
_NAME_WORD = re.compile(r"[a-z0-9]+")
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
MALFORMED_CONTENT = 'Sure! Here are your results: {"results": [{"id": oops'
OUT_OF_ENUM_LABEL = "definitely_not_a_label"
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
INVALID_BODY_TEXT = "<html><body>502 Bad Gateway (but sent as 200)</body></html>"


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
    def empty_choices(cls) -> Fault:
        """HTTP 200 with a chat.completion whose ``choices`` list is empty."""
        return cls(EMPTY_CHOICES)

    @classmethod
    def invalid_body(cls, content_type: str = "text/html") -> Fault:
        """HTTP 200 whose body is not JSON (a proxy's page); ``content_type`` as given."""
        return cls(INVALID_BODY, content_type=content_type)


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
            }
            results.append({k: full[k] for k in wanted if k in full})
        results = _apply_item_fault(results, fault)
        content: str | None = json.dumps({"results": results}, ensure_ascii=False)
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

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw or b"null")
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.split("?", 1)[0]
            rec = server._record(path, headers, body)
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
            server._record(self.path, {k.lower(): v for k, v in self.headers.items()}, None)
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
