"""Timing helpers shared by the packages' benchmarks (``nox -s bench``).

The machine is shared and noisy, so a benchmark reports the median of a few
timed repeats and compares implementations by ratios measured in one run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["fmt_seconds", "median_time"]


def median_time(fn: Callable[[], Any], *, min_time: float = 0.05, repeats: int = 5) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` runs.

    Args:
        fn: the call to time (called once first, untimed, as a warm-up).
        min_time: each run repeats ``fn`` until it lasts about this many seconds,
            as estimated from one call (0: one call per run).
        repeats: timed runs; their median is returned.
    """
    fn()  # warm-up
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(min_time / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def fmt_seconds(seconds: float) -> str:
    """``seconds`` in s, ms or µs with three significant figures or so."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"
