"""What LLM enrichment costs: tokens per record, cache re-runs, mapInPandas vs a row UDF, limits.

Runs against the local fake OpenAI server (``tests/enrichment/fake_openai.py``, on 127.0.0.1,
never the internet) with a dummy API key, on generated expense lines
(``sample.expenses.build_day``, text as ``assets/expenses.py`` builds it), and prints in one
run:
  1. input tokens per record, packed (``max_records_per_request=20``) vs one record per request,
     on the same records, counted with tiktoken from the requests the server recorded (system +
     user messages) and checked against the usage the server reported;
  2. an unchanged partition enriched twice through ``EnrichmentResource.enrich`` (Delta cache
     ``ops.llm_cache`` on a temporary lakehouse): LLM requests and wall time, cold vs warm;
  3. the same rows through ``mapInPandas`` (``transforms.enrich.call_provider``, packed and one
     record per request) vs a row-at-a-time ``F.udf`` calling the same provider one record per
     call, at a fixed server latency: wall time, requests, rows/s;
  4. throughput against a tokens-per-minute limit the server enforces over a sliding window of
     ``--minute-s`` seconds (a scaled-down minute), with ``--workers`` providers in threads each
     given its share of the limit as ``EnrichmentResource`` divides it between Spark tasks, and
     their limiters on a clock where a minute lasts ``--minute-s`` seconds: no client limiter,
     the limiter at the server's limit, at half of it and at 95% of it; achieved tokens/min as a
     share of the limit and the 429 rate;
then a summary table. Spark runs local[2] with one shuffle partition and no UI. Not a test: run
on demand.

Usage: .venv/bin/python benchmarks/enrichment_costs.py [--records 200] [--latency-ms 20]
       [--tpm 60000] [--minute-s 4] [--rate-records 2400] [--workers 4]
"""

import argparse
import hashlib
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from enrichment.models import STATUS_OK, RecordIn, RecordOut
from enrichment.packing import pack, user_message
from enrichment.prompts import EXPENSE_LINE_TASK, system_prompt
from enrichment.providers import ProviderConfig, build_provider
from enrichment.providers.openai_chat import OpenAIChatProvider
from enrichment.ratelimit import RateLimiter
from enrichment.tokens import count_tokens
from sample.expenses import build_day
from tests.enrichment.fake_openai import FakeOpenAI

TASK = EXPENSE_LINE_TASK
MODEL = "gpt-4o-mini"
DAY = date(2026, 3, 31)
DUMMY_KEY = "bench-dummy-key"  # the fake server accepts anything; never printed
HEADER = f"""\
Figures (fake OpenAI-compatible server on 127.0.0.1, model {MODEL}, task {TASK.name}):
 1. tokens/record: prompt tokens (system + user message, tiktoken) of every request the server
    recorded, divided by the records sent; packed = up to 20 records per request (the default),
    alone = one record per request. Record ids are 64-hex input hashes, as in the pipeline.
 2. cache re-run: EnrichmentResource.enrich on the same partition twice; the warm run must make
    0 LLM requests (every distinct input is in ops.llm_cache). Times include the Delta writes.
 3. mapInPandas vs F.udf: the same prepared rows (input_hash, redacted text), cached, enriched
    by call_provider (mapInPandas, one provider per partition) and by a row-at-a-time Python UDF
    (one provider per task, one record per call), against a server answering after a fixed
    latency. rows/s = rows / wall time of the Spark job that collects the outcomes (median of
    --repeats runs, after one untimed run of each variant).
 4. rate limit: the server admits at most --tpm prompt tokens per sliding --minute-s window and
    answers 429 (with Retry-After) beyond; achieved = prompt tokens admitted per window, as a
    share of the limit, in the steady state (the whole windows after the first, which starts
    empty, up to the last admission) and over the whole run (first window included, so it can
    exceed 100%); 429 rate = 429 responses / requests. Each worker is one provider and limiter,
    as each Spark task of EnrichmentResource.enrich is.
"""


# --- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One generated expense line and the text enrichment sends for it."""

    report_id: str
    line_id: str
    merchant: str
    justification: str

    @property
    def text(self) -> str:
        return f"Merchant: {self.merchant}\nJustification: {self.justification}"


