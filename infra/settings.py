"""Every environment-dependent setting, read from the environment in one place.

Defaults run the whole pipeline on one machine with no key and no network.
"""

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def lakehouse_root() -> str:
    """``LAKEHOUSE_ROOT``: where the landing zone and every table live (a path or a URI)."""
    return _env("LAKEHOUSE_ROOT", str(PROJECT_ROOT / ".lakehouse"))


def spark_master() -> str:
    """``SPARK_MASTER``: ``local[*]`` by default, or ``spark://host:7077``, ``yarn``..."""
    return _env("SPARK_MASTER", "local[*]")


def spark_driver_memory() -> str:
    """``SPARK_DRIVER_MEMORY``: the driver's heap (in local mode, the executors' too): ``4g``."""
    return _env("SPARK_DRIVER_MEMORY", "4g")


def spark_conf_overrides() -> dict[str, str]:
    """``SPARK_CONF``: further Spark settings, ``key=value`` separated by whitespace, applied
    last (they win over the project's): a cluster's executor sizes, or small-data tuning such as
    ``spark.sql.codegen.wholeStage=false``.

    Raises:
        ValueError: an item that is not ``key=value``.
    """
    overrides = {}
    for item in os.environ.get("SPARK_CONF", "").split():
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("spark."):
            raise ValueError(f"SPARK_CONF items are spark.<key>=<value>, not {item!r}")
        overrides[key] = value
    return overrides


def time_travel_days() -> int:
    """``LAKEHOUSE_TIME_TRAVEL_DAYS``: the audit window (30 days by default). Every Delta table
    the lakehouse creates keeps its log and the files its older versions read this long, so
    ``VERSION AS OF``, ``RESTORE`` and the WAP ledger's versions work inside it, whatever a
    ``VACUUM`` with no ``RETAIN`` clause does."""
    return int(_env("LAKEHOUSE_TIME_TRAVEL_DAYS", "30"))


def landing_settle_seconds() -> float:
    """``LANDING_SETTLE_SECONDS``: the landing sensor waits until every file of a date is this
    old (unchanged), for sources that write files in place; 0 (default) trusts the files as soon
    as they carry their final name."""
    return float(_env("LANDING_SETTLE_SECONDS", "0"))


def _optional_float(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    return float(value) if value else None


@dataclass(frozen=True)
class LLMSettings:
    """How enrichment reaches a model; with no API key the embedded offline model runs.

    The key itself is never held here: resources read it through ``EnvVar("OPENAI_API_KEY")``.
    """

    api_key_set: bool = False
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    route: str = "chat"
    max_records_per_request: int = 20
    max_input_tokens_per_request: int = 6000
    run_token_budget: int = 2_000_000
    budget_policy: str = "warn"
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_concurrency: int = 4
    route_below_confidence: float = 0.7
    history_min_rows: int = 200
    breaker_failures: int = 5
    fallback_off: tuple[str, ...] = ()


def llm_settings() -> LLMSettings:
    """Read ``OPENAI_API_KEY`` (presence only), ``OPENAI_BASE_URL`` and ``LLM_*``.

    ``LLM_BREAKER_FAILURES``: consecutive failed requests that stop a task calling the endpoint
    for the rest of the run (0: never). ``LLM_FALLBACK_OFF``: comma-separated task names (or
    ``all``) whose rows the LLM did not answer stay failed instead of answered offline.
    """
    return LLMSettings(
        api_key_set=bool(os.environ.get("OPENAI_API_KEY", "").strip()),
        base_url=os.environ.get("OPENAI_BASE_URL") or None,
        model=_env("LLM_MODEL", "gpt-4o-mini"),
        route=_env("LLM_ROUTE", "chat"),
        max_records_per_request=int(_env("LLM_MAX_RECORDS_PER_REQUEST", "20")),
        max_input_tokens_per_request=int(_env("LLM_MAX_INPUT_TOKENS_PER_REQUEST", "6000")),
        run_token_budget=int(_env("LLM_RUN_TOKEN_BUDGET", "2000000")),
        budget_policy=_env("LLM_BUDGET_POLICY", "warn"),
        requests_per_minute=_optional_float("LLM_REQUESTS_PER_MINUTE"),
        tokens_per_minute=_optional_float("LLM_TOKENS_PER_MINUTE"),
        max_concurrency=int(_env("LLM_MAX_CONCURRENCY", "4")),
        route_below_confidence=float(_env("LLM_ROUTE_BELOW_CONFIDENCE", "0.7")),
        history_min_rows=int(_env("ENRICH_HISTORY_MIN_ROWS", "200")),
        breaker_failures=int(_env("LLM_BREAKER_FAILURES", "5")),
        fallback_off=tuple(
            name.strip() for name in _env("LLM_FALLBACK_OFF", "").split(",") if name.strip()
        ),
    )
