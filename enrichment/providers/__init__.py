"""Providers answer enrichment tasks. One interface; chosen by configuration at wiring time."""

from enrichment.providers.base import Provider, ProviderConfig
from enrichment.providers.factory import build_provider

__all__ = ["Provider", "ProviderConfig", "build_provider"]
