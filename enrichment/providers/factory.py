"""Builds the configured provider: the one module that knows every provider class."""

from enrichment.providers.base import EMBEDDED, OPENAI, OPENAI_BATCH, Provider, ProviderConfig
from enrichment.providers.embedded import EmbeddedProvider
from enrichment.providers.fallback import FallbackProvider
from enrichment.providers.openai_batch import OpenAIBatchProvider
from enrichment.providers.openai_chat import OpenAIChatProvider


def build_provider(config: ProviderConfig, fallback: bool = False) -> Provider:
    """Instantiate the configured provider (called once per Spark partition).

    With ``fallback``, an LLM provider is wrapped in ``FallbackProvider``: the records it leaves
    failed get the embedded offline answer, for the tasks ``config.falls_back`` allows.
    """
    if config.kind == EMBEDDED:
        return EmbeddedProvider()
    if config.kind == OPENAI:
        provider: Provider = OpenAIChatProvider(config)
    elif config.kind == OPENAI_BATCH:
        provider = OpenAIBatchProvider(config)
    else:
        raise ValueError(
            f"unknown enrichment provider kind {config.kind!r} (embedded | openai | openai_batch)"
        )
    return FallbackProvider(provider, config) if fallback else provider
