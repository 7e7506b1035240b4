"""Builds the configured provider: the one module that knows every provider class."""

from enrichment.providers.base import EMBEDDED, OPENAI, OPENAI_BATCH, Provider, ProviderConfig
from enrichment.providers.embedded import EmbeddedProvider
from enrichment.providers.openai_batch import OpenAIBatchProvider
from enrichment.providers.openai_chat import OpenAIChatProvider


def build_provider(config: ProviderConfig) -> Provider:
    """Instantiate the configured provider (called once per Spark partition)."""
    if config.kind == EMBEDDED:
        return EmbeddedProvider()
    if config.kind == OPENAI:
        return OpenAIChatProvider(config)
    if config.kind == OPENAI_BATCH:
        return OpenAIBatchProvider(config)
    raise ValueError(
        f"unknown enrichment provider kind {config.kind!r} (embedded | openai | openai_batch)"
    )
