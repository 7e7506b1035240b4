"""How fast this machine is, printed beside a benchmark's figures so that figures taken on
different machines can be compared.

Machines of one kind differ: on 2026-12-08 a 2-core machine ran ``make test-fast`` in 815 s where
another had taken 441 s two days before, with the same code, and the loop below took 1.9-2.7 s on
it. A figure without its machine's speed cannot say whether a change helped.
"""

import os
import statistics
import time

LOOP = 20_000_000


def python_loop_s(repeats: int = 3) -> float:
    """Median seconds of a fixed pure-Python loop (``LOOP`` additions): one core's speed, as the
    driver's Python code and the JVM's planning see it."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        total = 0
        for i in range(LOOP):
            total += i
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def steal_share() -> float | None:
    """Share of CPU time taken by the hypervisor for other guests since boot (``/proc/stat``'s
    steal column), or None where it cannot be read."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    return fields[7] / sum(fields) if len(fields) > 7 and sum(fields) else None


def describe() -> str:
    """One table row: cores, the loop's time, the steal share."""
    steal = steal_share()
    steal_text = f", steal {steal:.1%} of CPU time since boot" if steal is not None else ""
    return (
        f"| this machine | {os.cpu_count()} cores, a {LOOP // 1_000_000}M-addition Python loop "
        f"in {python_loop_s():.2f} s (median of 3){steal_text} |"
    )


if __name__ == "__main__":
    print(describe())
