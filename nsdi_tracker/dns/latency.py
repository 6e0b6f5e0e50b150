"""The latency histogram a resolver's round keeps: fixed edges, so histograms merge exactly."""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from typing import Final

# Latency histogram edges in ms (the last bucket is everything slower): small enough to keep
# in every round's row, exact to merge over an hour for the dashboard's p50/p95.
LATENCY_EDGES_MS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def ms_since(start: float) -> float:
    """Milliseconds since `start` (a time.perf_counter reading), to the microsecond."""
    return to_ms(time.perf_counter() - start)


def to_ms(seconds: float) -> float:
    """Seconds as milliseconds to the microsecond, as round(seconds * 1000, 3) gives them but
    for a tie, without its decimal conversion (a third of a microsecond, once a reply)."""
    return int(seconds * 1_000_000 + 0.5) / 1000


def empty_histogram() -> list[int]:
    return [0] * (len(LATENCY_EDGES_MS) + 1)


def latency_bucket(ms: float) -> int:
    """The histogram bucket of one latency."""
    return bisect.bisect_left(LATENCY_EDGES_MS, ms)


def histogram_quantile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile's bucket upper edge in ms (None: no data; inf: slower than the last)."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return float(LATENCY_EDGES_MS[i]) if i < len(LATENCY_EDGES_MS) else float("inf")
    return float("inf")
