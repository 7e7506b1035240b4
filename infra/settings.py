"""Every environment-dependent setting, read from the environment in one place.

Defaults run the whole pipeline on one machine with no key and no network.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _key_values(
    variable: str, valid: Callable[[str, str], bool], form: str, sep: str | None = ","
) -> dict[str, str]:
    """The ``key=value`` items of environment variable ``variable`` (separated by whitespace,
    and by ``sep`` too when given), in order; a later key wins.

    Raises:
        ValueError: an item that is not ``key=value`` or that ``valid`` refuses, quoting ``form``.
    """
    text = os.environ.get(variable, "")
    items = (text.replace(sep, " ") if sep else text).split()
    pairs = {}
    for item in items:
        key, found, value = item.partition("=")
        if not found or not valid(key, value):
            raise ValueError(f"{variable} items are {form}, not {item!r}")
        pairs[key] = value
    return pairs


def lakehouse_root() -> str:
    """``LAKEHOUSE_ROOT``: where the landing zone and every table live (a path or a URI)."""
    return _env("LAKEHOUSE_ROOT", str(PROJECT_ROOT / ".lakehouse"))


def spark_master() -> str:
    """``SPARK_MASTER``: ``local[*]`` by default, or ``spark://host:7077``, ``yarn``..."""
    return _env("SPARK_MASTER", "local[*]")


SPARK_PROFILES = ("small", "large")


def spark_profile(master: str) -> str:
    """``SPARK_PROFILE``: ``small`` (a few thousand rows a date: interpreted expressions, no
    adaptive execution, one shuffle partition) or ``large`` (Spark's own defaults: code
    generation, adaptive execution). By default ``small`` on a ``local`` master, ``large`` on a
    cluster.

    Raises:
        ValueError: a value that is not a profile.
    """
    default = "small" if master.startswith("local") else "large"
    profile = _env("SPARK_PROFILE", default)
    if profile not in SPARK_PROFILES:
        raise ValueError(f"SPARK_PROFILE is one of {', '.join(SPARK_PROFILES)}, not {profile!r}")
    return profile


def spark_driver_memory() -> str:
    """``SPARK_DRIVER_MEMORY``: the driver's heap (in local mode, the executors' too): ``4g``."""
    return _env("SPARK_DRIVER_MEMORY", "4g")


def step_threads() -> int:
    """``STEP_THREADS``: steps of a run executed at once, each in a thread (``infra/executor.py``):
    3; 1 runs them one after another."""
    value = _env("STEP_THREADS", "3")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"STEP_THREADS is a whole number of at least 1, not {value!r}")
    return int(value)


def spark_conf_overrides() -> dict[str, str]:
    """``SPARK_CONF``: further Spark settings, ``key=value`` separated by whitespace, applied
    last (they win over the project's): a cluster's executor sizes, or small-data tuning such as
    ``spark.sql.codegen.wholeStage=false``.

    Raises:
        ValueError: an item that is not ``key=value``.
    """
    return _key_values(
        "SPARK_CONF", lambda key, _: key.startswith("spark."), "spark.<key>=<value>", sep=None
    )


def gx_pandas_max_rows() -> int:
    """``GX_PANDAS_MAX_ROWS``: a frame to validate of at most this many rows (200,000 by default)
    is collected to pandas once and validated by GX's pandas engine, which costs one Spark job
    where GX's Spark engine costs dozens and thousands of py4j calls (``expectations/runner.py``);
    larger frames stay on Spark. 0 validates every frame on Spark.

    Raises:
        ValueError: a value that is not a whole number.
    """
    value = _env("GX_PANDAS_MAX_ROWS", "200000")
    if not value.isdigit():
        raise ValueError(f"GX_PANDAS_MAX_ROWS is a whole number of rows, not {value!r}")
    return int(value)


def time_travel_days() -> int:
    """``LAKEHOUSE_TIME_TRAVEL_DAYS``: the audit window (30 days by default). Every Delta table
    the lakehouse creates keeps its log and the files its older versions read this long, so
    ``VERSION AS OF``, ``RESTORE`` and the WAP ledger's versions work inside it, whatever a
    ``VACUUM`` with no ``RETAIN`` clause does."""
    return int(_env("LAKEHOUSE_TIME_TRAVEL_DAYS", "30"))


