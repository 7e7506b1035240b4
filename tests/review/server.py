"""The review page served on a loopback port for a test: uvicorn in a thread."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from infra.lakehouse import LakehouseResource
from infra.settings import Reviewer, ReviewSettings
from review.app import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def review_page(
    lakehouse: LakehouseResource,
    reviewers: tuple[Reviewer, ...],
    token_reviewers: tuple[Reviewer, ...] = (),
) -> Iterator[str]:
    """The page's base URL while the block runs; stopped after it."""
    port = free_port()
    settings = ReviewSettings(
        host="127.0.0.1", port=port, reviewers=reviewers, token_reviewers=token_reviewers
    )
    config = uvicorn.Config(create_app(lakehouse, settings), host="127.0.0.1", port=port,
                            log_level="warning")  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "the review page did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)
