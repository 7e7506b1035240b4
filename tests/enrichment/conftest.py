"""Fixtures of the enrichment tests: a local fake OpenAI server, never the internet."""

from collections.abc import Iterator

import pytest

from tests.enrichment.fake_openai import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh OpenAI-compatible server on 127.0.0.1, shut down after the test."""
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