def audit_window_properties() -> dict[str, str]:
    """The Delta table properties that keep ``time_travel_days`` of history and old files; every
    table the lakehouse creates has them, whichever engine (Spark, delta-rs) creates it."""
    window = f"interval {time_travel_days()} days"
    return {"delta.logRetentionDuration": window, "delta.deletedFileRetentionDuration": window}


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
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0


def llm_settings() -> LLMSettings:
    """Read ``OPENAI_API_KEY`` (presence only), ``OPENAI_BASE_URL`` and ``LLM_*``.

    ``LLM_BREAKER_FAILURES``: consecutive failed requests that stop a task calling the endpoint
    for the rest of the run (0: never). ``LLM_FALLBACK_OFF``: comma-separated task names (or
    ``all``) whose rows the LLM did not answer stay failed instead of answered offline.
    ``LLM_BACKOFF_BASE_S`` / ``LLM_BACKOFF_MAX_S``: the wait before a retry doubles from the
    base up to the cap (with jitter) when the provider gives no ``Retry-After``.
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
        backoff_base_s=float(_env("LLM_BACKOFF_BASE_S", "1.0")),
        backoff_max_s=float(_env("LLM_BACKOFF_MAX_S", "30.0")),
    )


LLM_POOL = "llm"


def llm_pool() -> str | None:
    """The Dagster concurrency pool of the steps that may call the LLM: ``llm`` (its limit in
    ``dagster.yaml`` keeps a backfill and the nightly run within the provider's limits) when
    ``OPENAI_API_KEY`` is set; None without a key, where the embedded offline model answers in the
    step's own process and no request leaves it, so those steps need no slot and run beside each
    other (read when the definitions load: a code location picks up a new key when reloaded)."""
    return LLM_POOL if llm_settings().api_key_set else None


# The confidence below which an enriched value queues for an analyst, per enrichment task (the
# task names of ``enrichment/prompts.py``). Lower than ``route_below_confidence`` (0.7, where the
# history model hands a row to the LLM): a row reaches a person only when the last answer, the
# LLM's included, is still unsure. ``REVIEW_THRESHOLDS`` overrides any of them.
REVIEW_THRESHOLDS = {
    "expense_line_enrichment": 0.6,
    "hr_case_type": 0.7,
    "hr_case_urgency": 0.7,
    "recon_exception_note": 0.6,
    "extract_invoice": 0.6,
    # The contract rules' sentence reading (renewal terms) is 0.6: read, not queued.
    "extract_contract": 0.6,
}
# When the review queue's asset checks warn (gold_review_queue): more open items than
# ``max_open_items`` (all tables and dates), or a model and prompt version whose decisions
# overrode it more often than ``max_override_rate``, once it has ``min_decisions`` of them (a
# rate of three decisions says little). ``REVIEW_ALERTS`` overrides any of them.
REVIEW_ALERTS = {
    "max_open_items": 500.0,
    "max_override_rate": 0.3,
    "min_decisions": 20.0,
}
REVIEW_ROLES = ("analyst", "hr")
# How much a label a reviewer decided (``ops.review_decisions``) weighs in the history model's
# training against a label an employee coded on a claim (1): a person checked it against the
# record, and there are few of them. ``HUMAN_LABEL_WEIGHT`` overrides it.
HUMAN_LABEL_WEIGHT = 5.0


def human_label_weight() -> float:
    """``HUMAN_LABEL_WEIGHT`` (a positive number), else ``HUMAN_LABEL_WEIGHT``'s default.

    Raises:
        ValueError: a value that is not a positive number.
    """
    text = _env("HUMAN_LABEL_WEIGHT", str(HUMAN_LABEL_WEIGHT))
    try:
        weight = float(text)
    except ValueError:
        weight = 0.0
    if not weight > 0:
        raise ValueError(f"HUMAN_LABEL_WEIGHT is a positive number, not {text!r}")
    return weight


@dataclass(frozen=True)
class Reviewer:
    """One person allowed on the review page: name, password hash (``review.auth``), role."""

    name: str
    password_hash: str
    role: str


@dataclass(frozen=True)
class ReviewSettings:
    """The review page's address, reviewers and per-task confidence thresholds."""

    host: str = "127.0.0.1"
    port: int = 8765
    reviewers: tuple[Reviewer, ...] = ()
    # Reviewers who sign in with a bearer token; ``password_hash`` holds the token's hash.
    token_reviewers: tuple[Reviewer, ...] = ()
    thresholds: tuple[tuple[str, float], ...] = tuple(REVIEW_THRESHOLDS.items())

    def threshold(self, task: str) -> float:
        """The confidence below which ``task``'s values queue for review."""
        return dict(self.thresholds)[task]


def review_thresholds() -> dict[str, float]:
    """``REVIEW_THRESHOLDS`` (``task=0.8,task=0.5``) over the defaults of ``REVIEW_THRESHOLDS``.

    Raises:
        ValueError: an unknown task or a threshold outside [0, 1].
    """
    given = _key_values(
        "REVIEW_THRESHOLDS",
        lambda task, value: task in REVIEW_THRESHOLDS and _unit_interval(value),
        f"<task>=<0..1> with a task of {sorted(REVIEW_THRESHOLDS)}",
    )
    return {**REVIEW_THRESHOLDS, **{task: float(value) for task, value in given.items()}}


def _unit_interval(value: str) -> bool:
    try:
        return 0 <= float(value) <= 1
    except ValueError:
        return False


def review_alerts() -> dict[str, float]:
    """``REVIEW_ALERTS`` (``max_open_items=200,max_override_rate=0.2``) over ``REVIEW_ALERTS``.

    Raises:
        ValueError: an unknown item or a negative value (a rate above 1).
    """
    alerts = dict(REVIEW_ALERTS)
    for item in os.environ.get("REVIEW_ALERTS", "").replace(",", " ").split():
        name, sep, value = item.partition("=")
        if not sep or name not in alerts or float(value) < 0:
            raise ValueError(
                f"REVIEW_ALERTS items are <name>=<number> with a name of {sorted(alerts)}, "
                f"not {item!r}"
            )
        if name == "max_override_rate" and float(value) > 1:
            raise ValueError(f"max_override_rate is a share in [0, 1], not {value}")
        alerts[name] = float(value)
    return alerts


def _reviewers(variable: str) -> tuple[Reviewer, ...]:
    reviewers = []
    for item in os.environ.get(variable, "").split(","):
        if not item.strip():
            continue
        parts = item.strip().split(":")
        if len(parts) != 3 or parts[2] not in REVIEW_ROLES or not parts[0] or not parts[1]:
            # Only the name: the item holds a hash.
            raise ValueError(
                f"{variable} items are name:hash:role with a role of {REVIEW_ROLES}; "
                f"the item for {parts[0]!r} is not"
            )
        reviewers.append(Reviewer(*parts))
    return tuple(reviewers)


def review_settings() -> ReviewSettings:
    """Read ``REVIEW_HOST`` (loopback by default), ``REVIEW_PORT``, ``REVIEW_USERS``,
    ``REVIEW_TOKENS`` and ``REVIEW_THRESHOLDS``.

    ``REVIEW_USERS`` is ``name:hash:role`` items separated by commas, the hash from
    ``python -m review.auth`` (PBKDF2-SHA256, never a clear password) and the role one of
    ``REVIEW_ROLES``. ``REVIEW_TOKENS`` is the same for bearer tokens, the hash from
    ``python -m review.auth --token`` (``sha256$…`` of a generated token, never the token). The
    hashes are never logged.

    Raises:
        ValueError: a malformed ``REVIEW_USERS`` or ``REVIEW_TOKENS`` item or an unknown role.
    """
    return ReviewSettings(
        host=_env("REVIEW_HOST", "127.0.0.1"),
        port=int(_env("REVIEW_PORT", "8765")),
        reviewers=_reviewers("REVIEW_USERS"),
        token_reviewers=_reviewers("REVIEW_TOKENS"),
        thresholds=tuple(review_thresholds().items()),
    )
