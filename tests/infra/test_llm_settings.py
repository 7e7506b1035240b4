"""The enrichment resource's configuration from the environment (Spark-free)."""

from infra.enrichment import EnrichmentResource


def test_retry_waits_come_from_the_environment_into_each_call(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("LLM_BACKOFF_BASE_S", "0.5")
    monkeypatch.setenv("LLM_BACKOFF_MAX_S", "4")
    config = EnrichmentResource.from_env().provider_config()
    assert (config.backoff_base_s, config.backoff_max_s) == (0.5, 4.0)


def test_without_them_the_waits_start_at_one_second_and_stop_at_thirty(monkeypatch):
    monkeypatch.delenv("LLM_BACKOFF_BASE_S", raising=False)
    monkeypatch.delenv("LLM_BACKOFF_MAX_S", raising=False)
    config = EnrichmentResource.from_env().provider_config()
    assert (config.backoff_base_s, config.backoff_max_s) == (1.0, 30.0)