def expense_lines(n: int) -> list[Line]:
    """``n`` generated expense lines with distinct texts (days back from DAY as needed)."""
    lines: list[Line] = []
    seen: set[str] = set()
    day = DAY
    while len(lines) < n:
        for row in build_day(day, 250).lines:
            if not isinstance(row, dict):
                continue  # a malformed line of the sample's known-bad rows
            line = Line(row["report_id"], row["line_id"], row["merchant"], row["justification"])
            if line.text not in seen and len(lines) < n:
                seen.add(line.text)
                lines.append(line)
        day -= timedelta(days=1)
    return lines


def as_records(lines: list[Line], salt: str = "") -> list[RecordIn]:
    """Records with 64-hex ids (like ``input_hash``), unique per record."""
    return [
        RecordIn(hashlib.sha256(f"{salt}{i}\x1f{line.text}".encode()).hexdigest(), line.text)
        for i, line in enumerate(lines)
    ]


def chat_config(server: FakeOpenAI, **overrides) -> ProviderConfig:
    settings = {
        "kind": "openai",
        "model": MODEL,
        "base_url": server.base_url,
        "api_key": DUMMY_KEY,
        "request_timeout_s": 30.0,
        **overrides,
    }
    return ProviderConfig(**settings)


def timed(fn: Callable):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    fmt = "  ".join([f"{{:<{widths[0]}}}"] + [f"{{:>{w}}}" for w in widths[1:]])
    out = [fmt.format(*headers), fmt.format(*["-" * w for w in widths])]
    out += [fmt.format(*[str(x) for x in row]) for row in rows]
    return "\n".join(out)


# --- 1. tokens per record --------------------------------------------------------------------


def tokens_per_record(lines: list[Line]) -> dict:
    records = as_records(lines)
    figures = {}
    with FakeOpenAI() as server:
        for name, per_request in (("packed", 20), ("alone", 1)):
            server.reset_log()
            provider = OpenAIChatProvider(chat_config(server, max_records_per_request=per_request))
            outcomes = provider.run(TASK, records)
            requests = server.chat_requests()
            prompt = sum(
                count_tokens(r.system or "", MODEL) + count_tokens(r.user or "", MODEL)
                for r in requests
            )
            sent = sum(len(r.record_ids) for r in requests)
            figures[name] = {
                "requests": len(requests),
                "records_sent": sent,
                "prompt_tokens": prompt,
                "per_record": prompt / len(records),
                "usage_in": sum(o.tokens_in for o in outcomes),
                "usage_out_per_record": sum(o.tokens_out for o in outcomes) / len(records),
                "ok": sum(o.status == STATUS_OK for o in outcomes),
            }
    figures["ratio"] = figures["alone"]["per_record"] / figures["packed"]["per_record"]
    print(f"\n1. Input tokens per record, {len(records)} records")
    rows = [
        [
            name,
            f["requests"],
            f["records_sent"],
            f"{f['prompt_tokens']:,}",
            f"{f['per_record']:.1f}",
            f"{f['usage_in']:,}",
            f"{f['usage_out_per_record']:.1f}",
            f"{f['ok']}/{len(records)}",
        ]
        for name, f in (
            ("packed (20/request)", figures["packed"]),
            ("alone (1/request)", figures["alone"]),
        )
    ]
    print(
        table(
            [
                "mode",
                "requests",
                "records sent",
                "prompt tokens",
                "in tok/record",
                "usage in",
                "out tok/record",
                "ok",
            ],
            rows,
        )
    )
    print(f"ratio alone/packed: {figures['ratio']:.2f}x input tokens per record")
    return figures


# --- 2 and 3: Spark ---------------------------------------------------------------------------


def spark_session(workdir: Path):
    from infra.spark import build_spark_session

    spark = build_spark_session(
        master="local[2]",
        warehouse_dir=str(workdir / "warehouse"),
        app_name="bench-enrichment-costs",
        extra_conf={
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def lines_frame(spark, lines: list[Line]):
    rows = [(x.report_id, x.line_id, x.merchant, x.justification) for x in lines]
    return spark.createDataFrame(
        rows, "report_id string, line_id string, merchant string, justification string"
    )


def text_column():
    """The enrichment text, exactly as ``assets/expenses.py`` builds it."""
    from pyspark.sql import functions as F

    return F.concat_ws(
        "\n",
        F.concat(F.lit("Merchant: "), F.col("merchant")),
        F.concat(F.lit("Justification: "), F.coalesce(F.col("justification"), F.lit(""))),
    )


def cache_rerun(spark, workdir: Path, lines: list[Line], latency_s: float) -> dict:
    from infra.enrichment import EnrichmentResource
    from infra.lakehouse import LakehouseResource

    lakehouse = LakehouseResource(root=str(workdir / "lakehouse"))
    rows = lines_frame(spark, lines)
    figures = {}
    with FakeOpenAI(latency_s=latency_s) as server:
        resource = EnrichmentResource(api_key=DUMMY_KEY, base_url=server.base_url, model=MODEL)
        for name in ("cold", "warm"):
            server.reset_log()

            def once(name=name):
                run = resource.enrich(
                    lakehouse, rows, text_column(), TASK, business_date=DAY, run_id=f"bench-{name}"
                )
                statuses = Counter(r["enrichment_status"] for r in run.rows.collect())
                return run, statuses

            seconds, (run, statuses) = timed(once)
            figures[name] = {
                "seconds": seconds,
                "requests": len(server.chat_requests()),
                "computed": run.computed,
                "cache_hits": run.cache_hits,
                "rows": sum(statuses.values()),
                "ok": statuses.get(STATUS_OK, 0),
            }
    print(f"\n2. Unchanged partition enriched twice ({len(lines)} rows, server latency "
          f"{latency_s * 1000:.0f} ms)")  # fmt: skip
    print(
        table(
            ["run", "LLM requests", "computed", "cache hits", "rows ok", "wall s"],
            [
                [
                    n,
                    f["requests"],
                    f["computed"],
                    f["cache_hits"],
                    f"{f['ok']}/{f['rows']}",
                    f"{f['seconds']:.1f}",
                ]
                for n, f in figures.items()
            ],
        )
    )
    if figures["warm"]["requests"] != 0:
        print("WARNING: the warm re-run made LLM requests; the cache did not serve it")
    return figures


UDF_SCHEMA = "enrichment_status string, label string, confidence double, summary string"


def row_at_a_time_udf(config: ProviderConfig):
    """A plain (pickled, non-Arrow) Python UDF: one provider per task, one record per call."""
    from pyspark.sql import functions as F

    state: dict = {}

    def enrich_one(record_id: str, text: str):
        provider = state.get("provider")
        if provider is None:
            provider = state["provider"] = build_provider(config)
        (out,) = provider.run(TASK, [RecordIn(record_id, text)])
        return (out.status, out.label, out.confidence, out.summary)

    return F.udf(enrich_one, UDF_SCHEMA, useArrow=False)


def udf_vs_map_in_pandas(spark, lines: list[Line], latency_s: float, repeats: int) -> dict:
    from pyspark.sql import functions as F

    from transforms.enrich import ENRICH_TEXT, INPUT_HASH, call_provider, with_enrichment_input

    figures = {}
    with FakeOpenAI(latency_s=latency_s) as server:
        packed = chat_config(server)
        alone = replace(packed, max_records_per_request=1)
        # The pipeline's own input preparation (redaction, input_hash), done once and cached so
        # every variant times only the enrichment.
        prepared = (
            lines_frame(spark, lines)
            .transform(with_enrichment_input(text_column(), TASK, packed))
            .repartition(2)
            .cache()
        )
        n = prepared.count()
        variants = {
            "mapInPandas, packed (20/request)": lambda: prepared.transform(
                call_provider(TASK, packed)
            ),
            "mapInPandas, 1 record/request": lambda: prepared.transform(call_provider(TASK, alone)),
            "F.udf row-at-a-time (1/call)": lambda: prepared.select(
                row_at_a_time_udf(alone)(F.col(INPUT_HASH), F.col(ENRICH_TEXT)).alias("o")
            ).select("o.*"),
        }
        # Warm-up: every variant once, untimed (Python workers, imports, tokenizer, client).
        for build in variants.values():
            build().collect()
        for name, build in variants.items():
            times, requests = [], set()
            for _ in range(repeats):
                server.reset_log()
                seconds, rows = timed(lambda build=build: build().collect())
                times.append(seconds)
                requests.add(len(server.chat_requests()))
            statuses = Counter(r["enrichment_status"] for r in rows)
            seconds = statistics.median(times)
            figures[name] = {
                "seconds": seconds,
                "requests": "/".join(str(r) for r in sorted(requests)),
                "rows": len(rows),
                "ok": statuses.get(STATUS_OK, 0),
                "rows_per_s": len(rows) / seconds,
            }
        prepared.unpersist()
    print(
        f"\n3. mapInPandas vs row-at-a-time UDF ({n} rows in 2 partitions, local[2], server "
        f"latency {latency_s * 1000:.0f} ms, median of {repeats} runs after a warm-up)"
    )
    print(
        table(
            ["variant", "requests", "rows ok", "wall s", "rows/s"],
            [
                [
                    name,
                    f["requests"],
                    f"{f['ok']}/{f['rows']}",
                    f"{f['seconds']:.2f}",
                    f"{f['rows_per_s']:.0f}",
                ]
                for name, f in figures.items()
            ],
        )
    )
    return figures


# --- 4. throughput under a tokens-per-minute limit --------------------------------------------


class CountingFakeOpenAI(FakeOpenAI):
    """The fake server, also keeping its rate-limit verdicts and when it admitted what."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.verdicts: Counter[int] = Counter()
        self.admitted: list[tuple[float, int]] = []
        self._verdict_lock = threading.Lock()

    def _rate_limited(self, tokens: int) -> float | None:
        wait = super()._rate_limited(tokens)
        with self._verdict_lock:
            self.verdicts[200 if wait is None else 429] += 1
            if wait is None:
                self.admitted.append((time.monotonic(), tokens))
        return wait


def scaled_limiter(config: ProviderConfig, minute_s: float) -> RateLimiter:
    """The provider's limiter with its configured limits, on a clock whose minute is minute_s."""
    scale = 60.0 / minute_s
    return RateLimiter(
        config.requests_per_minute,
        config.tokens_per_minute,
        clock=lambda: time.monotonic() * scale,
        sleep=lambda seconds: time.sleep(seconds / scale),
    )


def rate_limited_run(
    records: list[RecordIn],
    tpm: int,
    minute_s: float,
    latency_s: float,
    workers: int,
    client_tpm: float | None,
) -> dict:
    from infra.enrichment import EnrichmentResource

    server = CountingFakeOpenAI(latency_s=latency_s, tokens_per_minute=tpm, window_s=minute_s)
    server.start()
    resource = EnrichmentResource(
        api_key=DUMMY_KEY,
        base_url=server.base_url,
        model=MODEL,
        max_concurrency=workers,
        tokens_per_minute=client_tpm,
        request_timeout_s=30.0,
    )
    config = resource.provider_config()  # each worker's share of client_tpm
    outcomes: list[RecordOut] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(chunk: list[RecordIn]) -> None:
        try:
            provider = OpenAIChatProvider(config)
            provider.limiter = scaled_limiter(config, minute_s)
            done = provider.run(TASK, chunk)
            with lock:
                outcomes.extend(done)
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(records[i::workers],), daemon=True)
        for i in range(workers)
    ]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        elapsed = time.monotonic() - started
        server.stop()
    if errors:
        raise errors[0]
    requests = sum(server.verdicts.values())
    end = max((t for t, _ in server.admitted), default=started + elapsed)
    # Steady state: the whole windows after the first one (which starts empty) that end before
    # the last admission; the server admits at most tpm in each, so this share is at most 100%.
    windows = int((end - started - minute_s) // minute_s)
    steady = [
        tok
        for t, tok in server.admitted
        if started + minute_s <= t < started + (windows + 1) * minute_s
    ]
    statuses = Counter(o.status for o in outcomes)
    return {
        "seconds": elapsed,
        "requests": requests,
        "429": server.verdicts[429],
        "rate_429": server.verdicts[429] / requests if requests else 0.0,
        "ok": statuses.get(STATUS_OK, 0),
        "failed": len(outcomes) - statuses.get(STATUS_OK, 0),
        "share_steady": sum(steady) / (windows * tpm) if windows > 0 else float("nan"),
        "steady_windows": windows,
        "share_run": sum(t for _, t in server.admitted) / (end - started) * minute_s / tpm,
        "per_worker_tpm": config.tokens_per_minute,
    }


def rate_limit(lines: list[Line], args) -> dict:
    records = as_records(lines, salt="rate")
    defaults = ProviderConfig()
    packs = pack(
        records, MODEL, defaults.max_input_tokens_per_request, defaults.max_records_per_request
    )
    system = count_tokens(system_prompt(TASK), MODEL)
    sizes = [system + count_tokens(user_message(p), MODEL) for p in packs]
    request = max(sizes)
    load = sum(sizes)
    print(f"\n4. Throughput under a limit of {args.tpm:,} prompt tokens per {args.minute_s:g}-s "
          f"window ({len(records)} records, {len(packs)} packed requests of up to "
          f"{request:,} tokens, load {load / args.tpm:.1f}x the limit, {args.workers} workers, "
          f"server latency {args.latency_ms:g} ms)")  # fmt: skip
    settings = {
        "no client limiter": {"client_tpm": None},
        "limiter at the limit": {"client_tpm": args.tpm},
        "limiter at 1/2 the limit": {"client_tpm": args.tpm / 2},
        "limiter at 95% of the limit": {"client_tpm": args.tpm * 0.95},
    }
    figures = {}
    for name, kwargs in settings.items():
        share = kwargs["client_tpm"] / args.workers if kwargs["client_tpm"] else None
        if share is not None and share < request:
            print(f"WARNING: {name}: a worker's share ({share:,.0f}) is below one request "
                  f"({request:,}); the limiter then under-counts requests")  # fmt: skip
        figures[name] = rate_limited_run(
            records,
            args.tpm,
            args.minute_s,
            args.latency_ms / 1000,
            args.workers,
            **kwargs,
        )
    print(
        table(
            [
                "client",
                "tpm/worker",
                "requests",
                "429s",
                "429 rate",
                "achieved (steady)",
                "windows",
                "achieved (run)",
                "ok",
                "failed",
                "wall s",
            ],
            [
                [
                    name,
                    "-" if f["per_worker_tpm"] is None else f"{f['per_worker_tpm']:,.0f}",
                    f["requests"],
                    f["429"],
                    f"{f['rate_429']:.1%}",
                    f"{f['share_steady']:.0%}",
                    f["steady_windows"],
                    f"{f['share_run']:.0%}",
                    f["ok"],
                    f["failed"],
                    f"{f['seconds']:.1f}",
                ]
                for name, f in figures.items()
            ],
        )
    )
    return figures


# --- main -------------------------------------------------------------------------------------


def summary(tokens: dict, cache: dict, udf: dict, limits: dict) -> None:
    print("\nSummary")
    rows = [
        ["1. input tokens/record, packed 20", f"{tokens['packed']['per_record']:.1f}"],
        ["1. input tokens/record, one per request", f"{tokens['alone']['per_record']:.1f}"],
        ["1. ratio one-per-request / packed", f"{tokens['ratio']:.2f}x"],
        ["2. LLM requests, cold run / warm re-run",
         f"{cache['cold']['requests']} / {cache['warm']['requests']}"],
        ["2. wall s, cold run / warm re-run",
         f"{cache['cold']['seconds']:.1f} / {cache['warm']['seconds']:.1f}"],
    ]  # fmt: skip
    for name, f in udf.items():
        rows.append(
            [f"3. {name}: wall s, requests, rows/s",
             f"{f['seconds']:.2f} s, {f['requests']}, {f['rows_per_s']:.0f}"]
        )  # fmt: skip
    for name, f in limits.items():
        rows.append(
            [f"4. {name}: 429 rate, achieved steady/run",
             f"{f['rate_429']:.1%}, {f['share_steady']:.0%} / {f['share_run']:.0%}"]
        )  # fmt: skip
    print(table(["figure", "value"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200, help="records for figures 1-3")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="server latency, 2-4")
    parser.add_argument("--tpm", type=int, default=60000, help="server limit per window (4)")
    parser.add_argument("--minute-s", type=float, default=4.0, help="the server's window (4)")
    parser.add_argument("--rate-records", type=int, default=2400, help="records for figure 4")
    parser.add_argument("--workers", type=int, default=4, help="concurrent providers (4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each variant (3)")
    args = parser.parse_args()

    print(HEADER)
    lines = expense_lines(max(args.records, 1))
    workdir = Path(tempfile.mkdtemp(prefix="bench-enrichment-"))
    try:
        tokens = tokens_per_record(lines)
        spark = spark_session(workdir)
        try:
            # JVM and Delta warm-up, outside every timing.
            warmup = str(workdir / "warmup")
            spark.range(10).write.format("delta").save(warmup)
            spark.read.format("delta").load(warmup).count()
            cache = cache_rerun(spark, workdir, lines, args.latency_ms / 1000)
            udf = udf_vs_map_in_pandas(spark, lines, args.latency_ms / 1000, args.repeats)
        finally:
            spark.stop()
        rate_lines = [lines[i % len(lines)] for i in range(args.rate_records)]
        limits = rate_limit(rate_lines, args)
        summary(tokens, cache, udf, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
